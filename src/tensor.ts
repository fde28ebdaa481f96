/**
 * `Tensor`: a typed array plus readonly dimensions, NCHW for images. Same constructor shape as
 * onnxruntime-node's `new Tensor(type, data, dims)`.
 */
import { describe, dims as checkDims, shapeError, typeError } from './validate.js';

/** Element types a Tensor can hold. */
export type DType = 'float32' | 'int32' | 'int8' | 'uint8';

/** Typed-array type for each dtype. */
export interface DataTypeMap {
  float32: Float32Array;
  int32: Int32Array;
  int8: Int8Array;
  uint8: Uint8Array;
}

const ARRAY_TYPES = {
  float32: Float32Array,
  int32: Int32Array,
  int8: Int8Array,
  uint8: Uint8Array,
} as const;

export const DTYPES: readonly DType[] = ['float32', 'int32', 'int8', 'uint8'];

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export class Tensor<T extends DType = DType> {
  /** Element type. */
  readonly type: T;
  /** The elements, row-major (C order). */
  readonly data: DataTypeMap[T];
  /** Dimensions, outermost first. */
  readonly dims: readonly number[];

  /**
   * @param type element type ('float32', 'int32', 'int8', 'uint8')
   * @param data a typed array of that type, or a plain array of numbers to copy
   * @param dims dimensions; default `[data.length]`. Their product must equal the data length.
   */
  constructor(type: T, data: DataTypeMap[T] | readonly number[], dims?: readonly number[]) {
    if (typeof type !== 'string' || !(type in ARRAY_TYPES)) {
      throw typeError('type', `one of ${DTYPES.map((t) => `'${t}'`).join(', ')}`, type);
    }
    const Ctor = ARRAY_TYPES[type];
    let array: DataTypeMap[T];
    if (Array.isArray(data)) {
      array = Ctor.from(data as number[]) as DataTypeMap[T];
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
