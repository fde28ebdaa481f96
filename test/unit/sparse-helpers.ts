import { Tensor } from '../../src/tensor.js';
import type { Rng } from '../../src/util/rng.js';

/** A tensor of the given dtype with about `sparsity` of its elements zero (exactly all for 1). */
export function randomSparse(rng: Rng, dtype: 'float32' | 'int8', dims: number[], sparsity: number): Tensor {
  const size = dims.reduce((a, b) => a * b, 1);
  const data = dtype === 'float32' ? new Float32Array(size) : new Int8Array(size);
  for (let i = 0; i < size; i++) {
    if (sparsity >= 1 || rng.next() < sparsity) continue;
    data[i] = dtype === 'float32' ? rng.normal() || 1 : 1 + rng.int(254) - 128 || 1;
  }
  return new Tensor(dtype, data, dims);
}
