/**
 * Float32 arrays over memory the native addon lends (native/addon/lent-memory.h). An async native
 * call copies every ordinary array it touches into and out of the job, because JavaScript could
 * free that memory while the job runs; an array over lent memory is used in place, since the job
 * holds a reference to the memory itself. Kiln allocates activations, gradients, parameters and
 * optimizer state here, so training and inference copy only what the caller passes in.
 */
import { native } from './binding.js';
import { integer } from './validate.js';

/** Below this size an ordinary array costs less than the native call that lends memory. */
const LEND_FROM_BYTES = 16 * 1024;

/** The most elements Kiln allocates in one array (V8 allows more; no tensor here needs it). */
const MAX_LENGTH = 2 ** 32;

/**
 * A zero-filled Float32Array of `length` elements whose memory async native calls use in place:
 * over lent addon memory when it holds 16 KiB or more (smaller arrays cost less to copy than to
 * lend). Serving code that fills the same input buffer for every `session.run()` can allocate it
 * here so that large runs skip the copy of their input (about 11 us of a 455 us int8 SeedCNN run at
 * batch 64).
 *
 * @example
 * const input = new Tensor('float32', allocFloat32(64 * 784), [64, 1, 28, 28]);
 */
export function allocFloat32(length: number): Float32Array {
  integer('length', length, 0, MAX_LENGTH);
  const bytes = length * Float32Array.BYTES_PER_ELEMENT;
  return bytes >= LEND_FROM_BYTES ? new Float32Array(native.lendArrayBuffer(bytes)) : new Float32Array(length);
}

/** A zero-filled Int32Array of `length` elements (pooling indices), over lent memory when it is large. */
export function allocInt32(length: number): Int32Array {
  integer('length', length, 0, MAX_LENGTH);
  const bytes = length * Int32Array.BYTES_PER_ELEMENT;
  return bytes >= LEND_FROM_BYTES ? new Int32Array(native.lendArrayBuffer(bytes)) : new Int32Array(length);
}
