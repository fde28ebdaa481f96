/**
 * Kiln's int8 graph IR (docs/int8-ir.md), the int8 extension of the graph IR in ir.ts: which ops
 * belong to it, the checked quantization parameters of a node, the dtype and quantization of every
 * value, and the output shapes of the int8 ops. It lives beside ir.ts because the runtime (.kiln
 * graphs), quant and the ONNX importer and exporter all read it; none of them owns it.
 */
import { ErrorCode, KilnError, type ErrorCodeValue } from '../errors.js';
import { Tensor } from '../tensor.js';
import type { Graph, GraphNode, ValueInfo } from './ir.js';
import { broadcastShapes, inferNodeShapes, inferShapes, type Shape } from './shape-inference.js';

/** The ops of the int8 IR that are not ordinary float ONNX ops. */
export const INT8_OPS: ReadonlySet<string> = new Set(['QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearGemm', 'QLinearAdd', 'DynamicQGemm', 'QLinearConcat', 'QLinearLookup', 'QLinearMul', 'QLinearGlobalAveragePool', 'QLinearAveragePool']);

/** Float ops that run on quantized values unchanged (same dtype and parameters as the input). */
export const QUANT_PASSTHROUGH_OPS: ReadonlySet<string> = new Set(['MaxPool', 'Flatten', 'Reshape', 'Identity', 'Resize', 'Slice', 'Split', 'Transpose']);

export type QDType = 'uint8' | 'int8';

/** A quantized value's per-tensor parameters: real = (q - zeroPoint) * scale. */
export interface TensorQuant {
  scale: number;
  zeroPoint: number;
  dtype: QDType;
}

export function qRange(dtype: QDType): { qmin: number; qmax: number } {
  return dtype === 'uint8' ? { qmin: 0, qmax: 255 } : { qmin: -128, qmax: 127 };
}

/** Reads and checks the int8 attributes of one node; errors carry `code` and name the node. */
export class QuantAttrs {
  constructor(readonly node: GraphNode, readonly code: ErrorCodeValue = ErrorCode.INVALID_ARG) {}

  fail(what: string, expected: string, received: unknown): KilnError {
    const shown = typeof received === 'string' ? `'${received}'` : received instanceof Tensor ? `a ${received.type} tensor of shape [${received.dims.join(', ')}]` : String(received);
    return new KilnError(this.code, `Expected ${expected} for ${what} of ${this.node.op} '${this.node.name}' but received ${shown}`);
  }

  has(key: string): boolean {
    return this.node.attrs[key] !== undefined;
  }

  /** A positive finite scale, exactly representable in float32. */
  scale(key: string): number {
    const v = this.node.attrs[key];
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v) || !(Math.fround(v) > 0) || !Number.isFinite(Math.fround(v))) {
      throw this.fail(`attribute ${key}`, 'a positive finite float32 scale', v);
    }
    return Math.fround(v);
  }

  dtype(key: string, fallback?: QDType): QDType {
    const v = this.node.attrs[key] ?? fallback;
    if (v !== 'uint8' && v !== 'int8') throw this.fail(`attribute ${key}`, "'uint8' or 'int8'", v);
    return v;
  }

  zeroPoint(key: string, dtype: QDType): number {
    const v = this.node.attrs[key] ?? 0;
    const { qmin, qmax } = qRange(dtype);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < qmin || v > qmax) throw this.fail(`attribute ${key}`, `an integer in [${qmin}, ${qmax}] (${dtype} zero point)`, v);
    return v;
  }

  /** The output quantization of a QLinear* node, or undefined for a float32 output. */
  output(): TensorQuant | undefined {
    if (!this.has('y_scale') && !this.has('y_zero_point') && !this.has('y_dtype')) return undefined;
    const dtype = this.dtype('y_dtype', 'uint8');
    return { scale: this.scale('y_scale'), zeroPoint: this.zeroPoint('y_zero_point', dtype), dtype };
  }

  /** The fused activation: 'Relu' or none. */
  activation(): 'Relu' | undefined {
    const v = this.node.attrs.kiln_activation;
    if (v === undefined || v === 'None') return undefined;
    if (v !== 'Relu') throw new KilnError(ErrorCode.UNSUPPORTED_OP, `Kiln's int8 ops fuse only kiln_activation 'Relu' but ${this.node.op} '${this.node.name}' has '${String(v)}'`);
    return 'Relu';
  }
}

/** Weight, per-channel scales and bias of a QLinearConv / QLinearGemm / DynamicQGemm, checked. */
export interface QuantWeights {
  w: Tensor<'int8'>;
  wScale: Float32Array;
  /** int32 (QLinear*) or float32 (DynamicQGemm) bias, or undefined. */
  bias: Tensor | undefined;
  /** Output channels (the axis the scales run along). */
  channels: number;
  /** Axis of `w` that indexes the output channel. */
  axis: number;
}

export function quantWeights(a: QuantAttrs, initializers: ReadonlyMap<string, Tensor>): QuantWeights {
  const node = a.node;
  const get = (i: number, what: string): Tensor => {
    const name = node.inputs[i];
    const t = name === undefined || name === '' ? undefined : initializers.get(name);
    if (t === undefined) throw a.fail(`input ${i} (${what})`, 'an initializer', name ?? 'nothing');
    return t;
  };
  const w = get(1, 'weight');
  if (w.type !== 'int8') throw a.fail('input 1 (weight)', 'an int8 initializer', w);
  const isConv = node.op === 'QLinearConv';
  if (isConv ? w.dims.length !== 4 : w.dims.length !== 2) throw a.fail('input 1 (weight)', isConv ? 'a 4-D OIHW weight' : 'a 2-D weight', w);
  const transB = isConv ? 1 : node.attrs.transB ?? 0;
  if (transB !== 0 && transB !== 1) throw a.fail('attribute transB', '0 or 1', transB);
  const axis = isConv || transB === 1 ? 0 : 1;
  const channels = w.dims[axis]!;
  const s = get(2, 'weight scale');
  if (s.type !== 'float32' || (s.size !== 1 && s.size !== channels) || s.dims.length > 1) throw a.fail('input 2 (weight scale)', `float32 [1] or [${channels}] scales`, s);
  const wScale = Float32Array.from(s.size === 1 ? new Array<number>(channels).fill(s.data[0]!) : (s.data as Float32Array));
  for (let i = 0; i < wScale.length; i++) {
    if (!(wScale[i]! > 0) || !Number.isFinite(wScale[i]!)) throw a.fail(`weight scale [${i}]`, 'a positive finite scale', wScale[i]);
  }
  let bias: Tensor | undefined;
  if (node.inputs[3] !== undefined && node.inputs[3] !== '') {
    bias = get(3, 'bias');
    const type = node.op === 'DynamicQGemm' ? 'float32' : 'int32';
    if (bias.type !== type || bias.size !== channels || bias.dims.length !== 1) throw a.fail('input 3 (bias)', `a ${type} [${channels}] bias`, bias);
  }
  return { w: w as Tensor<'int8'>, wScale, bias, channels, axis };
}

/**
 * Dtype and per-tensor quantization of every value of a graph, walking it in order: QuantizeLinear
 * and quantized QLinear* outputs start a quantized value, pass-through ops copy their input's.
 */
export function valueQuantization(graph: Graph, code: ErrorCodeValue = ErrorCode.INVALID_ARG): { dtypes: Map<string, ValueInfo['dtype']>; quant: Map<string, TensorQuant> } {
  const dtypes = new Map<string, ValueInfo['dtype']>();
  const quant = new Map<string, TensorQuant>();
  for (const i of graph.inputs) dtypes.set(i.name, i.dtype);
  for (const [name, t] of graph.initializers) dtypes.set(name, t.type);
  for (const node of graph.nodes) {
    const a = new QuantAttrs(node, code);
    const out = node.outputs[0];
    if (out === undefined || out === '') continue;
    let q: TensorQuant | undefined;
    switch (node.op) {
      case 'QuantizeLinear': {
        const dtype = a.dtype('dtype', 'uint8');
        q = { scale: a.scale('scale'), zeroPoint: a.zeroPoint('zero_point', dtype), dtype };
        break;
      }
      case 'QLinearConv':
      case 'QLinearGemm':
      case 'QLinearAdd':
      case 'QLinearConcat':
      case 'QLinearLookup':
      case 'QLinearMul':
      case 'QLinearGlobalAveragePool':
      case 'QLinearAveragePool':
        q = a.output();
        break;
      default:
        if (QUANT_PASSTHROUGH_OPS.has(node.op)) q = quant.get(node.inputs[0] ?? '');
    }
    // Every output of a Split; the first of any other op.
    for (const o of node.op === 'Split' ? node.outputs : [out]) {
      if (o === '') continue;
      if (q !== undefined) {
        quant.set(o, q);
        dtypes.set(o, q.dtype);
      } else {
        dtypes.set(o, 'float32');
      }
    }
  }
  return { dtypes, quant };
}

/** Output shape of an int8 IR op, through the float op it stands for. */
export function int8NodeShapes(node: GraphNode, inputs: readonly (Shape | undefined)[]): Shape[] | undefined {
  switch (node.op) {
    case 'QuantizeLinear':
    case 'DequantizeLinear':
    case 'QLinearLookup':
      return inputs[0] === undefined ? undefined : [inputs[0].slice()];
    case 'QLinearConv':
      return inferNodeShapes({ ...node, op: 'Conv', inputs: node.inputs.slice(0, 2) }, inputs.slice(0, 2));
    case 'QLinearGemm':
    case 'DynamicQGemm': {
      const a = inputs[0];
      // QLinearGemm over the last axis of [N, ..., K]: the Gemm on [rows, K], the leading dims kept.
      if (node.op === 'QLinearGemm' && a !== undefined && a.length > 2) {
        const rows = inferNodeShapes({ ...node, op: 'Gemm', inputs: node.inputs.slice(0, 2), attrs: { transB: node.attrs.transB ?? 0 } }, [['rows', a[a.length - 1]!], inputs[1]]);
        return rows === undefined ? undefined : [[...a.slice(0, -1), rows[0]![1]!]];
      }
      return inferNodeShapes({ ...node, op: 'Gemm', inputs: node.inputs.slice(0, 2), attrs: { transB: node.attrs.transB ?? 0 } }, inputs.slice(0, 2));
    }
    case 'QLinearAdd':
    case 'QLinearMul':
      return inputs[0] === undefined || inputs[1] === undefined ? undefined : [broadcastShapes(node, inputs[0], inputs[1])];
    case 'QLinearGlobalAveragePool':
      return inferNodeShapes({ ...node, op: 'GlobalAveragePool' }, inputs.slice(0, 1));
    case 'QLinearAveragePool':
      return inferNodeShapes({ ...node, op: 'AveragePool' }, inputs.slice(0, 1));
    case 'QLinearConcat':
      return inferNodeShapes({ ...node, op: 'Concat' }, inputs);
    default:
      return inferNodeShapes(node, inputs);
  }
}

/** Shapes of every value of a graph that may hold int8 ops (like inferShapes). */
export function inferInt8GraphShapes(graph: Graph): Map<string, Shape> {
  return inferShapes(graph, int8NodeShapes);
}

/** Whether a graph uses any int8 IR op. */
export function isInt8Graph(graph: Graph): boolean {
  return graph.nodes.some((n) => INT8_OPS.has(n.op));
}
