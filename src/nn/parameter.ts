/** Creating trainable parameters with their gradient buffers. */
import { allocFloat32 } from '../memory.js';
import { Tensor, sizeOf } from '../tensor.js';
import type { Parameter } from './module.js';

/** A zero-filled parameter of shape `dims` (the layer initialises it) with a zeroed gradient. */
export function createParameter(name: string, dims: readonly number[], decay: boolean): Parameter {
  const n = sizeOf(dims);
  return { name, value: new Tensor('float32', allocFloat32(n), dims), grad: allocFloat32(n), decay };
}
