/**
 * int8 GEMM (u8 x s8 -> s32, ONNX QGemm semantics) against an exact JS reference, bit for bit, on
 * every kernel family this CPU has: each ISA level and the AVX-VNNI kernels forced on. Outputs
 * start as sentinels (NaN for float; two different byte values over two runs for uint8) and row
 * gaps must keep theirs, so an unwritten or stray element fails.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { native, testHooks, type NativePackedS8B, type S8GemmOperands } from '../../src/binding.js';
import { Rng } from '../../src/util/rng.js';
import { expectInvalidArg, roundHalfEven } from './kernel-helpers.js';

const info = native.cpuInfo();
const initialIsa = info.isa;

interface Path {
  isa: string;
  avxvnni: boolean;
}

/** Every ISA level, plus the AVX-VNNI kernels forced on where the CPU has them. */
const PATHS: Path[] = [
  ...info.supportedIsas.map((isa) => ({ isa, avxvnni: false })),
  ...(info.features.avxvnni ? [{ isa: info.bestIsa, avxvnni: true }] : []),
];

/** The kernel family each path must run (AVX-VNNI replaces AVX2 only without AVX512-VNNI). */
function expectedKernel(p: Path): string {
  if (p.avxvnni) return 'avxvnni';
  const vexVnni = info.features.avxvnni && !info.features.avx512vnni;
  switch (p.isa) {
    case 'scalar': return 'scalar';
    case 'avx2': return vexVnni ? 'avxvnni' : 'avx2';
    case 'avx512': return vexVnni ? 'avxvnni' : 'avx512bw';
    default: return 'avx512vnni';
  }
}

function select(p: Path): void {
  native.setIsa(p.isa);
  testHooks().setS8GemmKernel(p.avxvnni ? 'avxvnni' : 'auto');
  expect(testHooks().s8GemmKernel()).toBe(expectedKernel(p));
}

afterAll(() => {
  testHooks().setS8GemmKernel('auto');
  native.setIsa(initialIsa);
  native.setNumThreads(0);
});

// ---- The reference: exact integers, then the epilogue's float32 steps one rounding at a time ----

interface Problem {
  m: number; n: number; k: number;
  a: Uint8Array; lda: number; za: number;
  b: Int8Array; ldb: number; transB: boolean;
  bias: Int32Array | null;
}

/** sum_k (A - za) * B + bias, wrapped to int32 (exact in float64 for these sizes). */
function referenceSums(p: Problem): Int32Array {
  const out = new Int32Array(p.m * p.n);
  for (let i = 0; i < p.m; i++) {
    for (let j = 0; j < p.n; j++) {
      let s = p.bias ? p.bias[j] : 0;
      for (let q = 0; q < p.k; q++) {
        const bv = p.transB ? p.b[j * p.ldb + q] : p.b[q * p.ldb + j];
        s += (p.a[i * p.lda + q] - p.za) * bv;
      }
      out[i * p.n + j] = s | 0;  // ToInt32: modulo 2^32, like the kernels
    }
  }
  return out;
}

function requantize(acc: number, scale: number, zp: number, min: number, max: number): number {
  let y = Math.fround(Math.fround(acc) * scale);  // float32 x float32 is exact in float64
  y = Math.max(min - zp, Math.min(max - zp, y));
  return roundHalfEven(y) + zp;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float32 next to f (f != 0) in the direction of `dir`. */
function nextFloat(f: number, dir: number): number {
  f32[0] = f;
  u32[0] += (f > 0) === (dir > 0) ? 1 : -1;
  return f32[0];
}

/** fma(x, y, z) in float32 with one rounding: x*y is exact in float64, and the float64 sum decides
 * the float32 rounding except on an exact float32 midpoint, where the sum's error breaks the tie. */
function fmaf(x: number, y: number, z: number): number {
  const p = x * y;
  const s = p + z;
  const bb = s - p;
  const err = (p - (s - bb)) + (z - bb);
  const f = Math.fround(s);
  if (err === 0 || f === s || f === 0) return f;
  const g = nextFloat(f, s - f);
  if (Math.abs(s - f) !== Math.abs(g - s)) return f;  // not a midpoint: s and the exact sum round alike
  return err > 0 ? Math.max(f, g) : Math.min(f, g);
}

// ---- Cases ----

interface Case {
  m: number; n: number; k: number;
  za: number;
  transB: boolean;
  bias: boolean;
  pad: number;     // extra elements per row of A, B and C
  packed: boolean; // B packed once with packS8B, else passed raw
  values?: 'random' | 'min' | 'max';  // 'min': A = 255, B = -128; 'max': A = 255, B = 127
}

const GAP32 = -2023406815;

function build(c: Case, rng: Rng): Problem {
  const lda = c.k + c.pad;
  const ldb = (c.transB ? c.k : c.n) + c.pad;
  const aLen = c.m === 0 || c.k === 0 ? 0 : (c.m - 1) * lda + c.k;
  const bRows = c.transB ? c.n : c.k;
  const bCols = c.transB ? c.k : c.n;
  const bLen = bRows === 0 || bCols === 0 ? 0 : (bRows - 1) * ldb + bCols;
  const values = c.values ?? 'random';
  const a = new Uint8Array(aLen);
  const b = new Int8Array(bLen);
  // Gaps get random values too: reading one changes the sum.
  for (let i = 0; i < aLen; i++) a[i] = values === 'random' ? rng.int(256) : 255;
  for (let i = 0; i < bLen; i++) b[i] = values === 'random' ? rng.int(256) - 128 : values === 'min' ? -128 : 127;
  const bias = c.bias ? Int32Array.from({ length: c.n }, () => rng.int(2_000_001) - 1_000_000) : null;
  return { m: c.m, n: c.n, k: c.k, a, lda, za: c.za, b, ldb, transB: c.transB, bias };
}

function operands(p: Problem, packed: boolean): S8GemmOperands {
  const b: Int8Array | NativePackedS8B = packed
    ? native.packS8B({ k: p.k, n: p.n, b: p.b, ldb: p.ldb, transB: p.transB })
    : p.b;
  return { m: p.m, n: p.n, k: p.k, a: p.a, lda: p.lda, aZeroPoint: p.za, b, ldb: p.ldb, transB: p.transB, bias: p.bias };
}

function outputLength(p: Problem, ldc: number): number {
  return p.m === 0 || p.n === 0 ? 0 : (p.m - 1) * ldc + p.n;
}

/** First element of `got` (ldc-strided, gaps must equal `gap`) that differs from `want(i, j)`. */
function firstMismatch(
  got: ArrayLike<number>, p: Problem, ldc: number, want: (i: number, j: number) => number, gap: number,
): string | null {
  for (let at = 0; at < got.length; at++) {
    const i = Math.floor(at / ldc);
    const j = at % ldc;
    const w = j < p.n ? want(i, j) : gap;
    const g = got[at];
    if (!Object.is(g, w)) {  // bit identity for floats: NaN equals NaN, -0 differs from 0
      return `element (${i}, ${j}) is ${g}, expected ${w}`;
    }
  }
  return null;
}

/** Runs the three output stages of one case on the active path and compares them bit for bit. */
function checkCase(c: Case, seed: number): void {
  const rng = new Rng(seed);
  const p = build(c, rng);
  const want = referenceSums(p);
  const args = operands(p, c.packed);
  const ldc = c.n + c.pad;
  const label = `${testHooks().s8GemmKernel()} ${JSON.stringify(c)}`;

  const c32 = new Int32Array(outputLength(p, ldc)).fill(GAP32);
  native.s8gemm({ ...args, c: c32, ldc }, false);
  expect(firstMismatch(c32, p, ldc, (i, j) => want[i * p.n + j], GAP32), `int32 ${label}`).toBeNull();

  const scale = Float32Array.from({ length: p.n }, (_, j) =>
    (rng.uniform(0.5, 2) / (Math.max(p.k, 1) * 64)) * (j % 7 === 3 ? 64 : 1));
  const zp = rng.int(256);
  const outMin = c.m % 2 ? zp : rng.int(zp + 1);  // odd M: a fused ReLU
  const outMax = Math.max(outMin, 255 - rng.int(40));
  for (const sentinel of [0x5a, 0xa5]) {
    const c8 = new Uint8Array(outputLength(p, ldc)).fill(sentinel);
    native.s8gemmRequantize({ ...args, c: c8, ldc, scale, outZeroPoint: zp, outMin, outMax }, false);
    const wantU8 = (i: number, j: number): number => requantize(want[i * p.n + j], scale[j], zp, outMin, outMax);
    expect(firstMismatch(c8, p, ldc, wantU8, sentinel), `u8 ${label}`).toBeNull();
  }

  const outBias = c.m % 3 ? Float32Array.from({ length: p.n }, () => rng.uniform(-3, 3)) : null;
  const cf = new Float32Array(outputLength(p, ldc)).fill(Number.NaN);
  native.s8gemmDequantize({ ...args, c: cf, ldc, scale, outBias }, false);
  const wantF = (i: number, j: number): number => fmaf(Math.fround(want[i * p.n + j]), scale[j], outBias ? outBias[j] : 0);
  expect(firstMismatch(cf, p, ldc, wantF, Number.NaN), `f32 ${label}`).toBeNull();
}

/** Tile edges of every family (MR up to 6, NR 8..64), odd and prime sizes, K % 4 != 0. */
function shapeCases(): Case[] {
  const ms = [1, 2, 5, 6, 7, 13, 37];
  const ns = [1, 3, 8, 9, 16, 17, 31, 64, 65, 131];
  const ks = [0, 1, 2, 3, 5, 7, 13, 64, 67, 211, 389];
  const out: Case[] = [];
  let i = 0;
  for (const m of ms) {
    for (const n of ns) {
      const k = ks[i % ks.length];
      out.push({ m, n, k, za: (i * 37) % 256, transB: i % 2 === 1, bias: i % 3 !== 0, pad: i % 4 === 0 ? 3 : 0, packed: i % 5 < 2 });
      i++;
    }
  }
  // Several hundred on every side, split over threads and column blocks.
  out.push({ m: 263, n: 197, k: 301, za: 131, transB: false, bias: true, pad: 1, packed: true });
  out.push({ m: 101, n: 257, k: 127, za: 0, transB: true, bias: false, pad: 0, packed: false });
  // K a multiple of 4: byte (VNNI, scalar) kernels read A in place with stride lda, no packing.
  // Row counts that leave ragged tiles, rows padded or not, SeedCNN's conv depths (12, 288).
  out.push({ m: 4, n: 1, k: 4, za: 7, transB: false, bias: true, pad: 0, packed: true });
  out.push({ m: 37, n: 64, k: 12, za: 200, transB: false, bias: true, pad: 5, packed: true });
  out.push({ m: 41, n: 65, k: 288, za: 1, transB: true, bias: false, pad: 3, packed: false });
  out.push({ m: 13, n: 17, k: 36, za: 255, transB: false, bias: true, pad: 1, packed: true });
  out.push({ m: 131, n: 131, k: 128, za: 64, transB: true, bias: true, pad: 0, packed: true });
  return out;
}

describe('s8gemm numerics', () => {
  for (const path of PATHS) {
    const name = `${path.isa}${path.avxvnni ? ' with AVX-VNNI forced' : ''}`;

    it(`matches the exact reference on ${name} (random shapes, int32 / u8 / f32 outputs)`, () => {
      select(path);
      let seed = 1;
      for (const c of shapeCases()) checkCase(c, seed++);
    });

    it(`handles every activation zero point 0..255 on ${name}`, () => {
      select(path);
      for (let za = 0; za < 256; za++) {
        const p = build({ m: 5, n: 17, k: 11, za, transB: za % 2 === 0, bias: za % 3 === 0, pad: 0, packed: false }, new Rng(za + 1000));
        const want = referenceSums(p);
        const c = new Int32Array(5 * 17).fill(GAP32);
        native.s8gemm({ ...operands(p, false), c, ldc: 17 }, false);
        expect(firstMismatch(c, p, 17, (i, j) => want[i * 17 + j], GAP32), `za=${za}`).toBeNull();
      }
      // The full epilogue on a spread of zero points.
      for (const za of [0, 1, 127, 128, 254, 255]) {
        checkCase({ m: 7, n: 19, k: 13, za, transB: false, bias: true, pad: 1, packed: true }, 2000 + za);
      }
    });

    it(`is exact where vpmaddubsw saturates (A = 255, B = -128 / 127) on ${name}`, () => {
      select(path);
      for (const values of ['min', 'max'] as const) {
        for (const k of [4, 64, 257]) {
          checkCase({ m: 13, n: 37, k, za: 0, transB: false, bias: false, pad: 0, packed: true, values }, k);
          checkCase({ m: 6, n: 16, k, za: 255, transB: true, bias: true, pad: 2, packed: false, values }, k + 1);
        }
      }
      // Beyond int32 (255 * -128 * 70001 < -2^31): every path wraps the same way.
      checkCase({ m: 2, n: 17, k: 70001, za: 0, transB: false, bias: false, pad: 0, packed: true, values: 'min' }, 5);
    });
  }

  it('the extreme case above is one a plain vpmaddubsw kernel gets wrong', () => {
    // vpmaddubsw adds two u8 x s8 products into an int16 with saturation.
    const sat16 = (x: number): number => Math.max(-32768, Math.min(32767, x));
    const k = 64;
    let naive = 0;
    for (let q = 0; q < k; q += 2) naive += sat16(255 * -128 + 255 * -128);
    const exact = 255 * -128 * k;
    expect(naive).not.toBe(exact);
    const a = new Uint8Array(k).fill(255);
    const b = new Int8Array(k).fill(-128);
    for (const path of PATHS) {
      select(path);
      const c = new Int32Array(1);
      native.s8gemm({ m: 1, n: 1, k, a, lda: k, aZeroPoint: 0, b, ldb: 1, c, ldc: 1 }, false);
      expect(c[0], testHooks().s8GemmKernel()).toBe(exact);
    }
  });

  it('packed weights stay valid across ISA switches', () => {
    const p = build({ m: 29, n: 45, k: 103, za: 3, transB: false, bias: false, pad: 0, packed: false }, new Rng(42));
    const want = referenceSums(p);
    select(PATHS[0]);
    const packed = native.packS8B({ k: p.k, n: p.n, b: p.b, ldb: p.ldb });
    expect(native.packedS8BInfo(packed)).toMatchObject({ k: 103, n: 45 });
    for (const path of PATHS) {
      select(path);
      const c = new Int32Array(29 * 45);
      native.s8gemm({ ...operands(p, false), b: packed, c, ldc: 45 }, false);
      expect(Array.from(c), testHooks().s8GemmKernel()).toEqual(Array.from(want));
    }
  });

  it('gives the same bits on 1 and 2 threads, and async resolves with C written', async () => {
    testHooks().setS8GemmKernel('auto');
    native.setIsa(initialIsa);
    const p = build({ m: 150, n: 170, k: 300, za: 90, transB: true, bias: true, pad: 0, packed: false }, new Rng(9));
    const want = referenceSums(p);
    const results: Int32Array[] = [];
    for (const threads of [1, 2]) {
      native.setNumThreads(threads);
      const c = new Int32Array(150 * 170);
      native.s8gemm({ ...operands(p, false), c, ldc: 170 }, false);
      results.push(c);
    }
    native.setNumThreads(0);
    expect(Array.from(results[1])).toEqual(Array.from(results[0]));
    expect(Array.from(results[0])).toEqual(Array.from(want));

    const c = new Int32Array(150 * 170).fill(GAP32);
    const pending = native.s8gemm({ ...operands(p, true), c, ldc: 170 }, true);
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expect(Array.from(c)).toEqual(Array.from(want));
    const packed = await native.packS8B({ k: p.k, n: p.n, b: p.b, ldb: p.ldb, transB: true }, true);
    const c2 = new Int32Array(150 * 170);
    await native.s8gemm({ ...operands(p, false), b: packed, c: c2, ldc: 170 }, true);
    expect(Array.from(c2)).toEqual(Array.from(want));
  });

  it('m or n = 0 writes nothing; k = 0 gives bias - 0 through the epilogue', () => {
    const c = new Int32Array([7]);
    native.s8gemm({ m: 0, n: 1, k: 4, a: new Uint8Array(0), lda: 4, aZeroPoint: 0, b: new Int8Array(4), ldb: 1, c, ldc: 1 }, false);
    expect(c[0]).toBe(7);
    const bias = Int32Array.from([5, -6, 7]);
    const out = new Int32Array(6).fill(GAP32);
    native.s8gemm({ m: 2, n: 3, k: 0, a: new Uint8Array(0), lda: 0, aZeroPoint: 9, b: new Int8Array(0), ldb: 3, bias, c: out, ldc: 3 }, false);
    expect(Array.from(out)).toEqual([5, -6, 7, 5, -6, 7]);
  });

  it('reports a peak for the active family', () => {
    testHooks().setS8GemmKernel('auto');
    native.setIsa(initialIsa);
    expect(native.measureS8Peak(5)).toBeGreaterThan(0);
    expect(() => native.measureS8Peak(0)).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_KILN_INVALID_ARG' }));
    expect(() => native.measureS8Peak(Number.NaN)).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_KILN_INVALID_ARG' }));
    expect(() => native.measureS8Peak('5' as never)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_KILN_INVALID_ARG' }));
  });
});

describe('s8gemm argument checks', () => {
  const base = (): S8GemmOperands & { c: Int32Array; ldc: number } => ({
    m: 2, n: 3, k: 5, a: new Uint8Array(10), lda: 5, aZeroPoint: 0, b: new Int8Array(15), ldb: 3, c: new Int32Array(6), ldc: 3,
  });
  const requant = () => ({ ...base(), c: new Uint8Array(6), scale: new Float32Array(3).fill(0.01), outZeroPoint: 0 });

  it('refuses zero points outside 0..255 and non-integers', () => {
    expectInvalidArg(() => native.s8gemm({ ...base(), aZeroPoint: 256 }, false), 'RangeError', /aZeroPoint/);
    expectInvalidArg(() => native.s8gemm({ ...base(), aZeroPoint: -1 }, false), 'RangeError', /aZeroPoint/);
    expectInvalidArg(() => native.s8gemm({ ...base(), aZeroPoint: 1.5 }, false), 'TypeError', /aZeroPoint/);
    expectInvalidArg(() => native.s8gemmRequantize({ ...requant(), outZeroPoint: 300 }, false), 'RangeError', /outZeroPoint/);
    expectInvalidArg(() => native.s8gemmRequantize({ ...requant(), outMin: 200, outMax: 100 }, false), 'RangeError', /outMax/);
  });

  it('refuses short buffers, small strides and wrong element types', () => {
    expectInvalidArg(() => native.s8gemm({ ...base(), a: new Uint8Array(9) }, false), 'RangeError', /for a /);
    expectInvalidArg(() => native.s8gemm({ ...base(), b: new Int8Array(14) }, false), 'RangeError', /for b /);
    expectInvalidArg(() => native.s8gemm({ ...base(), c: new Int32Array(5) }, false), 'RangeError', /for c /);
    expectInvalidArg(() => native.s8gemm({ ...base(), bias: new Int32Array(2) }, false), 'RangeError', /bias/);
    expectInvalidArg(() => native.s8gemm({ ...base(), lda: 4 }, false), 'RangeError', /lda/);
    expectInvalidArg(() => native.s8gemm({ ...base(), ldc: 2 }, false), 'RangeError', /ldc/);
    expectInvalidArg(() => native.s8gemm({ ...base(), transB: true }, false), 'RangeError', /ldb/);
    expectInvalidArg(() => native.s8gemm({ ...base(), a: new Int8Array(10) as unknown as Uint8Array }, false), 'TypeError', /Uint8Array/);
    expectInvalidArg(() => native.s8gemm({ ...base(), b: new Uint8Array(15) as unknown as Int8Array }, false), 'TypeError', /for b /);
    expectInvalidArg(() => native.s8gemm({ ...base(), m: 2 ** 31 }, false), 'RangeError', /for m /);
    expectInvalidArg(() => native.s8gemm({ ...base(), m: 3e5, n: 3e5, lda: 2 ** 31 - 1, a: new Uint8Array(1) }, false), 'RangeError');
  });

  it('refuses non-finite scales and biases', () => {
    expectInvalidArg(() => native.s8gemmRequantize({ ...requant(), scale: Float32Array.from([0.1, Number.NaN, 0.1]) }, false), 'RangeError', /scale\[1\]/);
    expectInvalidArg(() => native.s8gemmRequantize({ ...requant(), scale: new Float32Array(2) }, false), 'RangeError', /scale/);
    const deq = { ...base(), c: new Float32Array(6), scale: new Float32Array(3).fill(1) };
    expectInvalidArg(() => native.s8gemmDequantize({ ...deq, scale: Float32Array.from([1, 1, Infinity]) }, false), 'RangeError', /scale\[2\]/);
    expectInvalidArg(() => native.s8gemmDequantize({ ...deq, outBias: Float32Array.from([0, Number.NaN, 0]) }, false), 'RangeError', /outBias\[1\]/);
  });

  it('refuses packed weights of another shape, foreign objects and overlapping outputs', () => {
    const packed = native.packS8B({ k: 5, n: 4, b: new Int8Array(20), ldb: 4 });
    expectInvalidArg(() => native.s8gemm({ ...base(), b: packed }, false), 'RangeError', /packed weights of 5 x 4/);
    expectInvalidArg(() => native.s8gemm({ ...base(), b: {} as unknown as Int8Array }, false), 'TypeError', /for b /);
    expectInvalidArg(() => native.packedS8BInfo({} as unknown as NativePackedS8B), 'TypeError', /packS8B/);
    const shared = new ArrayBuffer(64);
    const args = { ...base(), a: new Uint8Array(shared, 0, 10), c: new Int32Array(shared, 8, 6) };
    expectInvalidArg(() => native.s8gemm(args, false), 'RangeError', /shares no memory/);
    expectInvalidArg(() => testHooks().setS8GemmKernel('fast' as 'auto'), 'RangeError', /kernel/);
  });
});
