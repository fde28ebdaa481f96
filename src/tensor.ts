/**
 * `Tensor`: a typed array plus readonly dimensions, NCHW for images. Same constructor shape as
 * onnxruntime-node's `new Tensor(type, data, dims)`.
 */
import { encodeBfloat16, encodeMiniFloat, type MiniFloatType, NARROW_INTS, type NarrowIntType } from './tensor-formats.js';
import { describe, dims as checkDims, shapeError, typeError } from './validate.js';

/**
 * Element types a Tensor can hold: onnxruntime-node's names and arrays. 'float16' holds IEEE half
 * bits in a Uint16Array (Node 20 has no Float16Array), 'bool' holds 0/1 bytes.
 *
 * Kiln computes in float32 and int8: the other types are for a model's inputs and outputs
 * (a float16 or float64 model, int64 axes or shapes fed at run time, a bool mask) and for
 * ONNX constants, and are converted where the model meets the runtime.
 */
export type DType = 'float32' | 'float64' | 'float16' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'bool'
  | NarrowDType;

/**
 * ONNX's narrow formats, for models that cast to or from them at their edges: bfloat16 bits in a
 * Uint16Array, float8/float4 codes in a Uint8Array, 4- and 2-bit integers one per slot (Int8Array
 * or Uint8Array values, not packed two to a byte). Encoding rules: tensor-formats.ts.
 */
export type NarrowDType = 'bfloat16' | MiniFloatType | NarrowIntType;

/** Typed-array type for each dtype. */
export interface DataTypeMap {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  int64: BigInt64Array;
  uint64: BigUint64Array;
  bool: Uint8Array;
  bfloat16: Uint16Array;
  float8e4m3fn: Uint8Array;
  float8e4m3fnuz: Uint8Array;
  float8e5m2: Uint8Array;
  float8e5m2fnuz: Uint8Array;
  float4e2m1: Uint8Array;
  int4: Int8Array;
  uint4: Uint8Array;
  int2: Int8Array;
  uint2: Uint8Array;
}

const ARRAY_TYPES = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
  bfloat16: Uint16Array,
  float8e4m3fn: Uint8Array,
  float8e4m3fnuz: Uint8Array,
  float8e5m2: Uint8Array,
  float8e5m2fnuz: Uint8Array,
  float4e2m1: Uint8Array,
  int4: Int8Array,
  uint4: Uint8Array,
  int2: Int8Array,
  uint2: Uint8Array,
} as const;

/**
 * The types Kiln stores weights and constants in (a bare `Tensor` means one of these): ONNX
 * constants of other types are read into them (floats to float32, integers to int32).
 */
export type StorageDType = 'float32' | 'int32' | 'int8' | 'uint8';

export const DTYPES: readonly DType[] = [
  'float32', 'float64', 'float16', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool',
  'bfloat16', 'float8e4m3fn', 'float8e4m3fnuz', 'float8e5m2', 'float8e5m2fnuz', 'float4e2m1', 'int4', 'uint4', 'int2', 'uint2',
];

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  float32: 4, float64: 8, float16: 2, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8, bool: 1,
  bfloat16: 2, float8e4m3fn: 1, float8e4m3fnuz: 1, float8e5m2: 1, float8e5m2fnuz: 1, float4e2m1: 1, int4: 1, uint4: 1, int2: 1, uint2: 1,
};

/** IEEE binary16 bits of a number, rounded to nearest even (overflow to infinity, NaN kept). */
export function toFloat16Bits(value: number): number {
  F32[0] = value;
  const x = U32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++; // a carry into the exponent is still right
  return sign | h;
}

/** The number IEEE binary16 bits stand for. */
export function fromFloat16Bits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** A typed array of `type` from plain numbers (bigints too for the 64-bit integer types). */
function fromPlain<T extends DType>(type: T, values: readonly (number | bigint)[]): DataTypeMap[T] {
  switch (type) {
    case 'int64':
    case 'uint64': {
      const toBig = (v: number | bigint, i: number): bigint => {
        if (typeof v === 'bigint') return v;
        if (!Number.isInteger(v)) throw typeError(`data[${i}]`, `an integer for type '${type}'`, v);
        return BigInt(v);
      };
      return (type === 'int64' ? BigInt64Array.from(values, toBig) : BigUint64Array.from(values, toBig)) as DataTypeMap[T];
    }
    case 'float16':
      return Uint16Array.from(values, (v) => toFloat16Bits(Number(v))) as DataTypeMap[T];
    case 'bool':
      return Uint8Array.from(values, (v) => (v ? 1 : 0)) as DataTypeMap[T];
    case 'bfloat16':
      return Uint16Array.from(values, (v) => encodeBfloat16(Number(v))) as DataTypeMap[T];
    case 'float8e4m3fn':
    case 'float8e4m3fnuz':
    case 'float8e5m2':
    case 'float8e5m2fnuz':
    case 'float4e2m1':
      return Uint8Array.from(values, (v) => encodeMiniFloat(type, Number(v))) as DataTypeMap[T];
    case 'int4':
    case 'uint4':
    case 'int2':
    case 'uint2': {
      const { bits, signed } = NARROW_INTS[type as NarrowIntType];
      const [lo, hi] = signed ? [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1] : [0, 2 ** bits - 1];
      const out = signed ? new Int8Array(values.length) : new Uint8Array(values.length);
      values.forEach((v, i) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < lo || n > hi) throw typeError(`data[${i}]`, `an integer in [${lo}, ${hi}] for type '${type}'`, v);
        out[i] = n;
      });
      return out as DataTypeMap[T];
    }
    default:
      return (ARRAY_TYPES[type] as Float64ArrayConstructor).from(values, (v) => Number(v)) as unknown as DataTypeMap[T];
  }
}

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export class Tensor<T extends DType = StorageDType> {
  /** Element type. */
  readonly type: T;
  /** The elements, row-major (C order). */
  readonly data: DataTypeMap[T];
  /** Dimensions, outermost first. */
  readonly dims: readonly number[];

  /**
   * @param type element type (see {@link DType})
   * @param data a typed array of that type, or a plain array to copy: numbers (or bigints for
   *   'int64'/'uint64'); for 'float16' the numbers are values, stored as half bits
   * @param dims dimensions; default `[data.length]`. Their product must equal the data length.
   */
  constructor(type: T, data: DataTypeMap[T] | readonly (number | bigint)[], dims?: readonly number[]) {
    if (typeof type !== 'string' || !(type in ARRAY_TYPES)) {
      throw typeError('type', `one of ${DTYPES.map((t) => `'${t}'`).join(', ')}`, type);
    }
    const Ctor = ARRAY_TYPES[type];
    let array: DataTypeMap[T];
    if (Array.isArray(data)) {
      array = fromPlain(type, data as readonly (number | bigint)[]);
    } else if (data instanceof Ctor) {
      array = data as DataTypeMap[T];
    } else {
      throw typeError('data', `a ${Ctor.name} or an array of numbers for type '${type}'`, data);
    }
    const shape = dims === undefined ? [array.length] : checkDims('dims', dims);
    const n = sizeOf(shape);
    if (n !== array.length) {
      throw shapeError('data', `${n} elements for dims [${shape.join(', ')}]`, `${describe(array)}`);
    }
    this.type = type;
    this.data = array;
    this.dims = Object.freeze(shape.slice());
  }

  /** Number of elements. */
  get size(): number {
    return this.data.length;
  }

  /** A float32 tensor of zeros. */
  static zeros(dims: readonly number[]): Tensor<'float32'> {
    return new Tensor('float32', new Float32Array(sizeOf(checkDims('dims', dims))), dims);
  }

  /** Same data, new dimensions (no copy). One dimension may be -1 and is inferred. */
  reshape(dims: readonly number[]): Tensor<T> {
    const shape = dims.slice();
    const inferAt = shape.indexOf(-1);
    if (inferAt >= 0) {
      const rest = sizeOf(shape.filter((_, i) => i !== inferAt));
      if (rest === 0 || this.size % rest !== 0) throw shapeError('dims', `a shape compatible with ${this.size} elements`, `[${dims.join(', ')}]`);
      shape[inferAt] = this.size / rest;
    }
    return new Tensor(this.type, this.data, shape);
  }

  /** A copy with its own buffer. */
  clone(): Tensor<T> {
    return new Tensor(this.type, this.data.slice() as DataTypeMap[T], this.dims);
  }

  toString(): string {
    return `Tensor<${this.type}>[${this.dims.join('x')}]`;
  }
}
