/**
 * Hinton's distillation loss: gradient against central finite differences of a float64 reference,
 * the alpha = 0 / alpha = 1 limits, and argument checks.
 */
import { describe, expect, it } from 'vitest';

import { distillationLoss } from '../../src/nn/distillation-loss.js';
import { crossEntropy } from '../../src/nn/losses.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

/** Float64 reference of the mean loss, written straight from the definition (log of softmax). */
function reference(s: Float64Array, t: Float64Array, labels: Int32Array, rows: number, cols: number, T: number, alpha: number): number {
  const logSoftmax = (z: Float64Array, o: number, scale: number): number[] => {
    const v = Array.from(z.subarray(o, o + cols), (x) => x / scale);
    const m = Math.max(...v);
    const lse = m + Math.log(v.reduce((a, x) => a + Math.exp(x - m), 0));
    return v.map((x) => x - lse);
  };
  let total = 0;
  for (let i = 0; i < rows; i++) {
    const ls = logSoftmax(s, i * cols, T);
    const lt = logSoftmax(t, i * cols, T);
    let kl = 0;
    for (let j = 0; j < cols; j++) kl += Math.exp(lt[j]) * (lt[j] - ls[j]);
    const ce = -logSoftmax(s, i * cols, 1)[labels[i]];
    total += alpha * T * T * kl + (1 - alpha) * ce;
  }
  return total / rows;
}

function randomCase(seed: number, rows: number, cols: number, spread: number) {
  const rng = new Rng(seed);
  const s = new Float32Array(rows * cols).map(() => (rng.next() * 2 - 1) * spread);
  const t = new Float32Array(rows * cols).map(() => (rng.next() * 2 - 1) * spread);
  const labels = new Int32Array(rows).map(() => rng.int(cols));
  return { s, t, labels };
}

describe('distillationLoss', () => {
  for (const [T, alpha] of [[1, 0.5], [4, 0.9], [0.5, 0.3], [10, 1], [2, 0]] as const) {
    it(`gradient matches central finite differences (T=${T}, alpha=${alpha})`, () => {
      const rows = 3;
      const cols = 5;
      const { s, t, labels } = randomCase(7 + T * 10 + alpha * 100, rows, cols, 4);
      const { loss, grad } = distillationLoss(new Tensor('float32', s, [rows, cols]), t, labels, { temperature: T, alpha });
      const s64 = Float64Array.from(s);
      const t64 = Float64Array.from(t);
      expect(loss).toBeCloseTo(reference(s64, t64, labels, rows, cols, T, alpha), 5);
      const h = 1e-5;
      for (let k = 0; k < rows * cols; k++) {
        const plus = s64.slice();
        const minus = s64.slice();
        plus[k] += h;
        minus[k] -= h;
        const numeric = (reference(plus, t64, labels, rows, cols, T, alpha) - reference(minus, t64, labels, rows, cols, T, alpha)) / (2 * h);
        expect(Math.abs(grad!.data[k] - numeric)).toBeLessThan(1e-5 + 1e-4 * Math.abs(numeric));
      }
    });
  }

  it('is stable for large logits (no overflow in the softmax)', () => {
    const s = new Float32Array([1000, -1000, 500, 800]);
    const t = new Float32Array([-1000, 1000, 900, 100]);
    const r = distillationLoss(new Tensor('float32', s, [2, 2]), t, new Int32Array([0, 1]), { temperature: 2, alpha: 0.5 });
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(Array.from(r.grad!.data).every(Number.isFinite)).toBe(true);
  });

  it('alpha 0 equals cross-entropy (value and gradient)', async () => {
    const { s, t, labels } = randomCase(3, 4, 6, 3);
    const logits = new Tensor('float32', s, [4, 6]);
    const d = distillationLoss(logits, t, labels, { temperature: 3, alpha: 0 });
    const ce = await crossEntropy(logits, labels);
    expect(d.loss).toBeCloseTo(ce.loss, 5);
    for (let k = 0; k < s.length; k++) expect(d.grad!.data[k]).toBeCloseTo(ce.grad!.data[k], 6);
  });

  it('alpha 1 is T^2 KL: zero with gradient zero when the student equals the teacher', () => {
    const { s } = randomCase(5, 4, 6, 3);
    const d = distillationLoss(new Tensor('float32', s, [4, 6]), s.slice(), new Int32Array(4), { temperature: 4, alpha: 1 });
    expect(Math.abs(d.loss)).toBeLessThan(1e-6);
    expect(Math.max(...Array.from(d.grad!.data, Math.abs))).toBeLessThan(1e-7);
  });

  it('identical logits leave only the cross-entropy share, whatever the labels', async () => {
    const { s, labels } = randomCase(9, 3, 4, 2);
    const logits = new Tensor('float32', s, [3, 4]);
    const d = distillationLoss(logits, s.slice(), labels, { temperature: 2, alpha: 0.25 });
    expect(d.loss).toBeCloseTo(0.75 * (await crossEntropy(logits, labels)).loss, 5);
  });

  it('alpha 1 ignores the labels, and the KL term is positive when the logits differ', () => {
    const { s, t } = randomCase(11, 2, 3, 2);
    const logits = new Tensor('float32', s, [2, 3]);
    const a = distillationLoss(logits, t, new Int32Array([0, 0]), { temperature: 2, alpha: 1 });
    const b = distillationLoss(logits, t, new Int32Array([2, 1]), { temperature: 2, alpha: 1 });
    expect(a.loss).toBe(b.loss);
    expect(a.loss).toBeGreaterThan(0);
  });

  it('refuses T <= 0, alpha outside [0, 1] and mismatched teacher logits, with codes', () => {
    const logits = new Tensor('float32', new Float32Array(6), [2, 3]);
    const labels = new Int32Array(2);
    const t = new Float32Array(6);
    const run = (o: { temperature: number; alpha: number }, teacher: Float32Array | Tensor<'float32'> = t) => () => distillationLoss(logits, teacher, labels, o);
    expect(run({ temperature: 0, alpha: 0.5 })).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_KILN_INVALID_ARG', message: expect.stringContaining('options.temperature') }));
    expect(run({ temperature: -1, alpha: 0.5 })).toThrow(expect.objectContaining({ code: 'ERR_KILN_INVALID_ARG' }));
    expect(run({ temperature: NaN, alpha: 0.5 })).toThrow(expect.objectContaining({ code: 'ERR_KILN_INVALID_ARG' }));
    expect(run({ temperature: 1, alpha: 1.5 })).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_KILN_INVALID_ARG', message: expect.stringContaining('1.5') }));
    expect(run({ temperature: 1, alpha: -0.1 })).toThrow(expect.objectContaining({ code: 'ERR_KILN_INVALID_ARG' }));
    expect(run({ temperature: 1, alpha: 0.5 }, new Float32Array(4))).toThrow(expect.objectContaining({ code: 'ERR_KILN_SHAPE_MISMATCH' }));
    expect(run({ temperature: 1, alpha: 0.5 }, new Tensor('float32', new Float32Array(6), [3, 2]))).toThrow(expect.objectContaining({ code: 'ERR_KILN_SHAPE_MISMATCH' }));
  });
});
