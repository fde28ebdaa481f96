/**
 * int8 convolution (native.s8conv2d: ONNX QLinearConv on uint8 NHWC activations) against a naive
 * reference written here: exact integer sums, then the docs/int8-ir.md requantization one float32
 * rounding at a time. Bit for bit on every int8 kernel family this CPU has (each ISA level, plus
 * the AVX-VNNI kernels forced on), with 1 and 2 threads. uint8 outputs are checked after two runs
 * over buffers pre-filled with 0x00 and 0xFF (an unwritten byte matches in at most one of them),
 * float outputs start as NaN.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { native, testHooks, type Conv2dGeometry } from '../../src/binding.js';
import { Rng } from '../../src/util/rng.js';
import { expectInvalidArg, outSize, roundHalfEven } from './kernel-helpers.js';

const info = native.cpuInfo();
const initialIsa = info.isa;

interface Path { isa: string; avxvnni: boolean }
const PATHS: Path[] = [
  ...info.supportedIsas.map((isa) => ({ isa, avxvnni: false })),
  ...(info.features.avxvnni ? [{ isa: info.bestIsa, avxvnni: true }] : []),
];

function select(p: Path): void {
  native.setIsa(p.isa);
  testHooks().setS8GemmKernel(p.avxvnni ? 'avxvnni' : 'auto');
}

afterAll(() => {
  testHooks().setS8GemmKernel('auto');
  native.setIsa(initialIsa);
  native.setNumThreads(0);
});

// ---- Reference ----

interface Shape {
  batch: number; c: number; h: number; w: number; o: number;
  kh: number; kw: number; sh: number; sw: number;
  pads: [number, number, number, number]; // top, left, bottom, right
  dh: number; dw: number; groups: number;
}

interface Quant {
  xScale: number; xZp: number; wScale: Float32Array;
  yScale: number; yZp: number; yMin: number; yMax: number;
}

interface Problem {
  s: Shape; geom: Conv2dGeometry;
  x: Uint8Array; wt: Int8Array; bias: Int32Array | null; q: Quant;
}

function geometry(s: Shape): Conv2dGeometry {
  return {
    batch: s.batch, inChannels: s.c, inHeight: s.h, inWidth: s.w, outChannels: s.o,
    outHeight: outSize(s.h, s.pads[0], s.pads[2], s.kh, s.sh, s.dh),
    outWidth: outSize(s.w, s.pads[1], s.pads[3], s.kw, s.sw, s.dw),
    kernelH: s.kh, kernelW: s.kw, strideH: s.sh, strideW: s.sw,
    padTop: s.pads[0], padLeft: s.pads[1], padBottom: s.pads[2], padRight: s.pads[3],
    dilationH: s.dh, dilationW: s.dw, groups: s.groups,
  } as Conv2dGeometry;
}

/** acc[b][oh][ow][o] = sum (x - xZp) * w + bias, exact (int32 range for these sizes). */
function referenceSums(p: Problem): Int32Array {
  const { s, geom: g } = p;
  const cg = s.c / s.groups, og = s.o / s.groups;
  const out = new Int32Array(s.batch * g.outHeight * g.outWidth * s.o);
  let idx = 0;
  for (let b = 0; b < s.batch; b++) {
    for (let oh = 0; oh < g.outHeight; oh++) {
      for (let ow = 0; ow < g.outWidth; ow++) {
        for (let o = 0; o < s.o; o++) {
          const grp = Math.floor(o / og);
          let acc = p.bias ? p.bias[o] : 0;
          for (let ci = 0; ci < cg; ci++) {
            for (let y = 0; y < s.kh; y++) {
              const ih = oh * s.sh - s.pads[0] + y * s.dh;
              if (ih < 0 || ih >= s.h) continue;
              for (let x = 0; x < s.kw; x++) {
                const iw = ow * s.sw - s.pads[1] + x * s.dw;
                if (iw < 0 || iw >= s.w) continue;
                const xv = p.x[((b * s.h + ih) * s.w + iw) * s.c + grp * cg + ci];
                acc += (xv - p.q.xZp) * p.wt[((o * cg + ci) * s.kh + y) * s.kw + x];
              }
            }
          }
          out[idx++] = acc;
        }
      }
    }
  }
  return out;
}

function wScaleOf(q: Quant, o: number): number {
  return q.wScale.length === 1 ? q.wScale[0] : q.wScale[o];
}

function referenceU8(p: Problem, acc: Int32Array): Uint8Array {
  const q = p.q;
  const mult = Array.from({ length: p.s.o }, (_, o) => Math.fround(Math.fround(q.xScale * wScaleOf(q, o)) / q.yScale));
  const out = new Uint8Array(acc.length);
  for (let i = 0; i < acc.length; i++) {
    let y = Math.fround(Math.fround(acc[i]) * mult[i % p.s.o]);
    y = Math.max(q.yMin - q.yZp, Math.min(q.yMax - q.yZp, y));
    out[i] = roundHalfEven(y) + q.yZp;
  }
  return out;
}

function referenceF32(p: Problem, acc: Int32Array): Float32Array {
  const q = p.q;
  const out = new Float32Array(acc.length);
  for (let i = 0; i < acc.length; i++) {
    out[i] = Math.fround(acc[i]) * Math.fround(q.xScale * wScaleOf(q, i % p.s.o));
  }
  return out;
}

// ---- Cases ----

type Values = 'random' | 'extreme-min' | 'extreme-max';

function build(s: Shape, rng: Rng, opts: { xZp: number; bias: boolean; perChannel: boolean; relu: boolean; values?: Values }): Problem {
  const geom = geometry(s);
  const values = opts.values ?? 'random';
  const x = new Uint8Array(s.batch * s.h * s.w * s.c);
  for (let i = 0; i < x.length; i++) x[i] = values === 'random' ? rng.int(256) : values === 'extreme-min' ? 0 : 255;
  const wt = new Int8Array(s.o * (s.c / s.groups) * s.kh * s.kw);
  for (let i = 0; i < wt.length; i++) wt[i] = values === 'random' ? rng.int(256) - 128 : values === 'extreme-min' ? -128 : 127;
  const bias = opts.bias ? Int32Array.from({ length: s.o }, () => rng.int(20001) - 10000) : null;
  const k = (s.c / s.groups) * s.kh * s.kw;
  const wScale = Float32Array.from({ length: opts.perChannel ? s.o : 1 }, () => rng.uniform(0.002, 0.02));
  const xScale = Math.fround(rng.uniform(0.005, 0.05));
  // A y scale that puts typical sums over a good part of [0, 255] (and saturates some).
  const yScale = Math.fround(xScale * wScale[0] * 40 * Math.sqrt(k) * rng.uniform(0.3, 1.5));
  const yZp = rng.int(256);
  const q: Quant = {
    xScale, xZp: opts.xZp, wScale, yScale, yZp,
    yMin: opts.relu ? yZp : 0, yMax: opts.relu ? 255 : 255 - rng.int(3),
  };
  return { s, geom, x, wt, bias, q };
}

function args(p: Problem, output: Uint8Array | Float32Array) {
  const base = { ...p.geom, input: p.x, weight: p.wt, bias: p.bias, wScale: p.q.wScale, xScale: p.q.xScale, xZeroPoint: p.q.xZp, output };
  if (output instanceof Float32Array) return base;
  return { ...base, yScale: p.q.yScale, yZeroPoint: p.q.yZp, yMin: p.q.yMin, yMax: p.q.yMax };
}

function firstMismatch(a: ArrayLike<number>, b: ArrayLike<number>): number {
  for (let i = 0; i < b.length; i++) if (!(a[i] === b[i])) return i;
  return -1;
}

function check(p: Problem, label: string, threadCounts: number[] = [1]): void {
  const acc = referenceSums(p);
  const wantU8 = referenceU8(p, acc);
  const wantF32 = referenceF32(p, acc);
  // The reference must not be trivially constant (a test that cannot fail).
  for (const path of PATHS) {
    select(path);
    for (const threads of threadCounts) {
      native.setNumThreads(threads);
      const where = `${label} on ${path.isa}${path.avxvnni ? '+avxvnni' : ''}, ${threads} thread(s)`;
      for (const fill of [0x00, 0xff]) {
        const out = new Uint8Array(wantU8.length).fill(fill);
        native.s8conv2d(args(p, out), false);
        const bad = firstMismatch(out, wantU8);
        if (bad >= 0) expect.fail(`${where} (fill ${fill}): u8 element ${bad} is ${out[bad]}, expected ${wantU8[bad]}`);
      }
      const outF = new Float32Array(wantF32.length).fill(Number.NaN);
      native.s8conv2d(args(p, outF), false);
      const bad = firstMismatch(outF, wantF32);
      if (bad >= 0) expect.fail(`${where}: f32 element ${bad} is ${outF[bad]}, expected ${wantF32[bad]}`);
    }
  }
  native.setNumThreads(0);
}

function shape(partial: Partial<Shape> & Pick<Shape, 'c' | 'h' | 'w' | 'o' | 'kh' | 'kw'>): Shape {
  return { batch: 1, sh: 1, sw: 1, pads: [0, 0, 0, 0], dh: 1, dw: 1, groups: 1, ...partial };
}

describe('s8conv2d against the exact reference, every kernel family', () => {
  it('SeedCNN shapes: conv1 (Cin = 1, K = 9) and conv2 (13x13x32 -> 11x11x64), ReLU, per-channel', () => {
    const rng = new Rng(101);
    check(build(shape({ batch: 2, c: 1, h: 28, w: 28, o: 32, kh: 3, kw: 3 }), rng, { xZp: 0, bias: true, perChannel: true, relu: true }), 'conv1');
    check(build(shape({ batch: 1, c: 32, h: 13, w: 13, o: 64, kh: 3, kw: 3 }), rng, { xZp: 37, bias: true, perChannel: true, relu: true }), 'conv2');
  });

  it('random shapes: odd/prime sizes, strides 1-3, asymmetric pads, dilation, K not a multiple of 4', () => {
    const rng = new Rng(202);
    for (let t = 0; t < 14; t++) {
      const kh = 1 + rng.int(4), kw = 1 + rng.int(4);
      const dh = 1 + rng.int(2), dw = 1 + rng.int(3);
      const pads: [number, number, number, number] = [rng.int(3), rng.int(3), rng.int(3), rng.int(2)];
      const h = Math.max(dh * (kh - 1) + 1 - pads[0] - pads[2], 1) + rng.int(7);
      const w = Math.max(dw * (kw - 1) + 1 - pads[1] - pads[3], 1) + rng.int(7);
      const s = shape({
        batch: 1 + rng.int(3), c: [1, 2, 3, 5, 7, 13, 17][rng.int(7)], h, w, o: [1, 3, 8, 17, 31, 37][rng.int(6)],
        kh, kw, sh: 1 + rng.int(3), sw: 1 + rng.int(3), pads, dh, dw,
      });
      const p = build(s, rng, { xZp: rng.int(256), bias: rng.int(2) === 0, perChannel: rng.int(2) === 0, relu: rng.int(2) === 0 });
      check(p, `random case ${t} ${JSON.stringify(s)}`);
    }
  });

  it('groups, depthwise and 1x1 (the im2col-free path), with and without padding', () => {
    const rng = new Rng(303);
    const cases: Shape[] = [
      shape({ batch: 2, c: 6, h: 7, w: 5, o: 9, kh: 3, kw: 2, groups: 3, pads: [1, 0, 2, 1] }),
      shape({ batch: 1, c: 8, h: 9, w: 9, o: 8, kh: 3, kw: 3, groups: 8, pads: [1, 1, 1, 1] }),          // depthwise
      shape({ batch: 3, c: 5, h: 6, w: 7, o: 10, kh: 3, kw: 3, groups: 5, sh: 2, sw: 2, pads: [0, 1, 1, 0] }), // multiplier 2
      shape({ batch: 2, c: 19, h: 5, w: 3, o: 23, kh: 1, kw: 1 }),                                          // direct
      shape({ batch: 1, c: 4, h: 5, w: 5, o: 6, kh: 1, kw: 1, pads: [1, 0, 0, 1] }),                        // 1x1 padded
      shape({ batch: 1, c: 4, h: 9, w: 8, o: 6, kh: 1, kw: 1, sh: 2, sw: 3 }),                              // 1x1 strided
      shape({ batch: 2, c: 6, h: 4, w: 4, o: 4, kh: 1, kw: 1, groups: 2 }),                                 // 1x1 grouped
      shape({ batch: 2, c: 37, h: 8, w: 7, o: 37, kh: 3, kw: 2, groups: 37, sh: 2, sw: 1, pads: [1, 0, 2, 1], dh: 2 }), // depthwise, odd
      shape({ batch: 1, c: 3, h: 5, w: 5, o: 3, kh: 5, kw: 5, groups: 3, pads: [2, 2, 2, 2] }),             // depthwise 5x5
    ];
    cases.forEach((s, i) => check(build(s, rng, { xZp: rng.int(256), bias: true, perChannel: true, relu: i % 2 === 0 }), `case ${i} ${JSON.stringify(s)}`));
  });

  it('every x zero point (sampled 0..255, both ends included) and extreme values that saturate', () => {
    const rng = new Rng(404);
    const s = shape({ batch: 1, c: 3, h: 5, w: 6, o: 5, kh: 3, kw: 2, pads: [1, 1, 0, 1] });
    for (const zp of [0, 1, 127, 128, 200, 254, 255]) {
      check(build(s, rng, { xZp: zp, bias: true, perChannel: true, relu: false }), `x zero point ${zp}`);
    }
    const deep = shape({ batch: 1, c: 29, h: 6, w: 6, o: 7, kh: 3, kw: 3, pads: [1, 1, 1, 1] });
    for (const values of ['extreme-min', 'extreme-max'] as const) {
      for (const zp of [0, 255]) {
        check(build(deep, rng, { xZp: zp, bias: false, perChannel: false, relu: false, values }), `${values}, x zero point ${zp}`);
      }
    }
  });

  it('work split over threads (row ranges; GEMM column split): same bytes with 1 and 2 threads', () => {
    const rng = new Rng(505);
    const p = build(shape({ batch: 8, c: 32, h: 13, w: 13, o: 64, kh: 3, kw: 3 }), rng, { xZp: 101, bias: true, perChannel: true, relu: true });
    check(p, 'batch 8 conv2', [1, 2]);
    // Few rows, many columns: one task whose GEMMs split columns over the threads.
    const wide = build(shape({ batch: 1, c: 128, h: 6, w: 6, o: 512, kh: 3, kw: 3 }), rng, { xZp: 17, bias: true, perChannel: true, relu: false });
    check(wide, '4x4 output, 512 channels, K = 1152', [1, 2]);
    // The direct depthwise kernel split over threads by output rows.
    const dw = build(shape({ batch: 8, c: 128, h: 32, w: 32, o: 128, kh: 3, kw: 3, groups: 128, pads: [1, 1, 1, 1] }), rng, { xZp: 200, bias: true, perChannel: true, relu: true });
    check(dw, 'depthwise 128 channels, batch 8', [1, 2]);
  });

  it('async calls resolve with the same bytes', async () => {
    const rng = new Rng(606);
    const p = build(shape({ batch: 4, c: 16, h: 12, w: 12, o: 24, kh: 3, kw: 3, pads: [1, 1, 1, 1] }), rng, { xZp: 9, bias: true, perChannel: true, relu: false });
    const want = referenceU8(p, referenceSums(p));
    const out = new Uint8Array(want.length).fill(0xaa);
    await native.s8conv2d(args(p, out), true);
    expect(firstMismatch(out, want)).toBe(-1);
  });
});

describe('s8conv2d argument checks', () => {
  const rng = new Rng(707);
  const p = build(shape({ batch: 1, c: 2, h: 4, w: 4, o: 3, kh: 3, kw: 3 }), rng, { xZp: 3, bias: true, perChannel: true, relu: false });
  const n = p.s.batch * p.geom.outHeight * p.geom.outWidth * p.s.o;

  it('refuses wrong lengths, scales, zero points and overlapping outputs', () => {
    expectInvalidArg(() => native.s8conv2d({ ...args(p, new Uint8Array(n)), input: new Uint8Array(p.x.length - 1) }, false), 'RangeError', /input/);
    expectInvalidArg(() => native.s8conv2d({ ...args(p, new Uint8Array(n)), weight: new Int8Array(p.wt.length + 1) }, false), 'RangeError', /weight/);
    expectInvalidArg(() => native.s8conv2d(args(p, new Uint8Array(n + 1)), false), 'RangeError', /output/);
    expectInvalidArg(() => native.s8conv2d({ ...args(p, new Uint8Array(n)), bias: new Int32Array(2) }, false), 'RangeError', /bias/);
    expectInvalidArg(() => native.s8conv2d({ ...args(p, new Uint8Array(n)), wScale: new Float32Array(2).fill(0.1) }, false), 'RangeError', /wScale/);
    expectInvalidArg(() => native.s8conv2d({ ...args(p, new Uint8Array(n)), wScale: Float32Array.of(0.1, Number.NaN, 0.1) }, false), 'RangeError', /wScale/);
    expectInvalidArg(() => native.s8conv2d({ ...args(p, new Uint8Array(n)), xScale: 0 }, false), 'RangeError', /xScale/);
    expectInvalidArg(() => native.s8conv2d({ ...args(p, new Uint8Array(n)), xZeroPoint: 256 }, false), 'RangeError', /xZeroPoint/);
    expectInvalidArg(() => native.s8conv2d({ ...args(p, new Uint8Array(n)), yScale: undefined }, false), 'TypeError', /yScale/);
    expectInvalidArg(() => native.s8conv2d({ ...args(p, new Uint8Array(n)), yMin: 200, yMax: 100 }, false), 'RangeError', /yMax/);
    expectInvalidArg(() => native.s8conv2d({ ...args(p, new Uint8Array(n)), yScale: 1e-45 }, false), 'RangeError', /multiplier/);
    expectInvalidArg(() => native.s8conv2d({ ...args(p, new Uint8Array(n)), outHeight: 3 }, false), 'RangeError', /outHeight/);
    const shared = new Uint8Array(Math.max(n, p.x.length));
    expectInvalidArg(() => native.s8conv2d({ ...args(p, shared.subarray(0, n)), input: shared.subarray(0, p.x.length) }, false), 'RangeError');
  });
});
