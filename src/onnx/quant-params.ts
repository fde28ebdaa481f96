/**
 * What the import of quantized ONNX nodes shares between its passes (import-quant.ts drives them,
 * lift-qdq.ts and map-qoperator.ts rewrite): the importer's state, the checked scale and zero point
 * inputs of QuantizeLinear / DequantizeLinear / QLinear* nodes, and quantizing or dequantizing a
 * constant with them at import.
 *
 * Malformed parameters (scale 0, negative, NaN or infinite; zero points of another type or count;
 * per-axis scales of the wrong length) are ERR_KILN_CORRUPT_MODEL; parameters the int8 IR cannot
 * hold (computed at run time, per axis on a run-time value) are `Unsupported`.
 */
import { isSymbolic, type KnownValue } from '../graph/constant-folding.js';
import { qRange, type QDType } from '../graph/int8-ir.js';
import type { GraphNode } from '../graph/ir.js';
import type { Shape } from '../graph/shape-inference.js';
import { roundHalfEven } from '../quant/qparams.js';
import { Tensor } from '../tensor.js';
import { normalizeNode, Unsupported, type NormalizeContext } from './normalize.js';
import { corrupt } from './proto.js';

/** What the importer shares with the quantization passes while it converts a graph. */
export interface QuantImportEnv {
  ctx: NormalizeContext;
  known: Map<string, KnownValue>;
  shapes: Map<string, Shape>;
  graphOutputs: ReadonlySet<string>;
  /** Op types of the nodes that read a value in the original model. */
  readerOps(value: string): readonly string[];
}

/** Checked quantization parameters of one tensor: per tensor (one value) or along `axis`. */
export interface QParams {
  scale: Float32Array;
  zeroPoint: Int32Array;
  dtype: QDType | 'int32';
}

/** Per-tensor parameters of a run-time (activation) value. */
export interface ActivationParams {
  scale: number;
  zeroPoint: number;
  dtype: QDType;
}

/** The value of a constant input (known at import), or undefined for a run-time value. */
export function constant(env: QuantImportEnv, name: string | undefined): Tensor | undefined {
  if (name === undefined || name === '') return undefined;
  const v = env.known.get(name);
  return v === undefined || isSymbolic(v) ? undefined : v;
}

/** A node as error messages name it. */
export function where(node: GraphNode): string {
  return `${node.op} '${node.name}'`;
}

/** Scale and zero point at inputs `s` and `z` of a node (z may be omitted: uint8 0). */
export function qparams(env: QuantImportEnv, node: GraphNode, s: number, z: number): QParams {
  const scaleName = node.inputs[s];
  const scale = constant(env, scaleName);
  if (scale === undefined) throw new Unsupported(`a scale ('${scaleName ?? ''}') computed at run time`);
  const block = node.attrs.block_size;
  if (typeof block === 'number' && block !== 0) throw new Unsupported(`blocked quantization (block_size ${block})`);
  if (scale.type !== 'float32' || scale.dims.length > 1 || scale.size === 0) {
    throw corrupt(`Expected a float scalar or 1-D float scales for input ${s} ('${scaleName}') of ${where(node)} but received a ${scale.type} tensor of shape [${scale.dims.join(', ')}]`);
  }
  for (let i = 0; i < scale.size; i++) {
    const v = scale.data[i]!;
    if (!(v > 0) || !Number.isFinite(v)) throw corrupt(`Expected positive finite scales for input ${s} ('${scaleName}') of ${where(node)} but received ${v} at index ${i}`);
  }
  const zpName = node.inputs[z];
  let zeroPoint = new Int32Array(scale.size);
  // Without a zero point the type is output_dtype's (QuantizeLinear-21), uint8 by default.
  const outputDtype = node.attrs.output_dtype;
  if (typeof outputDtype === 'number' && outputDtype !== 0 && outputDtype !== 2 && outputDtype !== 3) throw new Unsupported(`output_dtype ${outputDtype} (Kiln quantizes to uint8 or int8)`);
  let dtype: QParams['dtype'] = outputDtype === 3 ? 'int8' : 'uint8';
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

export function perTensor(p: QParams): boolean {
  return p.scale.length === 1;
}

/** Per-tensor activation parameters (scale, zero point, uint8/int8), or Unsupported. */
export function activationParams(env: QuantImportEnv, node: GraphNode, s: number, z: number): ActivationParams {
  const p = qparams(env, node, s, z);
  if (!perTensor(p)) throw new Unsupported('per-axis quantization of a value computed at run time');
  // ONNX allows 16-bit (and, for DequantizeLinear, 32-bit) quantized values; Kiln's are 8-bit.
  // Wider integer types are read as int32, so the zero point's type is all that tells them apart.
  if (p.dtype === 'int32') {
    if (node.op === 'QuantizeLinear' || node.op === 'DequantizeLinear') throw new Unsupported(`quantization wider than 8 bits (a zero point of an integer type other than uint8 and int8: ${p.zeroPoint[0]})`);
    const { qmin, qmax } = qRange('uint8');
    throw corrupt(`Expected a uint8 or int8 zero point (in [${qmin}, ${qmax}] or [-128, 127]) for input ${z} of ${where(node)} but received an int32 zero point ${p.zeroPoint[0]}`);
  }
  return { scale: p.scale[0]!, zeroPoint: p.zeroPoint[0]!, dtype: p.dtype };
}

/** Checks per-axis parameters against the quantized tensor (length along `axis`). */
export function checkAxis(node: GraphNode, p: QParams, dims: readonly number[], axis: number): void {
  if (perTensor(p)) return;
  if (axis < 0 || axis >= dims.length) throw corrupt(`Expected axis in [0, ${dims.length - 1}] for ${where(node)} but received ${axis}`);
  if (p.scale.length !== dims[axis]) {
    throw corrupt(`Expected ${dims[axis]} per-axis scales (dimension ${axis} of [${dims.join(', ')}]) for ${where(node)} but received ${p.scale.length}`);
  }
}

/** The `axis` attribute of a QuantizeLinear / DequantizeLinear (default 1), made non-negative. */
export function axisAttr(node: GraphNode, rank: number): number {
  const a = node.attrs.axis ?? 1;
  if (typeof a !== 'number' || !Number.isInteger(a) || a < -rank || a >= Math.max(rank, 1)) throw corrupt(`Expected an axis in [${-rank}, ${rank - 1}] for ${where(node)} but received ${String(a)}`);
  return a < 0 ? a + rank : a;
}

/** Dequantizes a constant tensor (per tensor or along `axis`). */
export function dequantizeConstant(t: Tensor, p: QParams, axis: number): Tensor<'float32'> {
  const out = new Float32Array(t.size);
  const inner = t.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channels = perTensor(p) ? 1 : t.dims[axis]!;
  for (let i = 0; i < t.size; i++) {
    const c = perTensor(p) ? 0 : Math.floor(i / inner) % channels;
    out[i] = Math.fround((t.data[i]! - p.zeroPoint[c]!) * p.scale[c]!);
  }
  return new Tensor('float32', out, t.dims.slice());
}

/** Quantizes a constant tensor as ONNX QuantizeLinear does (ties to even, saturating). */
export function quantizeConstant(node: GraphNode, x: Tensor, p: QParams, axis: number): Tensor {
  if (p.dtype === 'int32') throw new Unsupported('quantization wider than 8 bits (a zero point of an integer type other than uint8 and int8)');
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

/** The canonical Conv attributes of a QLinearConv / ConvInteger (x and w: its input and weight). */
export function convAttrs(env: QuantImportEnv, node: GraphNode, x: string, w: string): GraphNode['attrs'] {
  const conv = normalizeNode({ name: node.name, op: 'Conv', inputs: [x, w], outputs: node.outputs.slice(0, 1), attrs: node.attrs }, env.ctx)!;
  return conv[0]!.attrs;
}

/** Adds a constant the rewritten nodes read, under a fresh name; returns the name. */
export function addInitializer(env: QuantImportEnv, base: string, t: Tensor): string {
  const name = env.ctx.fresh(base);
  env.known.set(name, t);
  env.shapes.set(name, t.dims.slice());
  return name;
}

export function sameShape(a: Shape | undefined, b: Shape | undefined): boolean {
  return a !== undefined && b !== undefined && a.length === b.length && a.every((d, i) => d === b[i]);
}
