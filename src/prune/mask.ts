/**
 * A pruning mask: which elements of one Parameter are kept (1) or pruned (0). A mask remembers the
 * parameter's name and shape and refuses to touch any other parameter, so a mask computed for one
 * layer can never silently zero another layer of a compatible size.
 */
import { ErrorCode, KilnRangeError } from '../errors.js';
import type { Parameter } from '../nn/module.js';
import { sizeOf } from '../tensor.js';
import { dims as checkDims, shapeError, string, typeError } from '../validate.js';

const shapeText = (dims: readonly number[]): string => `[${dims.join(', ')}]`;

export class Mask {
  /** Name of the Parameter this mask belongs to (e.g. '3.weight'). */
  readonly parameter: string;
  /** Shape of that Parameter. */
  readonly dims: readonly number[];
  /** 1 keeps the element, 0 prunes it; same length and layout as the parameter's data. */
  readonly keep: Uint8Array;

  /**
   * @param parameter the Parameter's dotted name
   * @param dims its shape
   * @param keep 1 = kept, 0 = pruned (default: every element kept)
   * @throws RangeError ERR_KILN_SHAPE_MISMATCH when `keep` does not have one entry per element
   */
  constructor(parameter: string, dims: readonly number[], keep?: Uint8Array) {
    this.parameter = string('parameter', parameter);
    this.dims = Object.freeze(checkDims('dims', dims));
    const n = sizeOf(this.dims);
    if (keep !== undefined && !(keep instanceof Uint8Array)) throw typeError('keep', 'a Uint8Array', keep);
    if (keep !== undefined && keep.length !== n) throw shapeError('keep', `${n} entries (shape ${shapeText(this.dims)})`, `${keep.length}`);
    this.keep = keep ?? new Uint8Array(n).fill(1);
  }

  /** A mask keeping every element of `param`. */
  static dense(param: Parameter): Mask {
    return new Mask(param.name, param.value.dims);
  }

  /** Elements pruned. */
  get zeros(): number {
    let z = 0;
    for (let i = 0; i < this.keep.length; i++) z += this.keep[i] === 0 ? 1 : 0;
    return z;
  }

  /** Share of pruned elements, in [0, 1]. */
  get sparsity(): number {
    return this.keep.length === 0 ? 0 : this.zeros / this.keep.length;
  }

  /**
   * Throws unless `param` is the parameter this mask was built for (same name and shape).
   * @throws RangeError ERR_KILN_SHAPE_MISMATCH naming both parameters and both shapes
   */
  check(param: Parameter): void {
    const dims = param.value.dims;
    const sameShape = dims.length === this.dims.length && dims.every((d, i) => d === this.dims[i]);
    if (param.name !== this.parameter || !sameShape) {
      throw new KilnRangeError(
        `Expected the parameter '${this.parameter}' ${shapeText(this.dims)} that this mask was built for but received '${param.name}' ${shapeText(dims)}`,
        ErrorCode.SHAPE_MISMATCH,
      );
    }
  }

  /** Zeroes the pruned elements of `param`'s value (and gradient). Checks `param` first. */
  apply(param: Parameter): void {
    this.check(param);
    const { keep } = this;
    const value = param.value.data;
    const grad = param.grad;
    for (let i = 0; i < keep.length; i++) {
      if (keep[i] === 0) {
        value[i] = 0;
        grad[i] = 0;
      }
    }
  }
}
