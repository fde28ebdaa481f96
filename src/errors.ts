/**
 * Errors thrown by Kiln. Every error Kiln raises on purpose is a `KilnError`, a `TypeError` or a
 * `RangeError` carrying a stable `code`, so services can branch on `err.code` without parsing text.
 */

/** Stable error codes. A code is never reused for a different meaning. */
export const ErrorCode = {
  /** An argument has the wrong type or an out-of-range value. */
  INVALID_ARG: 'ERR_KILN_INVALID_ARG',
  /** Tensor shapes do not fit the operation or the model. */
  SHAPE_MISMATCH: 'ERR_KILN_SHAPE_MISMATCH',
  /** The model uses an operator Kiln does not implement. */
  UNSUPPORTED_OP: 'ERR_KILN_UNSUPPORTED_OP',
  /** A model file is truncated, corrupt or not a Kiln/ONNX model. */
  CORRUPT_MODEL: 'ERR_KILN_CORRUPT_MODEL',
  /** The session or object was released. */
  DISPOSED: 'ERR_KILN_DISPOSED',
  /** The native addon could not be loaded. */
  NATIVE_LOAD: 'ERR_KILN_NATIVE_LOAD',
  /** A C++ exception inside the addon; the message is kept. */
  NATIVE: 'ERR_KILN_NATIVE',
  /** A data set could not be found or read. */
  DATASET: 'ERR_KILN_DATASET',
  /** An operation is not valid in the object's current state (e.g. release during a run). */
  INVALID_STATE: 'ERR_KILN_INVALID_STATE',
  /** Training produced a non-finite loss (learning rate too high, or NaN in the data). */
  TRAINING_DIVERGED: 'ERR_KILN_TRAINING_DIVERGED',
  /** A file to read, or the folder to write a file into, does not exist. */
  FILE_NOT_FOUND: 'ERR_KILN_FILE_NOT_FOUND',
  /** A path names a directory where a file is expected. */
  NOT_A_FILE: 'ERR_KILN_NOT_A_FILE',
  /** A file or folder exists but the process may not read or write it. */
  PERMISSION: 'ERR_KILN_PERMISSION',
  /** Structured shrinking cannot remove the requested channels (the message names the node and why). */
  CANNOT_SHRINK: 'ERR_KILN_CANNOT_SHRINK',
  /** A compression recipe is not valid JSON, breaks its schema, or orders its stages so they cannot work (the message names the stage and field). */
  INVALID_RECIPE: 'ERR_KILN_INVALID_RECIPE',
  /** A data file that is not a model (a run record...) is not valid JSON, or not of the expected format or version. */
  CORRUPT_FILE: 'ERR_KILN_CORRUPT_FILE',
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Error raised by Kiln for everything that is not a plain argument type/range problem. */
export class KilnError extends Error {
  readonly code: ErrorCodeValue;
  constructor(code: ErrorCodeValue, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KilnError';
    this.code = code;
  }
}

/** A `TypeError` with `code` = `ERR_KILN_INVALID_ARG`. */
export class KilnTypeError extends TypeError {
  readonly code = ErrorCode.INVALID_ARG;
  constructor(message: string) {
    super(message);
    this.name = 'TypeError';
  }
}

/** A `RangeError` with `code` = `ERR_KILN_INVALID_ARG` (or another code, e.g. shape mismatch). */
export class KilnRangeError extends RangeError {
  readonly code: ErrorCodeValue;
  constructor(message: string, code: ErrorCodeValue = ErrorCode.INVALID_ARG) {
    super(message);
    this.name = 'RangeError';
    this.code = code;
  }
}
