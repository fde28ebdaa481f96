/**
 * Tensor helpers shared by the session-level tests (session, isa-switch): seeded input images and
 * the relative difference their logits are compared by.
 */
import { expect } from 'vitest';

import { Tensor } from '../../src/tensor.js';
import type { Rng } from '../../src/util/rng.js';

/** `batch` images of `shape` (without the batch axis), values uniform in [0, 1) drawn from `rng`. */
export function uniformImages(rng: Rng, batch: number, shape: readonly number[]): Tensor<'float32'> {
  const n = batch * shape.reduce((a, b) => a * b, 1);
  return new Tensor('float32', Float32Array.from({ length: n }, () => rng.uniform(0, 1)), [batch, ...shape]);
}

/** max |a - b| / max |b|, after checking the dims agree. */
export function relDiff(a: Tensor, b: Tensor): number {
  expect(a.dims).toEqual(b.dims);
  let diff = 0, scale = 0;
  for (let i = 0; i < a.data.length; i++) {
    diff = Math.max(diff, Math.abs(a.data[i] - b.data[i]));
    scale = Math.max(scale, Math.abs(b.data[i]));
  }
  return diff / scale;
}
