import { describe, expect, it } from 'vitest';

import { native } from '../../src/binding.js';
import { Rng } from '../../src/util/rng.js';
import { expectClose, expectIdentical, expectInvalidArg, forEachIsa, randomArray, sentinel } from './kernel-helpers.js';

/** float64 row-wise log-sum-exp. */
function logSumExp(x: Float32Array, r: number, cols: number): number {
  let max = -Infinity;
  for (let j = 0; j < cols; j++) max = Math.max(max, x[r * cols + j]);
  let sum = 0;
  for (let j = 0; j < cols; j++) sum += Math.exp(x[r * cols + j] - max);
  return max + Math.log(sum);
}

function referenceSoftmax(x: Float32Array, rows: number, cols: number, log: boolean): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const lse = logSumExp(x, r, cols);
    for (let j = 0; j < cols; j++) out[r * cols + j] = log ? x[r * cols + j] - lse : Math.exp(x[r * cols + j] - lse);
  }
  return out;
}

const SHAPES: [number, number][] = [
  [1, 1],
  [1, 2],
  [3, 10],
  [64, 10],
  [7, 13],
  [2, 1001],
  [129, 3],
];

describe('softmax', () => {
  for (const log of [false, true]) {
    it.each(SHAPES)(`%i x %i (log ${log}) matches float64 on every ISA`, (rows, cols) => {
      const x = randomArray(new Rng(rows * 31 + cols), rows * cols, -8, 8);
      const ref = referenceSoftmax(x, rows, cols, log);
      forEachIsa((isa) => {
        const output = sentinel(rows * cols);
        native.softmax({ input: x, output, rows, cols, log }, false);
        // log-softmax values are O(|x|): absolute error relative to the row's magnitude.
        expectClose(output, ref, `[${isa}]`, { rel: 1e-6, abs: log ? 1e-5 : 1e-7 });
      });
    });
  }

  it('stays finite for huge logits (the row max is subtracted first)', () => {
    const x = new Float32Array([1e30, 1e30 - 1e24, -1e30, 3e38, 3e38, 0]);
    const output = sentinel(6);
    native.softmax({ input: x, output, rows: 2, cols: 3, log: false }, false);
    expectClose(output, [1, 0, 0, 0.5, 0.5, 0], 'huge', { rel: 0, abs: 1e-7 });
    const logs = sentinel(6);
    native.softmax({ input: x, output: logs, rows: 2, cols: 3, log: true }, false);
    expect(logs[0]).toBeCloseTo(0, 6);
    expect(logs[2]).toBeLessThan(-1e29);
    expect(Number.isFinite(logs[2])).toBe(true);
  });

  it('works in place and on a worker', async () => {
    const x = randomArray(new Rng(4), 50 * 10, -3, 3);
    const expected = sentinel(500);
    native.softmax({ input: x, output: expected, rows: 50, cols: 10, log: true }, false);
    const y = x.slice();
    await native.softmax({ input: y, output: y, rows: 50, cols: 10, log: true }, true);
    expectIdentical(y, expected, 'in place, async');
  });
});

describe('softmaxCrossEntropy', () => {
  it.each(SHAPES)('%i x %i: losses and gradient match float64 on every ISA', (rows, cols) => {
    const rng = new Rng(rows * 7 + cols);
    const logits = randomArray(rng, rows * cols, -6, 6);
    const labels = Int32Array.from({ length: rows }, () => rng.int(cols));
    const gradScale = 1 / rows;
    const refLoss = new Float64Array(rows);
    const refGrad = new Float64Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const lse = logSumExp(logits, r, cols);
      refLoss[r] = lse - logits[r * cols + labels[r]];
      for (let j = 0; j < cols; j++) {
        refGrad[r * cols + j] = (Math.exp(logits[r * cols + j] - lse) - (j === labels[r] ? 1 : 0)) * gradScale;
      }
    }
    forEachIsa((isa) => {
      const losses = sentinel(rows);
      const gradLogits = sentinel(rows * cols);
      native.softmaxCrossEntropy({ logits, labels, rows, cols, losses, gradLogits, gradScale }, false);
      expectClose(losses, refLoss, `losses [${isa}]`, { rel: 1e-6, abs: 1e-6 });
      expectClose(gradLogits, refGrad, `gradLogits [${isa}]`, { rel: 1e-6, abs: 1e-7 });
      const alone = sentinel(rows);
      native.softmaxCrossEntropy({ logits, labels, rows, cols, losses: alone, gradLogits: null, gradScale }, false);
      expectIdentical(alone, losses, 'losses without gradient');
    });
  });

  it('is exact for confident rows and finite for huge logits', () => {
    const logits = new Float32Array([1e30, 0, -1e30, 0]);
    const losses = sentinel(2);
    const gradLogits = sentinel(4);
    native.softmaxCrossEntropy({ logits, labels: new Int32Array([0, 1]), rows: 2, cols: 2, losses, gradLogits, gradScale: 1 }, false);
    expect(losses[0]).toBe(0);
    expect(losses[1]).toBe(0);
    expect(Array.from(gradLogits)).toEqual([0, 0, 0, 0]);
  });

  it('writes the gradient in place of the logits, on a worker', async () => {
    const rng = new Rng(8);
    const logits = randomArray(rng, 64 * 10, -4, 4);
    const labels = Int32Array.from({ length: 64 }, () => rng.int(10));
    const losses = sentinel(64);
    const grad = sentinel(640);
    native.softmaxCrossEntropy({ logits, labels, rows: 64, cols: 10, losses, gradLogits: grad, gradScale: 0.5 }, false);
    const inPlace = logits.slice();
    const losses2 = sentinel(64);
    await native.softmaxCrossEntropy({ logits: inPlace, labels, rows: 64, cols: 10, losses: losses2, gradLogits: inPlace, gradScale: 0.5 }, true);
    expectIdentical(inPlace, grad, 'gradient');
    expectIdentical(losses2, losses, 'losses');
  });

  it('refuses labels outside [0, cols) with a RangeError, without reading out of bounds', () => {
    const logits = new Float32Array(6);
    const losses = sentinel(2);
    for (const bad of [3, -1, 2 ** 31 - 1, -(2 ** 31)]) {
      expectInvalidArg(
        () => native.softmaxCrossEntropy({ logits, labels: new Int32Array([0, bad]), rows: 2, cols: 3, losses, gradScale: 1 }, false),
        'RangeError',
        /labels\[1\]/,
      );
    }
    expect(Number.isNaN(losses[0])).toBe(true); // nothing written
  });

  it('refuses wrong lengths and types', () => {
    const base = { logits: new Float32Array(6), labels: new Int32Array(2), rows: 2, cols: 3, losses: new Float32Array(2), gradScale: 1 };
    expectInvalidArg(() => native.softmaxCrossEntropy({ ...base, labels: new Int32Array(3) }, false), 'RangeError', /labels/);
    expectInvalidArg(() => native.softmaxCrossEntropy({ ...base, losses: new Float32Array(1) }, false), 'RangeError', /losses/);
    expectInvalidArg(() => native.softmaxCrossEntropy({ ...base, gradLogits: new Float32Array(5) }, false), 'RangeError', /gradLogits/);
    expectInvalidArg(() => native.softmaxCrossEntropy({ ...base, labels: new Float32Array(2) as never }, false), 'TypeError', /labels/);
    expectInvalidArg(() => native.softmaxCrossEntropy({ ...base, gradScale: Number.NaN }, false), 'RangeError', /gradScale/);
    expectInvalidArg(() => native.softmaxCrossEntropy({ ...base, cols: 0 }, false), 'RangeError', /cols/);
    expectInvalidArg(() => native.softmax({ input: new Float32Array(6), output: new Float32Array(6), rows: 2, cols: 3 } as never, false), 'TypeError', /log/);
    expectInvalidArg(() => native.softmax({ input: new Float32Array(6), output: new Float32Array(5), rows: 2, cols: 3, log: false }, false), 'RangeError', /output/);
  });
});
