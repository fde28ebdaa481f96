/**
 * Checks shared by layers: the input tensor of `forward`, the gradient given to `backward`, layer
 * sizes that would allocate absurd memory, and options objects with unknown keys.
 */
import { ErrorCode, KilnError, KilnRangeError, KilnTypeError } from '../../errors.js';
import { Tensor } from '../../tensor.js';
import { describe, shapeError, typeError } from '../../validate.js';

/** Largest parameter tensor a layer accepts (2^28 floats = 1 GiB): a corrupt config must not allocate more. */
export const MAX_PARAMETER_ELEMENTS = 2 ** 28;

const formatShape = (dims: readonly number[]): string => `[${dims.join(', ')}]`;

/** TypeError for a tensor of another element type, e.g. "... but received a tensor of type 'int32' [2, 2]". */
export function wrongDtype(name: string, tensor: Tensor): KilnTypeError {
  return new KilnTypeError(`Expected a Tensor of type 'float32' for ${name} but received a tensor of type '${tensor.type}' ${formatShape(tensor.dims)}`);
}

/** A float32 Tensor of `rank` dimensions (any rank >= 1 when null) with a non-empty batch. */
export function checkInput(layer: string, input: unknown, rank: number | null, layout: string): Tensor<'float32'> {
  const name = `${layer} input`;
  if (!(input instanceof Tensor)) throw typeError(name, 'a Tensor', input);
  if (input.type !== 'float32') throw wrongDtype(name, input);
  if (rank === null ? input.dims.length < 1 : input.dims.length !== rank) {
    throw shapeError(name, rank === null ? `a tensor ${layout}` : `a rank-${rank} tensor ${layout}`, formatShape(input.dims));
  }
  if (input.dims[0] < 1) throw shapeError(name, 'a batch of at least 1', formatShape(input.dims));
  return input as Tensor<'float32'>;
}

/** An input shape (with batch) given to `outputShape`/`macs`/`lower`; any rank >= 1 when `rank` is null. */
export function checkShape(layer: string, shape: unknown, rank: number | null, layout: string): number[] {
  const name = `${layer} input shape`;
  const what = rank === null ? `positive integer dimensions ${layout}` : `${rank} positive integer dimensions ${layout}`;
  if (!Array.isArray(shape)) throw typeError(name, `an array of ${what}`, shape);
  const rankOk = rank === null ? shape.length >= 1 : shape.length === rank;
  if (!rankOk || !shape.every((d) => Number.isInteger(d) && d >= 1)) throw shapeError(name, what, formatShape(shape));
  return shape as number[];
}

/** The dimension `axis` of `dims` equals `expected`. */
export function checkDim(name: string, dims: readonly number[], axis: number, expected: number, what: string): void {
  if (dims[axis] !== expected) throw shapeError(name, `${expected} ${what} (dimension ${axis})`, formatShape(dims));
}

/** The gradient given to `backward` matches the last output; `state` exists (forward ran). */
export function checkGradOutput<S>(layer: string, gradOutput: unknown, state: S | undefined, outputDims: readonly number[] | undefined): S {
  if (state === undefined || outputDims === undefined) {
    throw new KilnError(ErrorCode.INVALID_STATE, `${layer}.backward() was called before forward() in training mode`);
  }
  const name = `${layer} gradOutput`;
  if (!(gradOutput instanceof Tensor)) throw typeError(name, 'a Tensor', gradOutput);
  if (gradOutput.type !== 'float32') throw wrongDtype(name, gradOutput);
  const dims = gradOutput.dims;
  if (dims.length !== outputDims.length || dims.some((d, i) => d !== outputDims[i])) {
    throw shapeError(name, `the shape of the last output ${formatShape(outputDims)}`, formatShape(dims));
  }
  return state;
}

/** Product of sizes, refusing more than MAX_PARAMETER_ELEMENTS. */
export function checkParameterSize(layer: string, what: string, dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  if (n > MAX_PARAMETER_ELEMENTS) {
    throw new KilnRangeError(`Expected at most ${MAX_PARAMETER_ELEMENTS} elements for ${layer} ${what} but received ${formatShape(dims)} = ${n} elements`);
  }
  return n;
}

/** Rejects keys an options object should not have (a typo like `strides` would else be ignored). */
export function checkKeys(name: string, options: object, allowed: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      const value = describe((options as Record<string, unknown>)[key]);
      throw new KilnRangeError(`Expected only the options ${allowed.map((k) => `'${k}'`).join(', ')} for ${name} but received an unknown option '${key}' = ${value}`);
    }
  }
}
