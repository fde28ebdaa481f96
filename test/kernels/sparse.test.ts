/**
 * Sparse fp32 weights: packSparseF32 + spmmF32 against a float64 JS reference on the same masked
 * weights, every pattern, every ISA this CPU has, sparsities 0 to 1 (an all-zero layer), odd
 * shapes, bias and ReLU, sync and async; and the bad inputs the addon must refuse with a
 * TypeError / RangeError carrying ERR_KILN_INVALID_ARG, never a crash.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { native, type NativePackedSparseF32, type SparsePattern } from '../../src/binding.js';
import { Rng } from '../../src/util/rng.js';
import { expectInvalidArg, forEachIsa, forEachIsaAsync, randomArray, sentinel } from './kernel-helpers.js';

const PATTERNS: SparsePattern[] = ['unstructured', '1x4', '4x1', '8x1'];
const BLOCK: Record<SparsePattern, [number, number]> = { unstructured: [1, 1], '1x4': [1, 4], '4x1': [4, 1], '8x1': [8, 1] };
const SPARSITIES = [0, 0.5, 0.9, 0.99, 1];

afterAll(() => native.setNumThreads(0));

/** m x k weights with whole blocks of the pattern zeroed with probability `sparsity`. */
function maskedWeights(rng: Rng, m: number, k: number, pattern: SparsePattern, sparsity: number): Float32Array {
  const [br, bc] = BLOCK[pattern];
  const w = randomArray(rng, m * k);
  for (let r0 = 0; r0 < m; r0 += br) {
    for (let c0 = 0; c0 < k; c0 += bc) {
      if (sparsity < 1 && rng.uniform(0, 1) >= sparsity) continue;
      for (let r = r0; r < Math.min(m, r0 + br); r++) for (let c = c0; c < Math.min(k, c0 + bc); c++) w[r * k + c] = 0;
    }
  }
  return w;
}

/** Checks y against the float64 dense product within a bound on the float32 rounding. */
function expectProduct(y: Float32Array, w: Float32Array, x: Float32Array, m: number, k: number, n: number, bias: Float32Array | null, relu: boolean): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = bias ? bias[i] : 0;
      let mag = Math.abs(sum);
      for (let q = 0; q < k; q++) {
        const t = w[i * k + q] * x[q * n + j];
        sum += t;
        mag += Math.abs(t);
      }
      if (relu && sum < 0) sum = 0;
      const got = y[i * n + j];
      if (!(Math.abs(got - sum) <= 1e-5 * mag + 1e-30)) {
        throw new Error(`y[${i}][${j}] = ${got}, expected ${sum} (m=${m} k=${k} n=${n})`);
      }
    }
  }
}

describe('spmmF32', () => {
  it('equals the dense product of the masked weights on every ISA and pattern', () => {
    const rng = new Rng(7);
    const shapes: [number, number, number][] = [[1, 4, 1], [3, 8, 5], [5, 12, 33], [9, 20, 65], [17, 36, 100], [64, 288, 121]];
    forEachIsa((isa) => {
      for (const pattern of PATTERNS) {
        for (const [m, k, n] of shapes) {
          for (const s of SPARSITIES) {
            const w = maskedWeights(rng, m, k, pattern, s);
            const packed = native.packSparseF32({ m, k, weight: w, pattern });
            const info = native.packedSparseF32Info(packed);
            expect(info).toMatchObject({ m, k, pattern });
            expect(info.nonzeros).toBe(w.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0));
            if (s === 1) expect(info.blocks).toBe(0);
            const x = randomArray(rng, k * n);
            const bias = rng.int(2) === 0 ? randomArray(rng, m) : null;
            const relu = rng.int(2) === 0;
            const y = sentinel(m * n);
            native.spmmF32({ packed, n, x, y, bias, relu }, false);
            try {
              expectProduct(y, w, x, m, k, n, bias, relu);
            } catch (e) {
              throw new Error(`${isa} ${pattern} sparsity ${s}: ${(e as Error).message}`);
            }
          }
        }
      }
    });
  });

  it('runs async and on several threads', async () => {
    const rng = new Rng(8);
    native.setNumThreads(2);
    await forEachIsaAsync(async () => {
      for (const pattern of PATTERNS) {
        const [m, k, n] = [64, 288, 600];
        const w = maskedWeights(rng, m, k, pattern, 0.8);
        const packed = await native.packSparseF32({ m, k, weight: w, pattern }, true);
        const x = randomArray(rng, k * n);
        const bias = randomArray(rng, m);
        const y = sentinel(m * n);
        await native.spmmF32({ packed, n, x, y, bias, relu: true }, true);
        expectProduct(y, w, x, m, k, n, bias, true);
      }
    });
    native.setNumThreads(0);
  });

  it('gives n = 0 an empty result and an m = 0 or k = 0 layer its bias', () => {
    const packed = native.packSparseF32({ m: 2, k: 0, weight: new Float32Array(0), pattern: '4x1' });
    const y = sentinel(6);
    native.spmmF32({ packed, n: 3, x: new Float32Array(0), y, bias: new Float32Array([1, -2]), relu: true }, false);
    expect(Array.from(y)).toEqual([1, 1, 1, 0, 0, 0]);
    native.spmmF32({ packed, n: 0, x: new Float32Array(0), y: new Float32Array(0) }, false);
    const empty = native.packSparseF32({ m: 0, k: 4, weight: new Float32Array(0), pattern: 'unstructured' });
    native.spmmF32({ packed: empty, n: 5, x: new Float32Array(20), y: new Float32Array(0) }, false);
  });
});

describe('sparse bad input', () => {
  const weight = new Float32Array([1, 0, 0, 2, 0, 3, 0, 0]);  // 2 x 4
  const packed = native.packSparseF32({ m: 2, k: 4, weight, pattern: 'unstructured' });

  it('refuses bad packing arguments', () => {
    expectInvalidArg(() => native.packSparseF32({ m: 2, k: 4, weight, pattern: '2:4' as SparsePattern }), 'RangeError', /pattern/);
    expectInvalidArg(() => native.packSparseF32({ m: 2, k: 4, weight, pattern: 3 as unknown as SparsePattern }), 'TypeError', /pattern/);
    expectInvalidArg(() => native.packSparseF32({ m: 2, k: 3, weight: weight.subarray(0, 6), pattern: '1x4' }), 'RangeError', /multiple of 4/);
    expectInvalidArg(() => native.packSparseF32({ m: 2, k: 4, weight: weight.subarray(0, 7), pattern: '4x1' }), 'RangeError', /weight/);
    expectInvalidArg(() => native.packSparseF32({ m: 3, k: 4, weight, pattern: '4x1' }), 'RangeError', /weight/);
    expectInvalidArg(() => native.packSparseF32({ m: Number.NaN, k: 4, weight, pattern: '8x1' }), 'TypeError', /m/);
    expectInvalidArg(() => native.packSparseF32({ m: -1, k: 4, weight, pattern: '8x1' }), 'RangeError', /m/);
    expectInvalidArg(() => native.packSparseF32({ m: 2.5, k: 4, weight, pattern: '8x1' }), 'TypeError', /m/);
    expectInvalidArg(() => native.packSparseF32({ m: 2, k: 4, weight: new Float64Array(8) as unknown as Float32Array, pattern: '8x1' }), 'TypeError', /weight/);
    expectInvalidArg(() => native.packSparseF32({ m: 2, k: 4, weight: new Float32Array([0, 0, Number.NaN, 0, 0, 0, 0, 0]), pattern: 'unstructured' }), 'RangeError', /weight\[2\]/);
    expectInvalidArg(() => native.packSparseF32({ m: 2, k: 4, weight: new Float32Array([0, 0, 0, 0, 0, Infinity, 0, 0]), pattern: 'unstructured' }), 'RangeError', /weight\[5\]/);
    expectInvalidArg(() => native.packSparseF32(null as unknown as { m: number; k: number; weight: Float32Array; pattern: SparsePattern }), 'TypeError');
    expectInvalidArg(() => native.packedSparseF32Info({} as NativePackedSparseF32), 'TypeError', /packed/);
  });

  it('refuses bad product arguments', () => {
    const x = new Float32Array(4 * 3);
    const y = new Float32Array(2 * 3);
    native.spmmF32({ packed, n: 3, x, y }, false);
    expect(Array.from(y)).toEqual([0, 0, 0, 0, 0, 0]);
    expectInvalidArg(() => native.spmmF32({ packed, n: 3, x: x.subarray(1), y }, false), 'RangeError', /x/);
    expectInvalidArg(() => native.spmmF32({ packed, n: 3, x, y: new Float32Array(7) }, false), 'RangeError', /y/);
    expectInvalidArg(() => native.spmmF32({ packed, n: 3, x, y, bias: new Float32Array(3) }, false), 'RangeError', /bias/);
    expectInvalidArg(() => native.spmmF32({ packed, n: Number.NaN, x, y }, false), 'TypeError', /n/);
    expectInvalidArg(() => native.spmmF32({ packed, n: 2 ** 40, x, y }, false), 'RangeError', /n/);
    expectInvalidArg(() => native.spmmF32({ packed: {} as NativePackedSparseF32, n: 3, x, y }, false), 'TypeError', /packed/);
    const s8 = native.packS8B({ k: 4, n: 2, b: new Int8Array(8), ldb: 2 });
    expectInvalidArg(() => native.spmmF32({ packed: s8 as unknown as NativePackedSparseF32, n: 3, x, y }, false), 'TypeError', /packed/);
    const shared = new Float32Array(12);
    expectInvalidArg(() => native.spmmF32({ packed, n: 3, x: shared, y: shared.subarray(0, 6) }, false), 'RangeError');
    expectInvalidArg(() => native.spmmF32({ packed, n: 3, x, y, relu: 1 as unknown as boolean }, false), 'TypeError', /relu/);
  });
});
