import { allocFloat32 } from '../../memory.js';

/**
 * A float32 buffer a layer may hand out again on its next call (see `Module.reuseBuffers`), so a
 * training loop does not allocate megabytes of activations per batch.
 */
export class BufferSlot {
  private data: Float32Array | undefined;

  /**
   * A buffer of `length` floats. With `reuse`, the previous buffer comes back when it has the same
   * length and shares no memory with `avoid` (an input the kernel reads while writing the result);
   * without it, always a fresh buffer that the slot forgets. Contents are unspecified: callers
   * pass it to a kernel that overwrites every element.
   */
  take(length: number, reuse: boolean, ...avoid: (ArrayBufferView | null | undefined)[]): Float32Array {
    const old = this.data;
    if (reuse && old !== undefined && old.length === length && !avoid.some((a) => a?.buffer === old.buffer)) return old;
    const fresh = allocFloat32(length);
    this.data = reuse ? fresh : undefined;
    return fresh;
  }

  /** Drops the held buffer. */
  clear(): void {
    this.data = undefined;
  }
}
