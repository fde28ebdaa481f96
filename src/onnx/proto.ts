/**
 * ONNX protobuf messages, from the `onnx-proto` package (static protobufjs code generated from
 * onnx.proto of ONNX 1.10; it brings its own protobufjs 6 runtime).
 *
 * Fields added to onnx.proto after 1.10 (NodeProto.overload, metadata_props, the float8/int4
 * data types) are either skipped as unknown fields or arrive as plain enum numbers; none of them
 * matter to the CNN operators Kiln imports, and every numeric enum is checked where it is used.
 */
import onnxProto from 'onnx-proto';

import { ErrorCode, KilnError } from '../errors.js';

export const onnx = onnxProto.onnx;
export type IModelProto = onnxProto.onnx.IModelProto;
export type IGraphProto = onnxProto.onnx.IGraphProto;
export type INodeProto = onnxProto.onnx.INodeProto;
export type ITensorProto = onnxProto.onnx.ITensorProto;
export type IAttributeProto = onnxProto.onnx.IAttributeProto;
export type IValueInfoProto = onnxProto.onnx.IValueInfoProto;

/** TensorProto.DataType numbers (onnx.proto), including those newer than the generated code. */
export const DataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
  FLOAT8E4M3FN: 17,
  FLOAT8E4M3FNUZ: 18,
  FLOAT8E5M2: 19,
  FLOAT8E5M2FNUZ: 20,
  UINT4: 21,
  INT4: 22,
  FLOAT4E2M1: 23,
  // Newer than the generated code too (onnx.proto of onnx 1.23): valid types Kiln refuses as unsupported.
  FLOAT8E8M0: 24,
  UINT2: 25,
  INT2: 26,
} as const;

/** Name of a data type number, or undefined when onnx.proto defines no such type. */
export function dataTypeName(type: number): string | undefined {
  for (const [name, value] of Object.entries(DataType)) if (value === type && value !== 0) return name;
  return undefined;
}

/** AttributeProto.AttributeType numbers. */
export const AttributeType = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
  SPARSE_TENSOR: 11,
  SPARSE_TENSORS: 12,
  TYPE_PROTO: 13,
  TYPE_PROTOS: 14,
} as const;

/** The 64-bit integer protobufjs 6 hands out (a `Long`) or a plain number. */
export type Int64Like = number | { low: number; high: number; unsigned?: boolean } | string | null | undefined;

export function corrupt(message: string, cause?: unknown): KilnError {
  return new KilnError(ErrorCode.CORRUPT_MODEL, message, cause === undefined ? undefined : { cause });
}

/**
 * An int64 field as a JS number; throws ERR_KILN_CORRUPT_MODEL when it is not an exact integer
 * (beyond ±2^53), naming `what`.
 */
export function int64ToNumber(value: Int64Like, what: string): number {
  if (value === null || value === undefined) return 0;
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string') n = Number(value);
  else if (typeof value === 'object' && typeof value.low === 'number' && typeof value.high === 'number') {
    const high = value.unsigned ? value.high >>> 0 : value.high | 0;
    if (high > 0x1fffff || high < -0x200000) throw corrupt(`Expected an integer within ±2^53 for ${what} but received a 64-bit value beyond it`);
    n = high * 4294967296 + (value.low >>> 0);
  } else {
    throw corrupt(`Expected an integer for ${what} but received ${typeof value}`);
  }
  if (!Number.isSafeInteger(n)) throw corrupt(`Expected an integer within ±2^53 for ${what} but received ${String(value)}`);
  return n;
}

/**
 * int64 to int32 for shape-like data: values beyond the int32 range saturate (INT64_MAX as a Slice
 * end keeps meaning "to the end"; a saturated value used as a dimension is then too large and
 * rejected by whoever checks that dimension).
 */
export function int64ToInt32Saturating(value: Int64Like): number {
  if (value === null || value === undefined) return 0;
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string') n = Number(value);
  else if (typeof value === 'object' && typeof value.low === 'number' && typeof value.high === 'number') {
    const high = value.unsigned ? value.high >>> 0 : value.high | 0;
    n = high * 4294967296 + (value.low >>> 0);
  } else {
    n = NaN;
  }
  if (Number.isNaN(n)) throw corrupt(`Expected an integer but received ${String(value)}`);
  return Math.max(-2147483648, Math.min(2147483647, n));
}

/** Decodes a ModelProto; any protobuf error becomes ERR_KILN_CORRUPT_MODEL. */
export function decodeModel(bytes: Uint8Array): onnxProto.onnx.ModelProto {
  try {
    return onnx.ModelProto.decode(bytes);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw corrupt(`Expected an ONNX model (a ModelProto) but received bytes that do not decode: ${reason}`, err);
  }
}

/**
 * A decoded message as protobufjs builds it: every field present (repeated ones as arrays,
 * scalars at their defaults). For code that edits a decoded model.
 */
export type Decoded<T> = T extends Uint8Array | ((...args: never[]) => unknown)
  ? T
  : T extends readonly (infer U)[]
    ? Decoded<U>[]
    : T extends object
      ? { -readonly [K in keyof T]-?: Decoded<NonNullable<T[K]>> }
      : T;

/** Decodes a ModelProto for editing (no checks: for models known to decode). */
export function decodeForEdit(bytes: Uint8Array): Decoded<IModelProto> {
  return onnx.ModelProto.decode(bytes) as unknown as Decoded<IModelProto>;
}

/** Encodes a ModelProto. */
export function encodeModel(model: IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}
