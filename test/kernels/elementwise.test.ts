import { describe, expect, it } from 'vitest';

import { native } from '../../src/binding.js';
import { Rng } from '../../src/util/rng.js';
import { expectIdentical, expectInvalidArg, forEachIsa, randomArray, sentinel } from './kernel-helpers.js';

// Lengths around the kernels' 32K-element task size and SIMD widths.
const LENGTHS = [0, 1, 7, 16, 17, 31, 1000, 32 * 1024, 32 * 1024 + 1, 100_003];

describe('relu', () => {
  it.each(LENGTHS)('length %i matches max(x, 0) exactly on every ISA', (n) => {
    const input = randomArray(new Rng(n + 1), n);
    if (n > 3) {
      input[0] = Number.NaN;
      input[1] = -0;
      input[2] = Infinity;
      input[3] = -Infinity;
    }
    forEachIsa((isa) => {
      const output = sentinel(n);
      native.relu({ input, output, length: n }, false);
      for (let i = 0; i < n; i++) {
        const x = input[i];
        const want = Number.isNaN(x) ? Number.NaN : x < 0 ? 0 : x;
        if (!Object.is(output[i], want) && !(want === 0 && output[i] === 0)) {
          expect.fail(`[${isa}] relu(${x}) at ${i} gave ${output[i]}`);
        }
      }
    });
  });

  it('works in place and on a worker', async () => {
    const input = randomArray(new Rng(5), 5000);
    const expected = sentinel(5000);
    native.relu({ input, output: expected, length: 5000 }, false);
    const inPlace = input.slice();
    native.relu({ input: inPlace, output: inPlace, length: 5000 }, false);
    expectIdentical(inPlace, expected, 'in place');
    const output = sentinel(5000);
    const pending = native.relu({ input, output, length: 5000 }, true);
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expectIdentical(output, expected, 'async');
  });
});

describe('reluBackward', () => {
  it.each(LENGTHS)('length %i passes the gradient where the output is positive, on every ISA', (n) => {
    const rng = new Rng(n + 2);
    const output = randomArray(rng, n);
    for (let i = 0; i < n; i += 5) output[i] = 0; // exactly 0: no gradient
    const gradOutput = randomArray(rng, n);
    forEachIsa((isa) => {
      const gradInput = sentinel(n);
      native.reluBackward({ output, gradOutput, gradInput, length: n }, false);
      for (let i = 0; i < n; i++) {
        const want = output[i] > 0 ? gradOutput[i] : 0;
        if (gradInput[i] !== want) expect.fail(`[${isa}] element ${i}: ${gradInput[i]} != ${want}`);
      }
    });
  });

  it('may overwrite gradOutput in place', async () => {
    const rng = new Rng(3);
    const output = randomArray(rng, 999);
    const gradOutput = randomArray(rng, 999);
    const expected = sentinel(999);
    native.reluBackward({ output, gradOutput, gradInput: expected, length: 999 }, false);
    const g = gradOutput.slice();
    await native.reluBackward({ output, gradOutput: g, gradInput: g, length: 999 }, true);
    expectIdentical(g, expected, 'in place, async');
  });
});

describe('elementwise argument checks', () => {
  it('refuses lengths that do not match, wrong types and partial overlaps', () => {
    const a = new Float32Array(10);
    expectInvalidArg(() => native.relu({ input: a, output: new Float32Array(9), length: 10 }, false), 'RangeError', /output/);
    expectInvalidArg(() => native.relu({ input: a, output: a, length: 11 }, false), 'RangeError', /input/);
    expectInvalidArg(() => native.relu({ input: a, output: a, length: -1 }, false), 'RangeError', /length/);
    expectInvalidArg(() => native.relu({ input: a, output: a, length: Number.NaN }, false), 'TypeError', /length/);
    expectInvalidArg(() => native.relu({ input: new Float64Array(10) as never, output: a, length: 10 }, false), 'TypeError', /input/);
    const shared = new Float32Array(12);
    expectInvalidArg(
      () => native.relu({ input: shared.subarray(0, 10), output: shared.subarray(2, 12), length: 10 }, false),
      'RangeError',
      /overlap/,
    );
    expectInvalidArg(
      () => native.reluBackward({ output: a, gradOutput: a, gradInput: new Float32Array(10), length: 10 }, 1 as never),
      'TypeError',
      /async/,
    );
  });
});
