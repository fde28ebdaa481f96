/**
 * Import of int8 ONNX models made elsewhere (ONNX Runtime's quantizer, PyTorch, TensorFlow) into
 * Kiln's int8 IR (docs/int8-ir.md), as whole int8 regions rather than op-by-op emulation.
 *
 * The importer (import.ts) keeps the quantization nodes as they are while it normalises the float
 * nodes around them; `liftQuantized` then rewrites:
 *
 * - QDQ form: DequantizeLinear on a quantized value and on an int8 weight (and an int32 or float
 *   bias) -> Conv / Gemm / MatMul (+ a constant bias Add) -> optional Relu -> QuantizeLinear
 *   becomes one QLinearConv / QLinearGemm (ReLU fused); without the final QuantizeLinear, a
 *   QLinear* op with a float32 output. DQ -> Add -> (Relu) -> Q of two quantized values becomes
 *   QLinearAdd; DQ -> MaxPool / Flatten / Reshape / Identity -> Q with equal parameters runs on
 *   the quantized value directly.
 * - QOperator form: QLinearConv, QLinearMatMul, com.microsoft QGemm and QLinearAdd map one to
 *   one; DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(scales) (-> Add bias) becomes
 *   DynamicQGemm.
 *
 * What the int8 IR cannot hold falls back to float, correct but not int8: a weight that is uint8,
 * has a non-zero zero point, or is not per output channel is dequantized at import and its op
 * runs in float32 between a DequantizeLinear and a QuantizeLinear (so do QLinear* ops of that
 * kind, and QLinearAdd with a constant or broadcast input). Left-over QuantizeLinear /
 * DequantizeLinear on run-time values become the IR's boundary ops; on constants they are folded.
 * Refused with ERR_KILN_UNSUPPORTED_OP (node named): per-axis quantization of a run-time value,
 * scales or zero points computed at run time (other than the DynamicQuantizeLinear pattern), and
 * MatMulInteger / ConvInteger outside that pattern (their int32 outputs have no IR type).
 * Malformed parameters (scale 0, negative, NaN or infinite; zero points of another type or count;
 * per-axis scales of the wrong length) are ERR_KILN_CORRUPT_MODEL.
 */
import { isSymbolic, type KnownValue } from '../graph/constant-folding.js';
import type { GraphNode } from '../graph/ir.js';
import { broadcastShapes, inferNodeShapes, type Shape } from '../graph/shape-inference.js';
import { Tensor } from '../tensor.js';
import { normalizeNode, Unsupported, type NormalizeContext } from './normalize.js';
import { corrupt } from './proto.js';
import { qRange, type QDType } from '../graph/int8-ir.js';
import { roundHalfEven } from '../quant/qparams.js';

const ONNX_QUANT_OPS = new Set(['QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearMatMul', 'MatMulInteger', 'ConvInteger', 'DynamicQuantizeLinear']);
const MS_QUANT_OPS = new Set(['QLinearAdd', 'QGemm', 'QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear']);

/** Whether the importer hands this node to this module. */
export function isQuantOnnxNode(op: string, domain: string): boolean {
  return (domain === '' && ONNX_QUANT_OPS.has(op)) || (domain === 'com.microsoft' && MS_QUANT_OPS.has(op));
}

/** What the importer shares with this module while it converts a graph. */
export interface QuantImportEnv {
  ctx: NormalizeContext;
  known: Map<string, KnownValue>;
  shapes: Map<string, Shape>;
  graphOutputs: ReadonlySet<string>;
  /** Op types of the nodes that read a value in the original model. */
  readerOps(value: string): readonly string[];
}

/** Ops whose constant DequantizeLinear inputs may become int8 weights or int32 biases. */
const WEIGHT_READERS = new Set(['Conv', 'Gemm', 'MatMul', 'Add']);

// ---------------------------------------------------------------------------------------------
// Parameters.

/** Checked quantization parameters of one tensor: per tensor (one value) or along `axis`. */
interface QParams {
  scale: Float32Array;
  zeroPoint: Int32Array;
  dtype: QDType | 'int32';
}

function constant(env: QuantImportEnv, name: string | undefined): Tensor | undefined {
  if (name === undefined || name === '') return undefined;
  const v = env.known.get(name);
  return v === undefined || isSymbolic(v) ? undefined : v;
}

function where(node: GraphNode): string {
  return `${node.op} '${node.name}'`;
}

/** Scale and zero point at inputs `s` and `z` of a node (z may be omitted: uint8 0). */
function qparams(env: QuantImportEnv, node: GraphNode, s: number, z: number): QParams {
  const scaleName = node.inputs[s];
  const scale = constant(env, scaleName);
  if (scale === undefined) throw new Unsupported(`a scale ('${scaleName ?? ''}') computed at run time`);
  if (scale.type !== 'float32' || scale.dims.length > 1 || scale.size === 0) {
    throw corrupt(`Expected a float scalar or 1-D float scales for input ${s} ('${scaleName}') of ${where(node)} but received a ${scale.type} tensor of shape [${scale.dims.join(', ')}]`);
  }
  for (let i = 0; i < scale.size; i++) {
    const v = scale.data[i]!;
    if (!(v > 0) || !Number.isFinite(v)) throw corrupt(`Expected positive finite scales for input ${s} ('${scaleName}') of ${where(node)} but received ${v} at index ${i}`);
  }
  const zpName = node.inputs[z];
  let zeroPoint = new Int32Array(scale.size);
  let dtype: QParams['dtype'] = 'uint8';
  if (zpName !== undefined && zpName !== '') {
    const zp = constant(env, zpName);
    if (zp === undefined) throw new Unsupported(`a zero point ('${zpName}') computed at run time`);
    if (zp.type === 'float32') throw corrupt(`Expected an integer zero point for input ${z} ('${zpName}') of ${where(node)} but received a float tensor`);
    if (zp.size !== scale.size) throw corrupt(`Expected ${scale.size} zero point(s) like the scales for input ${z} ('${zpName}') of ${where(node)} but received ${zp.size}`);
    zeroPoint = Int32Array.from(zp.data as ArrayLike<number>);
    dtype = zp.type as QParams['dtype'];
  }
  return { scale: scale.data as Float32Array, zeroPoint, dtype };
}

function perTensor(p: QParams): boolean {
  return p.scale.length === 1;
}

/** Per-tensor activation parameters (scale, zero point, uint8/int8), or Unsupported. */
function activationParams(env: QuantImportEnv, node: GraphNode, s: number, z: number): { scale: number; zeroPoint: number; dtype: QDType } {
  const p = qparams(env, node, s, z);
  if (!perTensor(p)) throw new Unsupported('per-axis quantization of a value computed at run time');
  if (p.dtype === 'int32') {
    const { qmin, qmax } = qRange('uint8');
    throw corrupt(`Expected a uint8 or int8 zero point (in [${qmin}, ${qmax}] or [-128, 127]) for input ${z} of ${where(node)} but received an int32 zero point ${p.zeroPoint[0]}`);
  }
  return { scale: p.scale[0]!, zeroPoint: p.zeroPoint[0]!, dtype: p.dtype };
}

/** Checks per-axis parameters against the quantized tensor (length along `axis`). */
function checkAxis(node: GraphNode, p: QParams, dims: readonly number[], axis: number): void {
  if (perTensor(p)) return;
  if (axis < 0 || axis >= dims.length) throw corrupt(`Expected axis in [0, ${dims.length - 1}] for ${where(node)} but received ${axis}`);
  if (p.scale.length !== dims[axis]) {
    throw corrupt(`Expected ${dims[axis]} per-axis scales (dimension ${axis} of [${dims.join(', ')}]) for ${where(node)} but received ${p.scale.length}`);
  }
}

/** Dequantizes a constant tensor (per tensor or along `axis`). */
function dequantizeConstant(t: Tensor, p: QParams, axis: number): Tensor<'float32'> {
  const out = new Float32Array(t.size);
  const inner = t.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channels = perTensor(p) ? 1 : t.dims[axis]!;
  for (let i = 0; i < t.size; i++) {
    const c = perTensor(p) ? 0 : Math.floor(i / inner) % channels;
    out[i] = Math.fround((t.data[i]! - p.zeroPoint[c]!) * p.scale[c]!);
  }
  return new Tensor('float32', out, t.dims.slice());
}

function axisAttr(node: GraphNode, rank: number): number {
  const a = node.attrs.axis ?? 1;
  if (typeof a !== 'number' || !Number.isInteger(a) || a < -rank || a >= Math.max(rank, 1)) throw corrupt(`Expected an axis in [${-rank}, ${rank - 1}] for ${where(node)} but received ${String(a)}`);
  return a < 0 ? a + rank : a;
}

// ---------------------------------------------------------------------------------------------
// Shapes of the nodes kept while the float nodes are normalised.

function convAttrs(env: QuantImportEnv, node: GraphNode, x: string, w: string): GraphNode['attrs'] {
  const conv = normalizeNode({ name: node.name, op: 'Conv', inputs: [x, w], outputs: node.outputs.slice(0, 1), attrs: node.attrs }, env.ctx)!;
  return conv[0]!.attrs;
}

function need(env: QuantImportEnv, node: GraphNode, i: number): Shape {
  const s = env.shapes.get(node.inputs[i] ?? '');
  if (s === undefined) throw new TypeError(`Expected a known shape for input ${i} of ${where(node)} but received none`);
  return s;
}

/** Output shapes of a quantization node in its ONNX form. */
function onnxQuantShapes(env: QuantImportEnv, node: GraphNode): Shape[] {
  switch (node.op) {
    case 'QuantizeLinear':
    case 'DequantizeLinear':
      return [need(env, node, 0).slice()];
    case 'DynamicQuantizeLinear':
      return [need(env, node, 0).slice(), [], []];
    case 'QLinearConv':
    case 'ConvInteger': {
      const w = node.op === 'QLinearConv' ? 3 : 1;
      const attrs = convAttrs(env, node, node.inputs[0]!, node.inputs[w]!);
      return inferNodeShapes({ ...node, op: 'Conv', attrs }, [need(env, node, 0), need(env, node, w)])!;
    }
    case 'QLinearMatMul':
      return inferNodeShapes({ ...node, op: 'MatMul' }, [need(env, node, 0), need(env, node, 3)])!;
    case 'MatMulInteger':
      return inferNodeShapes({ ...node, op: 'MatMul' }, [need(env, node, 0), need(env, node, 1)])!;
    case 'QGemm':
      return inferNodeShapes({ ...node, op: 'Gemm', attrs: { transA: node.attrs.transA ?? 0, transB: node.attrs.transB ?? 0 } }, [need(env, node, 0), need(env, node, 3)])!;
    case 'QLinearAdd':
      return [broadcastShapes(node, need(env, node, 0), need(env, node, 3))];
    default:
      throw new Unsupported('not implemented');
  }
}

/**
 * Adds one quantization node during the import's forward pass: infers its output shapes and
 * folds QuantizeLinear / DequantizeLinear of constants, except a DequantizeLinear whose readers
 * may take it as an int8 weight or int32 bias (it waits for `liftQuantized`).
 */
export function addQuantNode(node: GraphNode, env: QuantImportEnv, nodes: GraphNode[]): void {
  const x = constant(env, node.inputs[0]);
  if ((node.op === 'DequantizeLinear' || node.op === 'QuantizeLinear') && x !== undefined) {
    const readers = env.readerOps(node.outputs[0]!);
    const keep = node.op === 'DequantizeLinear' && readers.length > 0 && readers.every((op) => WEIGHT_READERS.has(op)) && !env.graphOutputs.has(node.outputs[0]!);
    const p = qparams(env, node, 1, 2);
    const axis = axisAttr(node, x.dims.length);
    checkAxis(node, p, x.dims, axis);
    if (!keep) {
      const folded = node.op === 'DequantizeLinear' ? dequantizeConstant(x, p, axis) : quantizeConstant(node, x, p, axis);
      env.known.set(node.outputs[0]!, folded);
      env.shapes.set(node.outputs[0]!, folded.dims.slice());
      return;
    }
  }
  const shapes = onnxQuantShapes(env, node);
  node.outputs.forEach((o, i) => {
    if (o !== '' && shapes[i] !== undefined) env.shapes.set(o, shapes[i]!);
  });
  nodes.push(node);
}

function quantizeConstant(node: GraphNode, x: Tensor, p: QParams, axis: number): Tensor {
  if (p.dtype === 'int32') throw corrupt(`Expected a uint8 or int8 zero point for ${where(node)} but received an int32 one`);
  const { qmin, qmax } = qRange(p.dtype);
  const inner = x.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channels = perTensor(p) ? 1 : x.dims[axis]!;
  const out = p.dtype === 'uint8' ? new Uint8Array(x.size) : new Int8Array(x.size);
  for (let i = 0; i < x.size; i++) {
    const c = perTensor(p) ? 0 : Math.floor(i / inner) % channels;
    out[i] = Math.min(qmax, Math.max(qmin, roundHalfEven(Math.fround(x.data[i]! / p.scale[c]!)) + p.zeroPoint[c]!));
  }
  return new Tensor(p.dtype, out as never, x.dims.slice());
}

// ---------------------------------------------------------------------------------------------
// Lifting.

interface Weights {
  w: Tensor;
  wScale: Float32Array;
}

class Lifter {
  readonly producer = new Map<string, GraphNode>();
  readonly consumers = new Map<string, GraphNode[]>();
  /** Nodes swallowed by a lifted op. */
  readonly removed = new Set<GraphNode>();
  /** Lifted replacements, by the node they take the place of. */
  readonly replaced = new Map<GraphNode, GraphNode[]>();

  constructor(readonly env: QuantImportEnv, readonly nodes: GraphNode[]) {
    for (const n of nodes) {
      for (const o of n.outputs) if (o !== '') this.producer.set(o, n);
      for (const i of n.inputs) {
        if (i === '') continue;
        const list = this.consumers.get(i);
        if (list) list.push(n);
        else this.consumers.set(i, [n]);
      }
    }
  }

  soleConsumer(value: string): GraphNode | undefined {
    const c = this.consumers.get(value);
    return c !== undefined && c.length === 1 && !this.env.graphOutputs.has(value) && !this.removed.has(c[0]!) ? c[0] : undefined;
  }

  /** A DequantizeLinear of a run-time quantized value, per tensor. */
  dqInput(value: string): { q: string; p: { scale: number; zeroPoint: number; dtype: QDType } } | undefined {
    const n = this.producer.get(value);
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
    const n = this.producer.get(value);
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
  outputChain(value: string): { out: string; swallowed: GraphNode[]; y?: { scale: number; zeroPoint: number; dtype: QDType }; relu: boolean } {
    const quantizer = (n: GraphNode | undefined): { scale: number; zeroPoint: number; dtype: QDType } | undefined => {
      if (n === undefined || n.op !== 'QuantizeLinear') return undefined;
      try {
        return activationParams(this.env, n, 1, 2);
      } catch (err) {
        if (err instanceof Unsupported) return undefined;
        throw err;
      }
    };
    const c = this.soleConsumer(value);
    const yq = quantizer(c);
    if (yq !== undefined) return { out: c!.outputs[0]!, swallowed: [c!], y: yq, relu: false };
    if (c?.op === 'Relu') {
      const c2 = this.soleConsumer(c.outputs[0]!);
      const y2 = quantizer(c2);
      if (y2 !== undefined) return { out: c2!.outputs[0]!, swallowed: [c, c2!], y: y2, relu: true };
    }
    return { out: value, swallowed: [], relu: false };
  }

  initializer(base: string, t: Tensor): string {
    const name = this.env.ctx.fresh(base);
    this.env.known.set(name, t);
    this.env.shapes.set(name, t.dims.slice());
    return name;
  }

  /** Registers a lifted node in place of `node`, swallowing the nodes of its output chain. */
  replace(node: GraphNode, lifted: GraphNode[], swallowed: GraphNode[]): void {
    for (const s of swallowed) this.removed.add(s);
    this.replaced.set(node, lifted);
  }

  // ------------------------------------------------------------------ QDQ patterns

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
    if (!conv && xShape?.length !== 2) return false;
    const axis = conv || transB === 1 ? 0 : 1;
    const w = this.int8Weights(node.inputs[1] ?? '', axis);
    if (w === undefined) return false;
    let biasValue = node.op === 'MatMul' ? undefined : node.inputs[2];
    let chainFrom = node.outputs[0]!;
    const swallowed: GraphNode[] = [];
    if (node.op === 'MatMul') {
      // A constant bias added right after the MatMul joins it.
      const add = this.soleConsumer(chainFrom);
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
      this.initializer(`${node.name}_weight_q`, w.w),
      this.initializer(`${node.name}_weight_scale`, new Tensor('float32', w.wScale, [w.wScale.length])),
      bias === undefined ? '' : this.initializer(`${node.name}_bias_q`, new Tensor('int32', bias, [bias.length])),
    ];
    while (inputs[inputs.length - 1] === '') inputs.pop();
    this.replace(node, [{ name: node.name, op: conv ? 'QLinearConv' : 'QLinearGemm', inputs, outputs: [chain.out], attrs }], [...swallowed, ...chain.swallowed]);
    return true;
  }

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
    this.replace(node, [{ name: node.name, op: 'QLinearAdd', inputs: [a.q, b.q], outputs: [chain.out], attrs }], chain.swallowed);
    return true;
  }

  liftPassThrough(node: GraphNode): boolean {
    const x = this.dqInput(node.inputs[0] ?? '');
    if (x === undefined) return false;
    const chain = this.outputChain(node.outputs[0]!);
    if (chain.y === undefined || chain.relu || chain.y.scale !== x.p.scale || chain.y.zeroPoint !== x.p.zeroPoint || chain.y.dtype !== x.p.dtype) return false;
    this.replace(node, [{ ...node, inputs: [x.q, ...node.inputs.slice(1)], outputs: [chain.out] }], chain.swallowed);
    return true;
  }

  // ------------------------------------------------------------------ QOperator nodes

  /** QLinearConv / QLinearMatMul / QGemm: int8 op, or float fallback between DQ and Q. */
  liftQLinear(node: GraphNode): GraphNode[] {
    const conv = node.op === 'QLinearConv';
    const gemm = node.op === 'QGemm';
    const x = activationParams(this.env, node, 1, 2);
    const wName = node.inputs[3]!;
    const wT = constant(this.env, wName);
    if (wT === undefined) throw new Unsupported('a weight computed at run time');
    const wp = qparams(this.env, node, 4, 5);
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
    const y = hasY ? activationParams(this.env, node, ysIdx, yzIdx) : undefined;
    const biasName = biasIdx >= 0 ? node.inputs[biasIdx] : undefined;
    const biasT = biasName ? constant(this.env, biasName) : undefined;
    if (biasName && biasT === undefined) throw new Unsupported('a bias computed at run time');
    const channels = wT.dims[axis]!;
    if (biasT !== undefined && (biasT.type !== 'int32' || biasT.size !== channels)) throw corrupt(`Expected an int32 bias of ${channels} values for ${where(node)} but received a ${biasT.type} tensor of ${biasT.size}`);
    const alpha = gemm ? Number(node.attrs.alpha ?? 1) : 1;
    const xShape = this.env.shapes.get(node.inputs[0]!);
    const int8 = wT.type === 'int8' && wp.zeroPoint.every((z) => z === 0) && alpha === 1 && (conv || xShape?.length === 2);
    const wScale = perTensor(wp) ? new Float32Array(channels).fill(wp.scale[0]!) : Float32Array.from(wp.scale);
    const out = node.outputs[0]!;
    if (int8) {
      const attrs: GraphNode['attrs'] = conv
        ? { ...convAttrs(this.env, node, node.inputs[0]!, wName), x_scale: x.scale, x_zero_point: x.zeroPoint }
        : { transB, a_scale: x.scale, a_zero_point: x.zeroPoint };
      if (y !== undefined) Object.assign(attrs, { y_scale: y.scale, y_zero_point: y.zeroPoint, y_dtype: y.dtype });
      const inputs = [node.inputs[0]!, wName, this.initializer(`${node.name}_weight_scale`, new Tensor('float32', wScale, [channels]))];
      if (biasName) inputs.push(biasName);
      return [{ name: node.name, op: conv ? 'QLinearConv' : 'QLinearGemm', inputs, outputs: [out], attrs }];
    }
    // Float fallback: dequantize input and weight (and the bias at x_scale * w_scale), run the float op.
    const xf = this.env.ctx.fresh(`${node.inputs[0]}_dequantized`);
    const nodes: GraphNode[] = [{ name: this.env.ctx.fresh(`${node.name}_dequantize_input`), op: 'DequantizeLinear', inputs: [node.inputs[0]!], outputs: [xf], attrs: { scale: x.scale, zero_point: x.zeroPoint } }];
    this.env.shapes.set(xf, this.env.shapes.get(node.inputs[0]!)!.slice());
    const inputs = [xf, this.initializer(`${node.name}_weight`, dequantizeConstant(wT, wp, axis))];
    if (biasT !== undefined) {
      const bias = Float32Array.from(biasT.data as Int32Array, (v, o) => v * Math.fround(x.scale * wScale[o]!));
      inputs.push(this.initializer(`${node.name}_bias`, new Tensor('float32', bias, [channels])));
    }
    const yf = y === undefined ? out : this.env.ctx.fresh(`${out}_float`);
    const op = conv ? 'Conv' : gemm ? 'Gemm' : 'MatMul';
    const attrs = conv ? convAttrs(this.env, node, node.inputs[0]!, wName) : gemm ? { alpha, beta: 1, transA: 0, transB } : {};
    nodes.push({ name: node.name, op, inputs, outputs: [yf], attrs });
    if (y !== undefined) {
      this.env.shapes.set(yf, this.env.shapes.get(out)!.slice());
      nodes.push({ name: this.env.ctx.fresh(`${node.name}_quantize_output`), op: 'QuantizeLinear', inputs: [yf], outputs: [out], attrs: { scale: y.scale, zero_point: y.zeroPoint, dtype: y.dtype } });
    }
    return nodes;
  }

  /** com.microsoft QLinearAdd: int8 when both inputs are run-time values of one shape. */
  liftQLinearAdd(node: GraphNode): GraphNode[] {
    const y = activationParams(this.env, node, 6, 7);
    const sides = [0, 3].map((i) => {
      const t = constant(this.env, node.inputs[i]);
      const p = t === undefined ? activationParams(this.env, node, i + 1, i + 2) : undefined;
      return { name: node.inputs[i]!, t, p };
    });
    const [a, b] = sides as [typeof sides[0], typeof sides[0]];
    const out = node.outputs[0]!;
    if (a.p && b.p && sameShape(this.env.shapes.get(a.name), this.env.shapes.get(b.name))) {
      return [{
        name: node.name, op: 'QLinearAdd', inputs: [a.name, b.name], outputs: [out],
        attrs: { a_scale: a.p.scale, a_zero_point: a.p.zeroPoint, b_scale: b.p.scale, b_zero_point: b.p.zeroPoint, y_scale: y.scale, y_zero_point: y.zeroPoint, y_dtype: y.dtype },
      }];
    }
    const nodes: GraphNode[] = [];
    const floats = sides.map((side, k) => {
      if (side.t !== undefined) {
        const p = qparams(this.env, node, 3 * k + 1, 3 * k + 2);
        if (!perTensor(p)) throw new Unsupported('per-axis QLinearAdd parameters');
        return this.initializer(`${node.name}_${k === 0 ? 'a' : 'b'}`, dequantizeConstant(side.t, p, 0));
      }
      const f = this.env.ctx.fresh(`${side.name}_dequantized`);
      this.env.shapes.set(f, this.env.shapes.get(side.name)!.slice());
      nodes.push({ name: this.env.ctx.fresh(`${node.name}_dequantize_${k}`), op: 'DequantizeLinear', inputs: [side.name], outputs: [f], attrs: { scale: side.p!.scale, zero_point: side.p!.zeroPoint } });
      return f;
    });
    const sum = this.env.ctx.fresh(`${out}_float`);
    this.env.shapes.set(sum, this.env.shapes.get(out)!.slice());
    nodes.push({ name: node.name, op: 'Add', inputs: floats, outputs: [sum], attrs: {} });
    nodes.push({ name: this.env.ctx.fresh(`${node.name}_quantize_output`), op: 'QuantizeLinear', inputs: [sum], outputs: [out], attrs: { scale: y.scale, zero_point: y.zeroPoint, dtype: y.dtype } });
    return nodes;
  }

  /**
   * DynamicQuantizeLinear -> MatMulInteger -> Cast (an Identity by now) -> Mul by
   * (a_scale * w_scale) [-> Add bias] as one DynamicQGemm; undefined when it is not that pattern.
   */
  liftDynamic(node: GraphNode): boolean {
    const dq = this.producer.get(node.inputs[0] ?? '');
    if (dq?.op !== 'DynamicQuantizeLinear' || (node.inputs[2] ?? '') !== dq.outputs[2]) return false;
    const w = constant(this.env, node.inputs[1]);
    if (w === undefined || w.type !== 'int8' || w.dims.length !== 2) return false;
    const wzp = constant(this.env, node.inputs[3]);
    if (node.inputs[3] && (wzp === undefined || Array.from(wzp.data as ArrayLike<number>).some((z) => z !== 0))) return false;
    if (this.env.shapes.get(dq.inputs[0]!)?.length !== 2) return false;
    const cast = this.soleConsumer(node.outputs[0]!);
    if (cast?.op !== 'Identity') return false;
    const mul = this.soleConsumer(cast.outputs[0]!);
    if (mul?.op !== 'Mul') return false;
    const scaleValue = mul.inputs[0] === cast.outputs[0] ? mul.inputs[1] : mul.inputs[0];
    const scaleMul = this.producer.get(scaleValue ?? '');
    if (scaleMul?.op !== 'Mul' || this.soleConsumer(scaleValue!) !== mul) return false;
    const wsName = scaleMul.inputs[0] === dq.outputs[1] ? scaleMul.inputs[1] : scaleMul.inputs[1] === dq.outputs[1] ? scaleMul.inputs[0] : undefined;
    const ws = constant(this.env, wsName);
    const n = w.dims[1]!;
    if (ws === undefined || ws.type !== 'float32' || (ws.size !== 1 && ws.size !== n)) return false;
    const wScale = ws.size === 1 ? new Float32Array(n).fill(ws.data[0]!) : Float32Array.from(ws.data as Float32Array);
    if (wScale.some((s) => !(s > 0) || !Number.isFinite(s))) throw corrupt(`Expected positive finite weight scales for ${where(scaleMul)} but received ${Array.from(wScale).find((s) => !(s > 0) || !Number.isFinite(s))}`);
    let out = mul.outputs[0]!;
    const swallowed = [cast, mul, scaleMul];
    const inputs = [dq.inputs[0]!, node.inputs[1]!, this.initializer(`${node.name}_weight_scale`, new Tensor('float32', wScale, [n]))];
    const add = this.soleConsumer(out);
    if (add?.op === 'Add') {
      const other = add.inputs[0] === out ? add.inputs[1] : add.inputs[0];
      const b = constant(this.env, other);
      if (b !== undefined && b.type === 'float32' && b.size === n && b.dims.length === 1) {
        inputs.push(other!);
        out = add.outputs[0]!;
        swallowed.push(add);
      }
    }
    this.replace(node, [{ name: node.name, op: 'DynamicQGemm', inputs, outputs: [out], attrs: { transB: 0 } }], swallowed);
    return true;
  }
}

function sameShape(a: Shape | undefined, b: Shape | undefined): boolean {
  return a !== undefined && b !== undefined && a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Left-over QuantizeLinear / DequantizeLinear in canonical IR form (run-time values, per tensor). */
function boundary(env: QuantImportEnv, node: GraphNode): GraphNode[] {
  const t = constant(env, node.inputs[0]);
  if (t !== undefined) {
    // A constant dequantized for a float op after all: fold it.
    const p = qparams(env, node, 1, 2);
    const axis = axisAttr(node, t.dims.length);
    env.known.set(node.outputs[0]!, node.op === 'DequantizeLinear' ? dequantizeConstant(t, p, axis) : quantizeConstant(node, t, p, axis));
    return [];
  }
  const p = activationParams(env, node, 1, 2);
  const attrs: GraphNode['attrs'] = node.op === 'QuantizeLinear' ? { scale: p.scale, zero_point: p.zeroPoint, dtype: p.dtype } : { scale: p.scale, zero_point: p.zeroPoint };
  return [{ name: node.name, op: node.op, inputs: [node.inputs[0]!], outputs: [node.outputs[0]!], attrs }];
}

/**
 * Rewrites the quantization nodes kept by `addQuantNode` (and the float nodes between them) into
 * int8 IR ops; see the file comment. Throws `Unsupported` (with the node) for what cannot run.
 */
export function liftQuantized(nodes: GraphNode[], env: QuantImportEnv, reject: (node: GraphNode, reason: string) => void): GraphNode[] {
  if (!nodes.some((n) => isQuantOnnxNode(n.op, '') || isQuantOnnxNode(n.op, 'com.microsoft'))) return nodes;
  const lift = new Lifter(env, nodes);
  for (const node of nodes) {
    if (lift.removed.has(node)) continue;
    try {
      switch (node.op) {
        case 'Conv':
        case 'Gemm':
        case 'MatMul':
          lift.liftConvOrGemm(node);
          break;
        case 'Add':
          lift.liftAdd(node);
          break;
        case 'MaxPool':
        case 'Flatten':
        case 'Reshape':
        case 'Identity':
          lift.liftPassThrough(node);
          break;
        case 'MatMulInteger':
          lift.liftDynamic(node);
          break;
      }
    } catch (err) {
      if (!(err instanceof Unsupported)) throw err;
    }
  }
  const out: GraphNode[] = [];
  for (const node of nodes) {
    if (lift.removed.has(node)) continue;
    const lifted = lift.replaced.get(node);
    if (lifted !== undefined) {
      out.push(...lifted);
      continue;
    }
    try {
      switch (node.op) {
        case 'QuantizeLinear':
        case 'DequantizeLinear':
          out.push(...boundary(env, node));
          break;
        case 'QLinearConv':
        case 'QLinearMatMul':
        case 'QGemm':
          out.push(...lift.liftQLinear(node));
          break;
        case 'QLinearAdd':
          out.push(...lift.liftQLinearAdd(node));
          break;
        case 'DynamicQuantizeLinear':
          // Kept only as part of a DynamicQGemm; alone it has no IR form.
          if ((lift.consumers.get(node.outputs[0]!) ?? []).some((c) => !lift.replaced.has(c))) throw new Unsupported('DynamicQuantizeLinear outside a DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul pattern');
          break;
        case 'MatMulInteger':
        case 'ConvInteger':
          throw new Unsupported(`${node.op} outside a DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul pattern (its int32 output has no Kiln int8 IR form)`);
        default:
          out.push(node);
      }
    } catch (err) {
      if (!(err instanceof Unsupported)) throw err;
      reject(node, err.reason);
      out.push(node);
    }
  }
  return fuseQuantizedRelu(out, env.graphOutputs);
}

/**
 * A Relu between a DequantizeLinear and a QuantizeLinear with the same parameters, right after an
 * int8 op with those output parameters (Q -> DQ -> Relu -> Q, as PyTorch exports write it), is
 * that op's fused ReLU: clamping the quantized value at its zero point is exact.
 */
function fuseQuantizedRelu(nodes: GraphNode[], graphOutputs: ReadonlySet<string>): GraphNode[] {
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
