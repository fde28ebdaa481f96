/**
 * Seeded image-like random inputs, shared by bench/real-models.ts and
 * test/integration/torch-exports.test.ts.
 */
import { Tensor } from '../src/tensor.js';
import { Rng } from '../src/util/rng.js';

/**
 * A seeded batch of image-like inputs (N x 3 x hw x hw): per row and channel a random offset and
 * scale, a random low-frequency wave and Gaussian noise. Plain uniform noise would differ between
 * rows only in high frequencies that a randomly initialised deep network averages away (GoogLeNet's
 * and ShuffleNetV2's outputs then move by ~1e-6 of their norm), so a match would prove little.
 * The wave's frequency is scaled with hw so that it spans the same fraction of the image at any size.
 */
export function imageLike(batch: number, seed: number, hw = 224): Tensor<'float32'> {
  const rng = new Rng(seed);
  const f = 224 / hw;
  const x = new Float32Array(batch * 3 * hw * hw);
  for (let n = 0; n < batch; n++) {
    for (let c = 0; c < 3; c++) {
      const mean = rng.uniform(-1.5, 1.5);
      const scale = rng.uniform(0.3, 2);
      const fx = rng.uniform(-0.1, 0.1) * f;
      const fy = rng.uniform(-0.1, 0.1) * f;
      const phase = rng.uniform(0, 2 * Math.PI);
      const base = (n * 3 + c) * hw * hw;
      for (let i = 0; i < hw; i++) {
        for (let j = 0; j < hw; j++) {
          x[base + i * hw + j] = mean + scale * (Math.sin(fx * j + fy * i + phase) + 0.5 * rng.normal());
        }
      }
    }
  }
  return new Tensor('float32', x, [batch, 3, hw, hw]);
}
