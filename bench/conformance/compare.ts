/**
 * Output comparison with the tolerance ONNX's own backend tests use (onnx/backend/test/runner:
 * numpy.testing.assert_allclose with rtol 1e-3, atol 1e-7 for floating-point outputs; integer and
 * bool outputs must be equal).
 */
import { DataType, type ITensorProto } from '../../src/onnx/proto.js';
import { tensorFromProto, typedTensorFromProto } from '../../src/onnx/tensor-proto.js';
import { decodeBfloat16, decodeMiniFloat, MINI_FLOATS, type MiniFloatType } from '../../src/tensor-formats.js';
import { ONNX_TYPE_DTYPES } from '../../src/runtime/edge-types.js';
import { type DType, fromFloat16Bits, type Tensor } from '../../src/tensor.js';

/** ONNX backend-test tolerances. */
export const RTOL = 1e-3;
export const ATOL = 1e-7;

/** How an expected output's elements compare: within tolerance, or exactly. */
export type ValueKind = 'float' | 'exact';

/** An expected output as plain numbers (doubles and int64 kept exact, unlike Kiln's own decoder). */
export interface ExpectedTensor {
  kind: ValueKind;
  /** The Tensor dtype of the proto's data type (what the session must return). */
  dtype?: DType;
  dims: number[];
  values: ArrayLike<number>;
}

const FLOAT_TYPES: ReadonlySet<number> = new Set([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16]);

/**
 * The numbers of an expected-output TensorProto. DOUBLE and INT64/UINT64 are read here at full
 * precision (Kiln's tensorFromProto narrows them to float32/int32); every other type goes through
 * tensorFromProto, which throws ERR_KILN_UNSUPPORTED_OP for types Kiln cannot hold (strings...).
 */
export function expectedFromProto(proto: ITensorProto, what: string): ExpectedTensor {
  const dataType = proto.dataType ?? 0;
  const kind: ValueKind = FLOAT_TYPES.has(dataType) ? 'float' : 'exact';
  const dtype = ONNX_TYPE_DTYPES[dataType];
  const raw = proto.rawData && proto.rawData.length > 0 ? proto.rawData : undefined;
  if (dataType === DataType.DOUBLE || dataType === DataType.INT64 || dataType === DataType.UINT64) {
    const dims = (proto.dims ?? []).map(Number);
    if (raw !== undefined) {
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      const values = new Float64Array(raw.byteLength / 8);
      for (let i = 0; i < values.length; i++) {
        values[i] =
          dataType === DataType.DOUBLE ? view.getFloat64(i * 8, true)
          : dataType === DataType.INT64 ? Number(view.getBigInt64(i * 8, true))
          : Number(view.getBigUint64(i * 8, true));
      }
      return { kind, dtype, dims, values };
    }
    const field = dataType === DataType.DOUBLE ? proto.doubleData : dataType === DataType.INT64 ? proto.int64Data : proto.uint64Data;
    return { kind, dtype, dims, values: Float64Array.from(field ?? [], (v) => Number(typeof v === 'object' && v !== null ? v.toString() : v)) };
  }
  if (dtype !== undefined && NARROW_DTYPES.has(dtype)) {
    // bfloat16, float8, float4: compared as the values their codes stand for (any NaN code equals
    // any other); 4- and 2-bit integers exactly.
    const tensor = typedTensorFromProto(proto, what);
    const narrowFloat = !dtype.includes('int');
    return { kind: narrowFloat ? 'float' : 'exact', dtype, dims: tensor.dims.slice(), values: numbersOf(tensor) };
  }
  const tensor = tensorFromProto(proto, what);
  return { kind, dtype, dims: tensor.dims.slice(), values: tensor.data };
}

const NARROW_DTYPES: ReadonlySet<DType> = new Set(['bfloat16', 'float8e4m3fn', 'float8e4m3fnuz', 'float8e5m2', 'float8e5m2fnuz', 'float4e2m1', 'int4', 'uint4', 'int2', 'uint2']);

/**
 * A Tensor's elements as the numbers they stand for: float16 bits decoded, 64-bit integers as the
 * nearest double (exact up to 2^53, like the expected values read above), bools 0/1.
 */
export function numbersOf(tensor: Tensor<DType>): ArrayLike<number> {
  const data = tensor.data;
  if (tensor.type === 'float16') return Float64Array.from(data as Uint16Array, fromFloat16Bits);
  if (tensor.type === 'bfloat16') return Float64Array.from(data as Uint16Array, decodeBfloat16);
  if (tensor.type in MINI_FLOATS) return Float64Array.from(data as Uint8Array, (c) => decodeMiniFloat(tensor.type as MiniFloatType, c));
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Float64Array.from(data, Number);
  return data as ArrayLike<number>;
}

/** The result of comparing one output. */
export interface OutputComparison {
  ok: boolean;
  /** Largest |actual - expected| over the elements (0 when empty; Infinity on a NaN/Inf mismatch). */
  maxAbsError: number;
  /** Why it does not match (shape, or the first element outside the tolerance); undefined when ok. */
  mismatch?: string;
}

/** Whether one element passes: assert_allclose semantics (NaN equals NaN, infinities must be equal). */
export function elementMatches(actual: number, expected: number, kind: ValueKind, rtol = RTOL, atol = ATOL): boolean {
  if (kind === 'exact') return actual === expected;
  if (Number.isNaN(expected) || Number.isNaN(actual)) return Number.isNaN(expected) && Number.isNaN(actual);
  if (!Number.isFinite(expected) || !Number.isFinite(actual)) return actual === expected;
  return Math.abs(actual - expected) <= atol + rtol * Math.abs(expected);
}

/** Compares an output with its expected value: shapes must be equal, then every element. */
export function compareOutput(actual: { dims: readonly number[]; data: ArrayLike<number | bigint> }, expected: ExpectedTensor, rtol = RTOL, atol = ATOL): OutputComparison {
  const shapeOk = actual.dims.length === expected.dims.length && actual.dims.every((d, i) => d === expected.dims[i]);
  if (!shapeOk || actual.data.length !== expected.values.length) {
    return { ok: false, maxAbsError: Infinity, mismatch: `shape [${actual.dims.join(', ')}], expected [${expected.dims.join(', ')}]` };
  }
  let maxAbsError = 0;
  let bad = 0;
  let first: string | undefined;
  for (let i = 0; i < expected.values.length; i++) {
    // int64/uint64 outputs arrive as bigints (exact in a double for any shape or index).
    const a = Number(actual.data[i]!);
    const e = expected.values[i]!;
    const matches = elementMatches(a, e, expected.kind, rtol, atol);
    const err = Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e)) ? 0 : Math.abs(a - e);
    if (!(err <= maxAbsError)) maxAbsError = Number.isNaN(err) ? Infinity : err;
    if (!matches) {
      bad++;
      first ??= `element ${i}: ${a}, expected ${e}`;
    }
  }
  if (bad === 0) return { ok: true, maxAbsError };
  return { ok: false, maxAbsError, mismatch: `${bad} of ${expected.values.length} elements off (first at ${first}; max |error| ${maxAbsError.toPrecision(3)})` };
}
