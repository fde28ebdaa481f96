/**
 * QOperator mapping: the quantized operators of ONNX and com.microsoft, as ONNX Runtime's QOperator
 * quantizer writes them, become int8 IR ops.
 *
 * - QLinearConv, QLinearMatMul, com.microsoft QGemm and QLinearAdd map one to one.
 * - DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(scales) (-> Add bias), ONNX Runtime's
 *   dynamic quantization, becomes DynamicQGemm.
 *
 * What the int8 IR cannot hold runs in float32 between a DequantizeLinear and a QuantizeLinear: a
 * weight that is uint8, has a non-zero zero point or is not per output channel is dequantized at
 * import, and so is a QLinearAdd with a constant or broadcast input.
 */
import type { GraphNode } from '../graph/ir.js';
import { Tensor } from '../tensor.js';
import { Unsupported } from './normalize.js';
import { corrupt } from './proto.js';
import {
  activationParams, addInitializer, checkAxis, constant, convAttrs, dequantizeConstant, perTensor, qparams, sameShape, where,
  type QuantImportEnv,
} from './quant-params.js';
import type { QuantRewrites } from './quant-rewrites.js';

/** QLinearConv / QLinearMatMul / QGemm: int8 op, or float fallback between DQ and Q. */
export function mapQLinear(env: QuantImportEnv, node: GraphNode): GraphNode[] {
  const conv = node.op === 'QLinearConv';
  const gemm = node.op === 'QGemm';
  const x = activationParams(env, node, 1, 2);
  const wName = node.inputs[3]!;
  const wT = constant(env, wName);
  if (wT === undefined) throw new Unsupported('a weight computed at run time');
  const wp = qparams(env, node, 4, 5);
  let transB = 0;
  if (gemm) {
    if ((node.attrs.transA ?? 0) !== 0) throw new Unsupported('QGemm with transA = 1');
    transB = node.attrs.transB === 1 ? 1 : 0;
  }
  const axis = conv || transB === 1 ? 0 : wT.dims.length - 1;
  checkAxis(node, wp, wT.dims, axis);
  const [ysIdx, yzIdx, biasIdx] = conv ? [6, 7, 8] : gemm ? [7, 8, 6] : [6, 7, -1];
  const hasY = node.inputs[ysIdx] !== undefined && node.inputs[ysIdx] !== '';
  if (!hasY && !gemm) throw corrupt(`Expected an output scale for ${where(node)} but received none`);
  const y = hasY ? activationParams(env, node, ysIdx, yzIdx) : undefined;
  const biasName = biasIdx >= 0 ? node.inputs[biasIdx] : undefined;
  const biasT = biasName ? constant(env, biasName) : undefined;
  if (biasName && biasT === undefined) throw new Unsupported('a bias computed at run time');
  const channels = wT.dims[axis]!;
  if (biasT !== undefined && (biasT.type !== 'int32' || biasT.size !== channels)) throw corrupt(`Expected an int32 bias of ${channels} values for ${where(node)} but received a ${biasT.type} tensor of ${biasT.size}`);
  const alpha = gemm ? Number(node.attrs.alpha ?? 1) : 1;
  const xShape = env.shapes.get(node.inputs[0]!);
  const int8 = wT.type === 'int8' && wp.zeroPoint.every((z) => z === 0) && alpha === 1 && (conv || xShape?.length === 2);
  const wScale = perTensor(wp) ? new Float32Array(channels).fill(wp.scale[0]!) : Float32Array.from(wp.scale);
  const out = node.outputs[0]!;
  if (int8) {
    const attrs: GraphNode['attrs'] = conv
      ? { ...convAttrs(env, node, node.inputs[0]!, wName), x_scale: x.scale, x_zero_point: x.zeroPoint }
      : { transB, a_scale: x.scale, a_zero_point: x.zeroPoint };
    if (y !== undefined) Object.assign(attrs, { y_scale: y.scale, y_zero_point: y.zeroPoint, y_dtype: y.dtype });
    const inputs = [node.inputs[0]!, wName, addInitializer(env, `${node.name}_weight_scale`, new Tensor('float32', wScale, [channels]))];
    if (biasName) inputs.push(biasName);
    return [{ name: node.name, op: conv ? 'QLinearConv' : 'QLinearGemm', inputs, outputs: [out], attrs }];
  }
  // Float fallback: dequantize input and weight (and the bias at x_scale * w_scale), run the float op.
  const xf = env.ctx.fresh(`${node.inputs[0]}_dequantized`);
  const nodes: GraphNode[] = [{ name: env.ctx.fresh(`${node.name}_dequantize_input`), op: 'DequantizeLinear', inputs: [node.inputs[0]!], outputs: [xf], attrs: { scale: x.scale, zero_point: x.zeroPoint } }];
  env.shapes.set(xf, env.shapes.get(node.inputs[0]!)!.slice());
  const inputs = [xf, addInitializer(env, `${node.name}_weight`, dequantizeConstant(wT, wp, axis))];
  if (biasT !== undefined) {
    const bias = Float32Array.from(biasT.data as Int32Array, (v, o) => v * Math.fround(x.scale * wScale[o]!));
    inputs.push(addInitializer(env, `${node.name}_bias`, new Tensor('float32', bias, [channels])));
  }
  const yf = y === undefined ? out : env.ctx.fresh(`${out}_float`);
  const op = conv ? 'Conv' : gemm ? 'Gemm' : 'MatMul';
  const attrs = conv ? convAttrs(env, node, node.inputs[0]!, wName) : gemm ? { alpha, beta: 1, transA: 0, transB } : {};
  nodes.push({ name: node.name, op, inputs, outputs: [yf], attrs });
  if (y !== undefined) {
    env.shapes.set(yf, env.shapes.get(out)!.slice());
    nodes.push({ name: env.ctx.fresh(`${node.name}_quantize_output`), op: 'QuantizeLinear', inputs: [yf], outputs: [out], attrs: { scale: y.scale, zero_point: y.zeroPoint, dtype: y.dtype } });
  }
  return nodes;
}

/** com.microsoft QLinearAdd: int8 when both inputs are run-time values of one shape. */
export function mapQLinearAdd(env: QuantImportEnv, node: GraphNode): GraphNode[] {
  const y = activationParams(env, node, 6, 7);
  const sides = [0, 3].map((i) => {
    const t = constant(env, node.inputs[i]);
    const p = t === undefined ? activationParams(env, node, i + 1, i + 2) : undefined;
    return { name: node.inputs[i]!, t, p };
  });
  const [a, b] = sides as [typeof sides[0], typeof sides[0]];
  const out = node.outputs[0]!;
  if (a.p && b.p && sameShape(env.shapes.get(a.name), env.shapes.get(b.name))) {
    return [{
      name: node.name, op: 'QLinearAdd', inputs: [a.name, b.name], outputs: [out],
      attrs: { a_scale: a.p.scale, a_zero_point: a.p.zeroPoint, b_scale: b.p.scale, b_zero_point: b.p.zeroPoint, y_scale: y.scale, y_zero_point: y.zeroPoint, y_dtype: y.dtype },
    }];
  }
  const nodes: GraphNode[] = [];
  const floats = sides.map((side, k) => {
    if (side.t !== undefined) {
      const p = qparams(env, node, 3 * k + 1, 3 * k + 2);
      if (!perTensor(p)) throw new Unsupported('per-axis QLinearAdd parameters');
      return addInitializer(env, `${node.name}_${k === 0 ? 'a' : 'b'}`, dequantizeConstant(side.t, p, 0));
    }
    const f = env.ctx.fresh(`${side.name}_dequantized`);
    env.shapes.set(f, env.shapes.get(side.name)!.slice());
    nodes.push({ name: env.ctx.fresh(`${node.name}_dequantize_${k}`), op: 'DequantizeLinear', inputs: [side.name], outputs: [f], attrs: { scale: side.p!.scale, zero_point: side.p!.zeroPoint } });
    return f;
  });
  const sum = env.ctx.fresh(`${out}_float`);
  env.shapes.set(sum, env.shapes.get(out)!.slice());
  nodes.push({ name: node.name, op: 'Add', inputs: floats, outputs: [sum], attrs: {} });
  nodes.push({ name: env.ctx.fresh(`${node.name}_quantize_output`), op: 'QuantizeLinear', inputs: [sum], outputs: [out], attrs: { scale: y.scale, zero_point: y.zeroPoint, dtype: y.dtype } });
  return nodes;
}

/**
 * DynamicQuantizeLinear -> MatMulInteger -> Cast (an Identity by now) -> Mul by
 * (a_scale * w_scale) [-> Add bias] as one DynamicQGemm; false (nothing changed) when it is not that pattern.
 */
export function liftDynamicQGemm(env: QuantImportEnv, rw: QuantRewrites, node: GraphNode): boolean {
  const dq = rw.producer.get(node.inputs[0] ?? '');
  if (dq?.op !== 'DynamicQuantizeLinear' || (node.inputs[2] ?? '') !== dq.outputs[2]) return false;
  const w = constant(env, node.inputs[1]);
  if (w === undefined || w.type !== 'int8' || w.dims.length !== 2) return false;
  const wzp = constant(env, node.inputs[3]);
  if (node.inputs[3] && (wzp === undefined || Array.from(wzp.data as ArrayLike<number>).some((z) => z !== 0))) return false;
  if (env.shapes.get(dq.inputs[0]!)?.length !== 2) return false;
  const cast = rw.soleConsumer(node.outputs[0]!);
  if (cast?.op !== 'Identity') return false;
  const mul = rw.soleConsumer(cast.outputs[0]!);
  if (mul?.op !== 'Mul') return false;
  const scaleValue = mul.inputs[0] === cast.outputs[0] ? mul.inputs[1] : mul.inputs[0];
  const scaleMul = rw.producer.get(scaleValue ?? '');
  if (scaleMul?.op !== 'Mul' || rw.soleConsumer(scaleValue!) !== mul) return false;
  const wsName = scaleMul.inputs[0] === dq.outputs[1] ? scaleMul.inputs[1] : scaleMul.inputs[1] === dq.outputs[1] ? scaleMul.inputs[0] : undefined;
  const ws = constant(env, wsName);
  const n = w.dims[1]!;
  if (ws === undefined || ws.type !== 'float32' || (ws.size !== 1 && ws.size !== n)) return false;
  const wScale = ws.size === 1 ? new Float32Array(n).fill(ws.data[0]!) : Float32Array.from(ws.data as Float32Array);
  if (wScale.some((s) => !(s > 0) || !Number.isFinite(s))) throw corrupt(`Expected positive finite weight scales for ${where(scaleMul)} but received ${Array.from(wScale).find((s) => !(s > 0) || !Number.isFinite(s))}`);
  let out = mul.outputs[0]!;
  const swallowed = [cast, mul, scaleMul];
  const inputs = [dq.inputs[0]!, node.inputs[1]!, addInitializer(env, `${node.name}_weight_scale`, new Tensor('float32', wScale, [n]))];
  const add = rw.soleConsumer(out);
  if (add?.op === 'Add') {
    const other = add.inputs[0] === out ? add.inputs[1] : add.inputs[0];
    const b = constant(env, other);
    if (b !== undefined && b.type === 'float32' && b.size === n && b.dims.length === 1) {
      inputs.push(other!);
      out = add.outputs[0]!;
      swallowed.push(add);
    }
  }
  rw.replace(node, [{ name: node.name, op: 'DynamicQGemm', inputs, outputs: [out], attrs: { transB: 0 } }], swallowed);
  return true;
}
