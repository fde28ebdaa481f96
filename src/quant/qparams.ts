/**
 * Quantization parameters (scale, zero point) from a float range, and the float reference of ONNX
 * QuantizeLinear / DequantizeLinear used by tests and by the calibration observers.
 *
 * Two schemes, as in ONNX Runtime's QDQ defaults:
 * - `'uint8'`: asymmetric, for activations. The range is first extended to include 0 so that 0.0 (ReLU
 *   outputs, zero padding) is exactly representable; scale = (max - min) / 255,
 *   zeroPoint = round(-min / scale) in [0, 255].
 * - `'int8'`: symmetric, for weights (optionally activations). scale = max(|min|, |max|) / 127,
 *   zeroPoint = 0. The scale uses the restricted range [-127, 127] (so +x and -x quantize to opposite
 *   codes); quantize() still saturates to [-128, 127] like QuantizeLinear, which only a clipped
 *   value below -127.5·scale can reach.
 *
 * Scales are rounded to float32 (the stored ONNX type) before the zero point is derived from them.
 * A degenerate range (all zeros, or a width below FLT_MIN·levels) gets scale 1 and zero point 0, the
 * ONNX Runtime convention: every value of such a range is within ~1e-36 of 0, so nothing is lost, and
 * a scale of 1 cannot overflow or divide by zero downstream.
 */
import { KilnRangeError } from '../errors.js';
import { qRange } from '../graph/int8-ir.js';
import { dims as checkDims, oneOf, rangeError, shapeError, typeError } from '../validate.js';

/** `'uint8'`: asymmetric uint8 (activations). `'int8'`: symmetric int8 (weights). */
export type QuantKind = 'uint8' | 'int8';

export const QUANT_KINDS: readonly QuantKind[] = ['uint8', 'int8'];

/** A float interval [min, max]. */
export interface FloatRange {
  readonly min: number;
  readonly max: number;
}

/** Per-tensor quantization parameters: real = (q - zeroPoint) * scale. */
export interface QuantParams {
  readonly kind: QuantKind;
  /** Positive, finite, exactly representable in float32. */
  readonly scale: number;
  /** An integer inside the kind's storage range (0 for int8). */
  readonly zeroPoint: number;
}

/** Per-channel parameters along `axis` (0: the output channel of OIHW weights). */
export interface PerChannelQuantParams {
  readonly kind: QuantKind;
  readonly axis: 0;
  readonly scales: Float32Array;
  readonly zeroPoints: Int32Array;
}

/** Smallest normal float32: a scale below it would be denormal or zero once stored. */
const FLT_MIN = 1.1754943508222875e-38;

/** Storage range of a kind: what QuantizeLinear saturates to (the int8 IR's own definition). */
export function storageRange(kind: QuantKind): { qmin: number; qmax: number } {
  return qRange(kind);
}

/** Round half to even (numpy.round, ONNX QuantizeLinear). */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff < 0.5) return floor;
  if (diff > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

function checkKind(kind: unknown): QuantKind {
  return oneOf('kind', kind, QUANT_KINDS);
}

function checkRange(range: unknown, name: string): FloatRange {
  if (range === null || typeof range !== 'object') throw typeError(name, 'a range object {min, max}', range);
  const { min, max } = range as { min: unknown; max: unknown };
  for (const [field, value] of [['min', min], ['max', max]] as const) {
    if (typeof value !== 'number') throw typeError(`${name}.${field}`, 'a number', value);
    if (!Number.isFinite(value)) throw rangeError(`${name}.${field}`, 'a finite number', value);
  }
  if ((min as number) > (max as number)) {
    throw new KilnRangeError(`Expected min <= max for ${name} but received [${String(min)}, ${String(max)}]`);
  }
  return { min: min as number, max: max as number };
}

/** Parameters for one [min, max] pair, already validated. */
function paramsOf(min: number, max: number, kind: QuantKind, name: string): QuantParams {
  if (kind === 'int8') {
    const scale = Math.fround(Math.max(Math.abs(min), Math.abs(max)) / 127);
    if (!Number.isFinite(scale)) throw rangeError(name, 'a range whose scale fits in float32', `[${min}, ${max}]`);
    return scale < FLT_MIN ? { kind, scale: 1, zeroPoint: 0 } : { kind, scale, zeroPoint: 0 };
  }
  const lo = Math.min(min, 0);
  const hi = Math.max(max, 0);
  const scale = Math.fround((hi - lo) / 255);
  if (!Number.isFinite(scale)) throw rangeError(name, 'a range whose scale fits in float32', `[${min}, ${max}]`);
  if (scale < FLT_MIN) return { kind, scale: 1, zeroPoint: 0 };
  const zeroPoint = Math.min(255, Math.max(0, roundHalfEven(-lo / scale)));
  return { kind, scale, zeroPoint };
}

/**
 * Quantization parameters for a float range.
 * @param range calibrated [min, max] (finite, min <= max)
 * @param kind `'uint8'` asymmetric (default, activations) or `'int8'` symmetric (weights)
 * @param name the tensor the range belongs to, for error messages
 */
export function quantParams(range: FloatRange, kind: QuantKind = 'uint8', name = 'range'): QuantParams {
  const k = checkKind(kind);
  const { min, max } = checkRange(range, name);
  return paramsOf(min, max, k, name);
}

function checkFloat32(name: string, data: unknown): Float32Array {
  if (!(data instanceof Float32Array)) throw typeError(name, 'a Float32Array', data);
  return data;
}

function checkChannels(name: string, data: { readonly length: number }, shape: unknown): number {
  const d = checkDims(`${name} dims`, shape);
  if (d.length < 1 || d[0] < 1) throw shapeError(`${name} dims`, 'at least one dimension with dims[0] >= 1', `[${d.join(', ')}]`);
  const count = d.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw shapeError(name, `${count} elements for dims [${d.join(', ')}]`, `${data.length}`);
  return d[0];
}

/**
 * Per-channel [min, max] along axis 0 (the output channel of OIHW weights).
 * Throws a RangeError naming the tensor and the element if any value is NaN or infinite.
 */
export function channelRanges(data: Float32Array, shape: readonly number[], name = 'weights'): FloatRange[] {
  checkFloat32(name, data);
  const channels = checkChannels(name, data, shape);
  const per = data.length / channels;
  const ranges: FloatRange[] = [];
  for (let c = 0; c < channels; c++) {
    let min = Infinity;
    let max = -Infinity;
    for (let i = c * per; i < (c + 1) * per; i++) {
      const v = data[i];
      if (!Number.isFinite(v)) throw new KilnRangeError(`Expected finite values for ${name} but received ${v} at index ${i}`);
      if (v < min) min = v;
      if (v > max) max = v;
    }
    // A channel with no elements (a zero in the trailing dims) quantizes nothing: any safe range will do.
    ranges.push(per === 0 ? { min: 0, max: 0 } : { min, max });
  }
  return ranges;
}

/**
 * Per-channel parameters for a weight tensor laid out channel-first (OIHW, or [out, in] for Gemm),
 * one scale and zero point per output channel.
 * @param kind `'int8'` symmetric (default, the weight convention) or `'uint8'` asymmetric
 */
export function perChannelQuantParams(
  data: Float32Array,
  shape: readonly number[],
  kind: QuantKind = 'int8',
  name = 'weights',
): PerChannelQuantParams {
  const k = checkKind(kind);
  const ranges = channelRanges(data, shape, name);
  const scales = new Float32Array(ranges.length);
  const zeroPoints = new Int32Array(ranges.length);
  ranges.forEach((r, c) => {
    const p = paramsOf(r.min, r.max, k, `${name}[${c}]`);
    scales[c] = p.scale;
    zeroPoints[c] = p.zeroPoint;
  });
  return { kind: k, axis: 0, scales, zeroPoints };
}

function checkParams(params: unknown, name: string): QuantParams {
  if (params === null || typeof params !== 'object') throw typeError(name, 'quantization parameters', params);
  const { kind, scale, zeroPoint } = params as QuantParams;
  checkKind(kind);
  if (typeof scale !== 'number' || !(scale > 0) || !Number.isFinite(scale)) throw rangeError(`${name}.scale`, 'a positive finite number', scale);
  const { qmin, qmax } = storageRange(kind);
  if (!Number.isInteger(zeroPoint) || zeroPoint < qmin || zeroPoint > qmax) {
    throw rangeError(`${name}.zeroPoint`, `an integer in [${qmin}, ${qmax}]`, zeroPoint);
  }
  return params as QuantParams;
}

function checkPerChannel(params: unknown, channels: number): PerChannelQuantParams {
  if (params === null || typeof params !== 'object') throw typeError('params', 'per-channel quantization parameters', params);
  const { kind, scales, zeroPoints } = params as PerChannelQuantParams;
  checkKind(kind);
  if (!(scales instanceof Float32Array)) throw typeError('params.scales', 'a Float32Array', scales);
  if (!(zeroPoints instanceof Int32Array)) throw typeError('params.zeroPoints', 'an Int32Array', zeroPoints);
  if (scales.length !== channels || zeroPoints.length !== channels) {
    throw shapeError('params', `${channels} scales and zero points`, `${scales.length} and ${zeroPoints.length}`);
  }
  return params as PerChannelQuantParams;
}

/** One value through QuantizeLinear: saturate(roundHalfEven(x / scale) + zeroPoint), division in float32. */
function quantizeOne(x: number, scale: number, zeroPoint: number, qmin: number, qmax: number): number {
  const q = roundHalfEven(Math.fround(x / scale)) + zeroPoint;
  return q < qmin ? qmin : q > qmax ? qmax : q;
}

/**
 * ONNX QuantizeLinear in TypeScript (the test oracle): q = saturate(roundHalfEven(x / scale) + zeroPoint).
 * NaN is not a valid input (ONNX leaves it undefined) and is refused with a RangeError.
 */
export function quantize(data: Float32Array, params: QuantParams): Uint8Array | Int8Array {
  checkFloat32('data', data);
  const { kind, scale, zeroPoint } = checkParams(params, 'params');
  const { qmin, qmax } = storageRange(kind);
  const out = kind === 'uint8' ? new Uint8Array(data.length) : new Int8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    if (Number.isNaN(data[i])) throw new KilnRangeError(`Expected no NaN for data but received NaN at index ${i}`);
    out[i] = quantizeOne(data[i], scale, zeroPoint, qmin, qmax);
  }
  return out;
}

/** ONNX DequantizeLinear: x = (q - zeroPoint) * scale, rounded to float32. */
export function dequantize(q: Uint8Array | Int8Array, params: QuantParams): Float32Array {
  const { kind, scale, zeroPoint } = checkParams(params, 'params');
  const expected = kind === 'uint8' ? Uint8Array : Int8Array;
  if (!(q instanceof expected)) throw typeError('q', `a ${expected.name} for kind '${kind}'`, q);
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = (q[i] - zeroPoint) * scale;
  return out;
}

/** dequantize(quantize(x)): what the int8 model sees instead of x (fake quantization). */
export function quantizeDequantize(data: Float32Array, params: QuantParams): Float32Array {
  return dequantize(quantize(data, params), params);
}

/** Per-channel QuantizeLinear along axis 0 (each channel with its own scale and zero point). */
export function quantizePerChannel(data: Float32Array, shape: readonly number[], params: PerChannelQuantParams): Uint8Array | Int8Array {
  checkFloat32('data', data);
  const channels = checkChannels('data', data, shape);
  checkPerChannel(params, channels);
  const per = data.length / channels;
  const out = params.kind === 'uint8' ? new Uint8Array(data.length) : new Int8Array(data.length);
  for (let c = 0; c < channels; c++) {
    const p = checkParams({ kind: params.kind, scale: params.scales[c], zeroPoint: params.zeroPoints[c] }, `params[${c}]`);
    const { qmin, qmax } = storageRange(p.kind);
    for (let i = c * per; i < (c + 1) * per; i++) {
      if (Number.isNaN(data[i])) throw new KilnRangeError(`Expected no NaN for data but received NaN at index ${i}`);
      out[i] = quantizeOne(data[i], p.scale, p.zeroPoint, qmin, qmax);
    }
  }
  return out;
}

/** Per-channel DequantizeLinear along axis 0. */
export function dequantizePerChannel(q: Uint8Array | Int8Array, shape: readonly number[], params: PerChannelQuantParams): Float32Array {
  if (!(q instanceof Uint8Array) && !(q instanceof Int8Array)) throw typeError('q', 'a Uint8Array or an Int8Array', q);
  const channels = checkChannels('q', q, shape);
  checkPerChannel(params, channels);
  const expected = params.kind === 'uint8' ? Uint8Array : Int8Array;
  if (!(q instanceof expected)) throw typeError('q', `a ${expected.name} for kind '${params.kind}'`, q);
  const per = q.length / channels;
  const out = new Float32Array(q.length);
  for (let c = 0; c < channels; c++) {
    const { scale, zeroPoint } = checkParams({ kind: params.kind, scale: params.scales[c], zeroPoint: params.zeroPoints[c] }, `params[${c}]`);
    for (let i = c * per; i < (c + 1) * per; i++) out[i] = (q[i] - zeroPoint) * scale;
  }
  return out;
}
