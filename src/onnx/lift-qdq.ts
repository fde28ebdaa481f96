/**
 * QDQ lifting: chains of float ops between DequantizeLinear and QuantizeLinear nodes, as ONNX
 * Runtime's QDQ quantizer, PyTorch and TensorFlow write them, become int8 IR ops.
 *
 * - DequantizeLinear on a quantized value and on an int8 weight (and an int32 or float bias) ->
 *   Conv / Gemm / MatMul (+ a constant bias Add) -> optional Relu -> QuantizeLinear becomes one
 *   QLinearConv / QLinearGemm (ReLU fused); without the final QuantizeLinear, a QLinear* op with a
 *   float32 output.
 * - DQ -> Add -> (Relu) -> Q of two quantized values of one shape becomes QLinearAdd.
 * - DQ on every input -> Concat -> Q becomes QLinearConcat;
 * - DQ -> an elementwise function (HardSwish, Sigmoid, ...; Sigmoid and Mul(x, Sigmoid(x)) as
 *   SiLU) -> Q becomes QLinearLookup; DQ(a) * DQ(b) -> Q of two images of one shape or an image
 *   and a [C, 1, 1] gate becomes QLinearMul; DQ -> GlobalAveragePool (or ReduceMean over H and W)
 *   -> Q becomes QLinearGlobalAveragePool; DQ -> a 2-D AveragePool -> Q becomes QLinearAveragePool;
 * - DQ -> MaxPool / Flatten / Reshape / Identity / Slice / Transpose / nearest Resize -> Q with equal parameters runs on the quantized
 *   value directly.
 * - After lifting, Q -> DQ -> Relu -> Q behind an int8 op is that op's fused ReLU
 *   (`fuseQuantizedRelu`), and Reshape to rows [-1, K] -> QLinearGemm -> Reshape back (how Kiln
 *   exports a Gemm over the last axis of [N, ..., K]) is that QLinearGemm on [N, ..., K]
 *   (`foldGemmOverRows`).
 *
 * A chain that does not match (a uint8 weight, a non-zero weight zero point, weights not per output
 * channel, a bias that is neither int32 nor float) is left as it is and runs in float.
 */
import { LOOKUP_FUNCTIONS, lookupName, lookupParams } from '../graph/int8-lookup.js';
import type { GraphNode } from '../graph/ir.js';
import { Tensor } from '../tensor.js';
import { Unsupported } from './normalize.js';
import {
  activationParams, addInitializer, axisAttr, constant, dequantizeConstant, perTensor, qparams, sameShape,
  type ActivationParams, type QParams, type QuantImportEnv,
} from './quant-params.js';
import type { QuantRewrites } from './quant-rewrites.js';

interface Weights {
  w: Tensor;
  wScale: Float32Array;
}

/** Matches the QDQ patterns at one node each, recording the rewrites in `rw`. */
export class QdqLifter {
  constructor(readonly env: QuantImportEnv, readonly rw: QuantRewrites) {}

  /** A DequantizeLinear of a run-time quantized value, per tensor. */
  dqInput(value: string): { q: string; p: ActivationParams } | undefined {
    const n = this.rw.producer.get(value);
    if (n === undefined || n.op !== 'DequantizeLinear' || constant(this.env, n.inputs[0]) !== undefined) return undefined;
    try {
      return { q: n.inputs[0]!, p: activationParams(this.env, n, 1, 2) };
    } catch (err) {
      if (err instanceof Unsupported) return undefined;
      throw err;
    }
  }

  /** A DequantizeLinear of a constant: the tensor, its parameters and axis. */
  dqConst(value: string): { t: Tensor; p: QParams; axis: number } | undefined {
    const n = this.rw.producer.get(value);
    if (n === undefined || n.op !== 'DequantizeLinear') return undefined;
    const t = constant(this.env, n.inputs[0]);
    if (t === undefined) return undefined;
    return { t, p: qparams(this.env, n, 1, 2), axis: axisAttr(n, t.dims.length) };
  }

  /** int8 weights with zero points 0, per tensor or along `axis`; undefined falls back to float. */
  int8Weights(value: string, axis: number): Weights | undefined {
    const d = this.dqConst(value);
    if (d === undefined || d.t.type !== 'int8' || d.p.zeroPoint.some((z) => z !== 0)) return undefined;
    const channels = d.t.dims[axis]!;
    if (!perTensor(d.p) && d.axis !== axis) return undefined;
    return { w: d.t, wScale: perTensor(d.p) ? new Float32Array(channels).fill(d.p.scale[0]!) : Float32Array.from(d.p.scale) };
  }

  /** The bias as int32 at scale x_scale * w_scale[o]: from DQ(int32), or a float constant. */
  int32Bias(value: string | undefined, xScale: number, wScale: Float32Array): Int32Array | undefined | 'float' {
    if (value === undefined || value === '') return undefined;
    const want = wScale.map((s) => Math.fround(xScale * s));
    const d = this.dqConst(value);
    let real: Float64Array;
    if (d !== undefined) {
      if (d.t.type !== 'int32' || d.t.size !== wScale.length) return 'float';
      // The usual case: already at x_scale * w_scale (to float32 rounding): taken as it is.
      const scaleOf = (o: number): number => d.p.scale[perTensor(d.p) ? 0 : o]!;
      if (d.p.zeroPoint.every((z) => z === 0) && want.every((w, o) => Math.abs(scaleOf(o) - w) <= 1e-6 * w)) {
        return Int32Array.from(d.t.data as Int32Array);
      }
      const f = dequantizeConstant(d.t, d.p, 0);
      real = Float64Array.from(f.data);
    } else {
      const t = constant(this.env, value);
      if (t === undefined || t.type !== 'float32' || t.size !== wScale.length) return 'float';
      real = Float64Array.from(t.data as Float32Array);
    }
    return Int32Array.from(real, (v, o) => Math.max(-2147483648, Math.min(2147483647, Math.round(v / want[o]!))));
  }

  /** Follows a float result through an optional Relu into a QuantizeLinear. */
  outputChain(value: string): { out: string; swallowed: GraphNode[]; y?: ActivationParams; relu: boolean } {
    const quantizer = (n: GraphNode | undefined): ActivationParams | undefined => {
      if (n === undefined || n.op !== 'QuantizeLinear') return undefined;
      try {
        return activationParams(this.env, n, 1, 2);
      } catch (err) {
        if (err instanceof Unsupported) return undefined;
        throw err;
      }
    };
    const c = this.rw.soleConsumer(value);
    const yq = quantizer(c);
    if (yq !== undefined) return { out: c!.outputs[0]!, swallowed: [c!], y: yq, relu: false };
    if (c?.op === 'Relu') {
      const c2 = this.rw.soleConsumer(c.outputs[0]!);
      const y2 = quantizer(c2);
      if (y2 !== undefined) return { out: c2!.outputs[0]!, swallowed: [c, c2!], y: y2, relu: true };
    }
    return { out: value, swallowed: [], relu: false };
  }

  // ------------------------------------------------------------------ patterns

  /**
   * DQ(x) and DQ(int8 weight) [and bias] -> Conv / Gemm / MatMul [+ constant bias Add] -> [Relu ->] [Q]
   * as one QLinearConv / QLinearGemm; false (nothing changed) when it is not that pattern.
   */
  liftConvOrGemm(node: GraphNode): boolean {
    const x = this.dqInput(node.inputs[0] ?? '');
    if (x === undefined) return false;
    const conv = node.op === 'Conv';
    const xShape = this.env.shapes.get(node.inputs[0]!);
    let transB = 0;
    if (node.op === 'Gemm') {
      if (node.attrs.transA !== 0 || node.attrs.alpha !== 1 || (node.inputs[2] && node.attrs.beta !== 1)) return false;
      transB = node.attrs.transB === 1 ? 1 : 0;
    }
    // Gemm takes matrices; a MatMul may multiply the last axis of [N, ..., K] (a QLinearGemm over rows).
    if (!conv && (xShape === undefined || xShape.length < 2 || (node.op === 'Gemm' && xShape.length !== 2))) return false;
    const axis = conv || transB === 1 ? 0 : 1;
    const w = this.int8Weights(node.inputs[1] ?? '', axis);
    if (w === undefined || (!conv && w.w.dims.length !== 2)) return false;
    let biasValue = node.op === 'MatMul' ? undefined : node.inputs[2];
    let chainFrom = node.outputs[0]!;
    const swallowed: GraphNode[] = [];
    if (node.op === 'MatMul') {
      // A constant bias added right after the MatMul joins it.
      const add = this.rw.soleConsumer(chainFrom);
      if (add?.op === 'Add') {
        const other = add.inputs[0] === chainFrom ? add.inputs[1] : add.inputs[0];
        const shape = this.env.shapes.get(other ?? '');
        if (other && shape?.length === 1 && shape[0] === w.wScale.length && (constant(this.env, other) !== undefined || this.dqConst(other) !== undefined)) {
          biasValue = other;
          chainFrom = add.outputs[0]!;
          swallowed.push(add);
        }
      }
    }
    const bias = this.int32Bias(biasValue, x.p.scale, w.wScale);
    if (bias === 'float') return false;
    const chain = this.outputChain(chainFrom);
    const attrs: GraphNode['attrs'] = conv
      ? { ...node.attrs, x_scale: x.p.scale, x_zero_point: x.p.zeroPoint }
      : { transB, a_scale: x.p.scale, a_zero_point: x.p.zeroPoint };
    if (chain.y !== undefined) Object.assign(attrs, { y_scale: chain.y.scale, y_zero_point: chain.y.zeroPoint, y_dtype: chain.y.dtype });
    if (chain.relu) attrs.kiln_activation = 'Relu';
    const inputs = [
      x.q,
      addInitializer(this.env, `${node.name}_weight_q`, w.w),
      addInitializer(this.env, `${node.name}_weight_scale`, new Tensor('float32', w.wScale, [w.wScale.length])),
      bias === undefined ? '' : addInitializer(this.env, `${node.name}_bias_q`, new Tensor('int32', bias, [bias.length])),
    ];
    while (inputs[inputs.length - 1] === '') inputs.pop();
    this.rw.replace(node, [{ name: node.name, op: conv ? 'QLinearConv' : 'QLinearGemm', inputs, outputs: [chain.out], attrs }], [...swallowed, ...chain.swallowed]);
    return true;
  }

  /** DQ(a) + DQ(b) of one shape -> [Relu ->] Q as one QLinearAdd. */
  liftAdd(node: GraphNode): boolean {
    const a = this.dqInput(node.inputs[0] ?? '');
    const b = this.dqInput(node.inputs[1] ?? '');
    if (a === undefined || b === undefined || !sameShape(this.env.shapes.get(a.q), this.env.shapes.get(b.q))) return false;
    const chain = this.outputChain(node.outputs[0]!);
    if (chain.y === undefined) return false;
    const attrs: GraphNode['attrs'] = {
      a_scale: a.p.scale, a_zero_point: a.p.zeroPoint, b_scale: b.p.scale, b_zero_point: b.p.zeroPoint,
      y_scale: chain.y.scale, y_zero_point: chain.y.zeroPoint, y_dtype: chain.y.dtype,
    };
    if (chain.relu) attrs.kiln_activation = 'Relu';
    this.rw.replace(node, [{ name: node.name, op: 'QLinearAdd', inputs: [a.q, b.q], outputs: [chain.out], attrs }], chain.swallowed);
    return true;
  }

  /** DQ on every input -> Concat -> Q (no Relu): a QLinearConcat. */
  liftConcat(node: GraphNode): boolean {
    const xs = node.inputs.map((i) => this.dqInput(i));
    if (xs.length < 2 || xs.some((x) => x === undefined)) return false;
    const chain = this.outputChain(node.outputs[0]!);
    if (chain.y === undefined || chain.relu) return false;
    const attrs: GraphNode['attrs'] = {
      axis: node.attrs.axis ?? 1,
      x_scales: xs.map((x) => x!.p.scale),
      x_zero_points: xs.map((x) => x!.p.zeroPoint),
      y_scale: chain.y.scale, y_zero_point: chain.y.zeroPoint, y_dtype: chain.y.dtype,
    };
    this.rw.replace(node, [{ name: node.name, op: 'QLinearConcat', inputs: xs.map((x) => x!.q), outputs: [chain.out], attrs }], chain.swallowed);
    return true;
  }

  /**
   * DQ -> an elementwise function of LOOKUP_FUNCTIONS -> Q, or DQ(x) -> Sigmoid -> Mul(x, Sigmoid(x))
   * -> Q (SiLU), as one QLinearLookup.
   */
  liftLookup(node: GraphNode): boolean {
    const x = this.dqInput(node.inputs[0] ?? '');
    // A Relu is left to fuseQuantizedRelu: folded into the int8 op before it, it costs nothing.
    if (x === undefined || node.inputs.length !== 1 || !LOOKUP_FUNCTIONS.has(node.op) || node.op === 'Relu') return false;
    let name = lookupName(node);
    if (name === undefined) return false;
    let result = node.outputs[0]!;
    const swallowed: GraphNode[] = [];
    const mul = node.op === 'Sigmoid' ? this.rw.soleConsumer(result) : undefined;
    if (mul?.op === 'Mul' && mul.inputs.length === 2 && mul.inputs.includes(result) && mul.inputs.includes(node.inputs[0]!)) {
      name = 'SiLU';
      result = mul.outputs[0]!;
      swallowed.push(mul);
    }
    const chain = this.outputChain(result);
    if (chain.y === undefined || chain.relu) return false;
    const attrs: GraphNode['attrs'] = {
      kiln_function: name, ...lookupParams(node), x_scale: x.p.scale, x_zero_point: x.p.zeroPoint,
      y_scale: chain.y.scale, y_zero_point: chain.y.zeroPoint, y_dtype: chain.y.dtype,
    };
    this.rw.replace(node, [{ name: node.name, op: 'QLinearLookup', inputs: [x.q], outputs: [chain.out], attrs }], [...swallowed, ...chain.swallowed]);
    return true;
  }

  /** DQ(a) * DQ(b) -> Q, two images of one shape or an image and a [C, 1, 1] gate: one QLinearMul (image first). */
  liftMul(node: GraphNode): boolean {
    let a = this.dqInput(node.inputs[0] ?? '');
    let b = this.dqInput(node.inputs[1] ?? '');
    if (a === undefined || b === undefined) return false;
    const [sa, sb] = [this.env.shapes.get(a.q), this.env.shapes.get(b.q)];
    const gate = (s: typeof sa, t: typeof sa) => s?.length === 4 && t?.length === 4 && s[1] === t[1] && t[2] === 1 && t[3] === 1 && !(s[2] === 1 && s[3] === 1);
    if (gate(sb, sa)) [a, b] = [b, a];
    else if (!gate(sa, sb) && !(sa?.length === 4 && sameShape(sa.slice(1), sb?.slice(1)))) return false;
    const chain = this.outputChain(node.outputs[0]!);
    if (chain.y === undefined || chain.relu) return false;
    const attrs: GraphNode['attrs'] = {
      a_scale: a.p.scale, a_zero_point: a.p.zeroPoint, b_scale: b.p.scale, b_zero_point: b.p.zeroPoint,
      y_scale: chain.y.scale, y_zero_point: chain.y.zeroPoint, y_dtype: chain.y.dtype,
    };
    this.rw.replace(node, [{ name: node.name, op: 'QLinearMul', inputs: [a.q, b.q], outputs: [chain.out], attrs }], chain.swallowed);
    return true;
  }

  /** DQ -> GlobalAveragePool (or ReduceMean over H and W, keepdims) -> Q: one QLinearGlobalAveragePool. */
  liftGlobalAveragePool(node: GraphNode): boolean {
    const x = this.dqInput(node.inputs[0] ?? '');
    if (x === undefined || this.env.shapes.get(x.q)?.length !== 4) return false;
    if (node.op === 'ReduceMean') {
      const given = node.inputs[1] ? constant(this.env, node.inputs[1]) : undefined;
      const axes = given !== undefined ? Array.from(given.data as ArrayLike<number | bigint>, Number) : (node.attrs.axes as number[] | undefined);
      const spatial = Array.isArray(axes) && axes.length === 2 && axes.map((v) => (v + 4) % 4).sort().join() === '2,3';
      if (!spatial || Number(node.attrs.keepdims ?? 1) !== 1) return false;
    }
    const chain = this.outputChain(node.outputs[0]!);
    if (chain.y === undefined || chain.relu) return false;
    const attrs: GraphNode['attrs'] = { x_scale: x.p.scale, x_zero_point: x.p.zeroPoint, y_scale: chain.y.scale, y_zero_point: chain.y.zeroPoint, y_dtype: chain.y.dtype };
    this.rw.replace(node, [{ name: node.name, op: 'QLinearGlobalAveragePool', inputs: [x.q], outputs: [chain.out], attrs }], chain.swallowed);
    return true;
  }

  /** DQ -> 2-D AveragePool -> Q: one QLinearAveragePool with the pool's window attributes. */
  liftAveragePool(node: GraphNode): boolean {
    const x = this.dqInput(node.inputs[0] ?? '');
    if (x === undefined || this.env.shapes.get(x.q)?.length !== 4) return false;
    const kernel = node.attrs.kernel_shape;
    if (!Array.isArray(kernel) || kernel.length !== 2 || (node.attrs.auto_pad ?? 'NOTSET') !== 'NOTSET') return false;
    const chain = this.outputChain(node.outputs[0]!);
    if (chain.y === undefined || chain.relu) return false;
    const attrs: GraphNode['attrs'] = {
      ...node.attrs, x_scale: x.p.scale, x_zero_point: x.p.zeroPoint, y_scale: chain.y.scale, y_zero_point: chain.y.zeroPoint, y_dtype: chain.y.dtype,
    };
    this.rw.replace(node, [{ name: node.name, op: 'QLinearAveragePool', inputs: [x.q], outputs: [chain.out], attrs }], chain.swallowed);
    return true;
  }

  /** DQ -> MaxPool / Flatten / Reshape / Identity / Slice / Transpose / nearest Resize -> Q with equal parameters: runs on the quantized value. */
  liftPassThrough(node: GraphNode): boolean {
    const x = this.dqInput(node.inputs[0] ?? '');
    if (x === undefined) return false;
    const chain = this.outputChain(node.outputs[0]!);
    if (chain.y === undefined || chain.relu || chain.y.scale !== x.p.scale || chain.y.zeroPoint !== x.p.zeroPoint || chain.y.dtype !== x.p.dtype) return false;
    this.rw.replace(node, [{ ...node, inputs: [x.q, ...node.inputs.slice(1)], outputs: [chain.out] }], chain.swallowed);
    return true;
  }
}

/**
 * A Relu between a DequantizeLinear and a QuantizeLinear with the same parameters, right after an
 * int8 op with those output parameters (Q -> DQ -> Relu -> Q, as PyTorch exports write it), is
 * that op's fused ReLU: clamping the quantized value at its zero point is exact.
 */
export function fuseQuantizedRelu(nodes: GraphNode[], graphOutputs: ReadonlySet<string>): GraphNode[] {
  const producer = new Map<string, GraphNode>();
  const readers = new Map<string, number>();
  for (const n of nodes) {
    for (const o of n.outputs) producer.set(o, n);
    for (const i of n.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);
  }
  const only = (v: string): boolean => readers.get(v) === 1 && !graphOutputs.has(v);
  const dropped = new Set<GraphNode>();
  for (const relu of nodes) {
    if (relu.op !== 'Relu' || !only(relu.inputs[0]!)) continue;
    const dq = producer.get(relu.inputs[0]!);
    const q = nodes.find((n) => n.op === 'QuantizeLinear' && n.inputs[0] === relu.outputs[0]);
    if (dq?.op !== 'DequantizeLinear' || q === undefined || !only(relu.outputs[0]!) || !only(dq.inputs[0]!)) continue;
    const op = producer.get(dq.inputs[0]!);
    if (op === undefined || !['QLinearConv', 'QLinearGemm', 'QLinearAdd'].includes(op.op) || op.attrs.kiln_activation !== undefined) continue;
    const same = op.attrs.y_scale === dq.attrs.scale && op.attrs.y_zero_point === dq.attrs.zero_point &&
      q.attrs.scale === dq.attrs.scale && q.attrs.zero_point === dq.attrs.zero_point && q.attrs.dtype === op.attrs.y_dtype;
    if (!same) continue;
    op.attrs = { ...op.attrs, kiln_activation: 'Relu' };
    op.outputs = [q.outputs[0]!];
    for (const n of [dq, relu, q]) dropped.add(n);
  }
  return dropped.size === 0 ? nodes : nodes.filter((n) => !dropped.has(n));
}

/**
 * Reshape(x, [-1, K]) -> QLinearGemm -> Reshape to [...x's leading dims, N_out], on quantized
 * values and each read once, is one QLinearGemm over the last axis of x (docs/int8-ir.md): the
 * form Kiln's QDQ export writes for it (ONNX Gemm takes matrices only). Without the fold the batch
 * would be folded into rows, which the runtime does not run.
 */
export function foldGemmOverRows(nodes: GraphNode[], env: QuantImportEnv): GraphNode[] {
  const producer = new Map<string, GraphNode>();
  const readers = new Map<string, GraphNode[]>();
  for (const n of nodes) {
    for (const o of n.outputs) producer.set(o, n);
    for (const i of n.inputs) if (i) readers.set(i, [...(readers.get(i) ?? []), n]);
  }
  // The DequantizeLinear nodes a lifted pattern swallowed are still listed, reading nothing anyone reads.
  const dead = (n: GraphNode): boolean => n.outputs.every((o) => !env.graphOutputs.has(o) && (readers.get(o) ?? []).length === 0);
  const soleReader = (v: string): GraphNode | undefined => {
    const r = (readers.get(v) ?? []).filter((n) => !dead(n));
    return r.length === 1 && !env.graphOutputs.has(v) ? r[0] : undefined;
  };
  const target = (n: GraphNode): readonly number[] | undefined => {
    if (Array.isArray(n.attrs.shape)) return n.attrs.shape as number[];
    const t = constant(env, n.inputs[1]);
    return t === undefined ? undefined : Array.from(t.data as ArrayLike<number>, Number);
  };
  const replaced = new Map<GraphNode, GraphNode>();
  const dropped = new Set<GraphNode>();
  for (const gemm of nodes) {
    if (gemm.op !== 'QLinearGemm') continue;
    const toRows = producer.get(gemm.inputs[0] ?? '');
    const back = soleReader(gemm.outputs[0]!);
    if (toRows?.op !== 'Reshape' || back?.op !== 'Reshape' || soleReader(toRows.outputs[0]!) !== gemm) continue;
    const xShape = env.shapes.get(toRows.inputs[0]!);
    const rows = target(toRows);
    const k = xShape?.[xShape.length - 1];
    if (xShape === undefined || xShape.length < 3 || typeof k !== 'number' || rows?.length !== 2 || rows[0] !== -1 || rows[1] !== k) continue;
    const outShape = env.shapes.get(back.outputs[0]!);
    const yShape = env.shapes.get(gemm.outputs[0]!);
    const n = yShape?.[1];
    const want = [...xShape.slice(0, -1), n];
    if (outShape === undefined || outShape.length !== want.length || !outShape.every((d, i) => d === want[i])) continue;
    replaced.set(gemm, { ...gemm, inputs: [toRows.inputs[0]!, ...gemm.inputs.slice(1)], outputs: [back.outputs[0]!] });
    dropped.add(toRows).add(back);
    for (const v of [toRows.outputs[0]!, gemm.outputs[0]!]) for (const r of readers.get(v) ?? []) if (dead(r)) dropped.add(r);
  }
  return nodes.filter((n) => !dropped.has(n)).map((n) => replaced.get(n) ?? n);
}
