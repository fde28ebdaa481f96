import { afterAll, describe, expect, it } from 'vitest';

import { native } from '../../src/binding.js';

type SgemmArgs = Parameters<typeof native.sgemm>[0];

/** Seeded uniform values in [-1, 1) (mulberry32). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

const GAP = -12345;
const EPS = 2 ** -23;

/** Elements spanned by a rows x cols row-major matrix with leading dimension ld. */
function extent(rows: number, cols: number, ld: number): number {
  return rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols;
}

/** A matrix whose row gaps hold `gap` (NaN in A and B: reading one poisons the result). */
function matrix(rows: number, cols: number, ld: number, next: () => number, gap: number): Float32Array {
  const out = new Float32Array(extent(rows, cols, ld));
  for (let i = 0; i < out.length; i++) out[i] = i % ld < cols ? next() : gap;
  return out;
}

interface Case {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  alpha: number;
  beta: number;
  biasMode: 'row' | 'col' | 'none';
  relu: boolean;
  pad: number;
}

/** Builds the arguments; C is NaN where it must be overwritten (beta = 0), GAP between rows. */
function build(c: Case, seed: number): SgemmArgs {
  const next = rng(seed);
  const lda = (c.transA ? c.m : c.k) + c.pad;
  const ldb = (c.transB ? c.k : c.n) + (c.pad ? c.pad + 2 : 0);
  const ldc = c.n + (c.pad ? c.pad + 1 : 0);
  const a = matrix(c.transA ? c.k : c.m, c.transA ? c.m : c.k, lda, next, Number.NaN);
  const b = matrix(c.transB ? c.n : c.k, c.transB ? c.k : c.n, ldb, next, Number.NaN);
  const out = matrix(c.m, c.n, ldc, next, GAP);
  if (c.beta === 0) for (let i = 0; i < out.length; i++) if (i % ldc < c.n) out[i] = Number.NaN;
  const biasLen = c.biasMode === 'row' ? c.m : c.n;
  const bias = c.biasMode === 'none' ? null : Float32Array.from({ length: biasLen }, next);
  return { ...c, a, lda, b, ldb, c: out, ldc, bias };
}

/** float64 reference of the same product, and the magnitude bound sum |alpha a b| + |beta c| + |bias|. */
function reference(args: SgemmArgs): { want: Float64Array; mag: Float64Array } {
  const { m, n, k, transA, transB, a, b, lda, ldb, ldc, alpha, beta, bias, biasMode, relu } = args;
  const want = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let sa = 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? a[p * lda + i] : a[i * lda + p];
        const bv = transB ? b[j * ldb + p] : b[p * ldb + j];
        s += av * bv;
        sa += Math.abs(av * bv);
      }
      const old = args.c[i * ldc + j];
      let v = alpha * s + (beta === 0 ? 0 : beta * old);
      let bound = Math.abs(alpha) * sa + (beta === 0 ? 0 : Math.abs(beta * old));
      const bv = biasMode === 'row' ? bias![i] : biasMode === 'col' ? bias![j] : 0;
      v += bv;
      bound += Math.abs(bv);
      if (relu && v < 0) v = 0;
      want[i * n + j] = v;
      mag[i * n + j] = bound;
    }
  }
  return { want, mag };
}

/** Checks C against the reference and the gaps between C rows against GAP; returns the first problem. */
function compare(args: SgemmArgs, expected: { want: Float64Array; mag: Float64Array }): string | null {
  const { m, n, k, ldc, c } = args;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < ldc && i * ldc + j < c.length; j++) {
      const got = c[i * ldc + j];
      if (j >= n) {
        if (got !== GAP) return `wrote the gap at row ${i}, column ${j}`;
        continue;
      }
      const tol = (k + 4) * EPS * expected.mag[i * n + j] + 1e-30;
      const want = expected.want[i * n + j];
      if (!(Math.abs(got - want) <= tol)) return `C[${i},${j}] = ${got}, want ${want} (tolerance ${tol})`;
    }
  }
  return null;
}

/** A sweep over tile edges, depths, transposes, scalings and epilogues, rotated so it stays small. */
function cases(): Case[] {
  const out: Case[] = [];
  const ms = [1, 2, 5, 6, 7, 13, 31];
  const ns = [1, 3, 8, 15, 16, 17, 33, 63, 64, 65, 97];
  const ks = [1, 2, 3, 7, 16, 17, 255, 288, 401];
  const alphas = [1, -0.75, 2];
  const betas = [0, 1, 0, -0.5];
  const modes = ['none', 'row', 'col'] as const;
  let i = 0;
  for (const m of ms) {
    for (const n of ns) {
      out.push({
        transA: (i & 1) === 1,
        transB: (i & 2) === 2,
        m,
        n,
        k: ks[i % ks.length],
        alpha: alphas[i % 3],
        beta: betas[i % 4],
        biasMode: modes[(i >> 2) % 3],
        relu: i % 5 < 2,
        pad: i % 3 === 0 ? 3 : 0,
      });
      i++;
    }
  }
  // Products of the MNIST networks and a few larger prime ones (several K blocks, threads).
  for (const [m, n, k] of [[32, 676, 9], [64, 121, 288], [64, 128, 1600], [101, 131, 211], [127, 67, 700]]) {
    for (let t = 0; t < 4; t++, i++) {
      out.push({ transA: (t & 1) === 1, transB: (t & 2) === 2, m, n, k, alpha: alphas[i % 3], beta: betas[i % 4], biasMode: modes[i % 3], relu: t % 2 === 0, pad: t === 1 ? 1 : 0 });
    }
  }
  return out;
}

const isas = native.cpuInfo().supportedIsas;
const initialIsa = native.cpuInfo().isa;

afterAll(() => {
  native.setIsa(initialIsa);
  native.setNumThreads(0);
});

describe('sgemm numerics', () => {
  for (const isa of isas) {
    it(`matches a float64 reference on ${isa}`, () => {
      native.setIsa(isa);
      try {
        let seed = 1;
        for (const c of cases()) {
          const args = build(c, seed++);
          const expected = reference(args);
          native.sgemm(args, false);
          const problem = compare(args, expected);
          expect(problem, `${isa} ${JSON.stringify(c)}`).toBeNull();
        }
      } finally {
        native.setIsa(initialIsa);
      }
    });
  }

  it('k = 0 gives beta * C plus the epilogue; m or n = 0 writes nothing', () => {
    const args = build({ transA: false, transB: false, m: 3, n: 5, k: 0, alpha: 1, beta: 0.5, biasMode: 'col', relu: true, pad: 0 }, 7);
    const expected = reference(args);
    native.sgemm(args, false);
    expect(compare(args, expected)).toBeNull();
    const c = new Float32Array([42]);
    native.sgemm({ transA: false, transB: false, m: 0, n: 1, k: 4, alpha: 1, a: new Float32Array(0), lda: 4, b: new Float32Array(4), ldb: 1, beta: 0, c, ldc: 1 }, false);
    expect(c[0]).toBe(42);
  });

  it('gives the same bits on 1 and 2 threads', () => {
    const c: Case = { transA: false, transB: true, m: 150, n: 170, k: 300, alpha: 1, beta: 0, biasMode: 'row', relu: true, pad: 0 };
    native.setNumThreads(1);
    const one = build(c, 99);
    native.sgemm(one, false);
    native.setNumThreads(2);
    const two = build(c, 99);
    native.sgemm(two, false);
    expect(Buffer.from(two.c.buffer).equals(Buffer.from(one.c.buffer))).toBe(true);
    native.setNumThreads(0);
  });

  it('runs off the event loop when async and resolves with C written', async () => {
    const args = build({ transA: true, transB: false, m: 97, n: 131, k: 211, alpha: 1.5, beta: 0, biasMode: 'col', relu: false, pad: 2 }, 11);
    const expected = reference(args);
    const pending = native.sgemm(args, true);
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expect(compare(args, expected)).toBeNull();
  });
});

describe('sgemm argument checks', () => {
  const valid = (): SgemmArgs => ({
    transA: false,
    transB: false,
    m: 3,
    n: 4,
    k: 5,
    alpha: 1,
    a: new Float32Array(15),
    lda: 5,
    b: new Float32Array(20),
    ldb: 4,
    beta: 0,
    c: new Float32Array(12),
    ldc: 4,
  });
  const invalid = (name: 'TypeError' | 'RangeError') => expect.objectContaining({ name, code: 'ERR_KILN_INVALID_ARG' });

  it('accepts the valid baseline', () => {
    expect(native.sgemm(valid(), false)).toBeUndefined();
  });

  const rangeCases: [string, Partial<SgemmArgs>][] = [
    ['negative m', { m: -1 }],
    ['m above 2^31-1', { m: 2 ** 31 }],
    ['a one element short', { a: new Float32Array(14) }],
    ['b one element short', { b: new Float32Array(19) }],
    ['c one element short', { c: new Float32Array(11) }],
    ['lda below k', { lda: 4 }],
    ['ldb below n', { ldb: 3 }],
    ['ldc below n', { ldc: 3 }],
    ['lda below m when transposed', { transA: true, lda: 2 }],
    ['huge m with small arrays', { m: 2 ** 31 - 1 }],
    ['huge sizes and strides (overflow)', { m: 2 ** 31 - 1, n: 2 ** 31 - 1, k: 2 ** 31 - 1, lda: 2 ** 31 - 1, ldb: 2 ** 31 - 1, ldc: 2 ** 31 - 1 }],
    ['NaN alpha', { alpha: Number.NaN }],
    ['infinite beta', { beta: Number.POSITIVE_INFINITY }],
    ['unknown biasMode', { biasMode: 'diag' as never, bias: new Float32Array(4) }],
    ['row bias too short', { biasMode: 'row', bias: new Float32Array(2) }],
    ['col bias too short', { biasMode: 'col', bias: new Float32Array(3) }],
    ['bias without biasMode', { bias: new Float32Array(4) }],
  ];
  for (const [what, patch] of rangeCases) {
    it(`throws RangeError for ${what}`, () => {
      expect(() => native.sgemm({ ...valid(), ...patch }, false)).toThrow(invalid('RangeError'));
    });
  }

  const typeCases: [string, Record<string, unknown>][] = [
    ['fractional n', { n: 2.5 }],
    ['string k', { k: '5' }],
    ['Float64Array a', { a: new Float64Array(15) }],
    ['plain array b', { b: Array.from({ length: 20 }, () => 0) }],
    ['missing c', { c: undefined }],
    ['string alpha', { alpha: '1' }],
    ['non-boolean transA', { transA: 1 }],
    ['row bias missing', { biasMode: 'row' }],
    ['Int32Array bias', { biasMode: 'col', bias: new Int32Array(4) }],
  ];
  for (const [what, patch] of typeCases) {
    it(`throws TypeError for ${what}`, () => {
      expect(() => native.sgemm({ ...valid(), ...patch } as SgemmArgs, false)).toThrow(invalid('TypeError'));
    });
  }

  it('throws TypeError when args is not an object', () => {
    expect(() => native.sgemm(null as never, false)).toThrow(invalid('TypeError'));
  });

  it('refuses an output that overlaps an input', () => {
    const shared = new Float32Array(64);
    const args = { ...valid(), a: shared.subarray(0, 15), c: shared.subarray(10, 22) };
    expect(() => native.sgemm(args, false)).toThrow(invalid('RangeError'));
  });

  it('validates before going async (throws, no Promise)', () => {
    expect(() => native.sgemm({ ...valid(), a: new Float32Array(3) }, true)).toThrow(invalid('RangeError'));
  });

  it('reads views at their byte offset', () => {
    // A view into the middle of a larger buffer: lengths are the view's, data starts at its offset.
    const backing = new Float32Array(100).fill(Number.NaN);
    const a = backing.subarray(40, 41);
    a[0] = 3;
    const c = new Float32Array(1);
    native.sgemm({ transA: false, transB: false, m: 1, n: 1, k: 1, alpha: 1, a, lda: 1, b: new Float32Array([2]), ldb: 1, beta: 0, c, ldc: 1 }, false);
    expect(c[0]).toBe(6);
  });

  it('leaves the process working after all of the above', () => {
    const args = build({ transA: false, transB: false, m: 9, n: 9, k: 9, alpha: 1, beta: 0, biasMode: 'none', relu: false, pad: 0 }, 5);
    const expected = reference(args);
    native.sgemm(args, false);
    expect(compare(args, expected)).toBeNull();
  });
});

describe('measureF32Peak', () => {
  it('returns a positive GFLOP/s figure for every ISA', () => {
    try {
      for (const isa of isas) {
        native.setIsa(isa);
        const gflops = native.measureF32Peak(5);
        expect(Number.isFinite(gflops) && gflops > 0, `${isa}: ${gflops}`).toBe(true);
      }
    } finally {
      native.setIsa(initialIsa);
    }
  });

  it('validates its argument', () => {
    expect(() => native.measureF32Peak(0)).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_KILN_INVALID_ARG' }));
    expect(() => native.measureF32Peak(Number.NaN)).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_KILN_INVALID_ARG' }));
    expect(() => native.measureF32Peak(1e9)).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_KILN_INVALID_ARG' }));
    expect(() => native.measureF32Peak('5' as never)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_KILN_INVALID_ARG' }));
  });
});
