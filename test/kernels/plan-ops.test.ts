/**
 * Every native plan op against a float64 reference (plan-reference.ts) on random shapes with 1,
 * odd and prime sizes, on every ISA this CPU has; outputs start as NaN so an unwritten element
 * shows. Each op runs as a one-step plan whose input and output are the caller's buffers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { native } from '../../src/binding.js';
import type { PlanAttr, PlanWeight } from '../../src/runtime/plan.js';
import { cpuInfo, setIsa } from '../../src/system.js';
import { Rng } from '../../src/util/rng.js';
import * as ref from './plan-reference.js';

const ISAS = cpuInfo().supportedIsas;
const ORIGINAL_ISA = cpuInfo().isa;
const U = 2 ** -23;

function random(rng: Rng, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform(lo, hi);
  return a;
}

function full(shape: number[], data: Float32Array): ref.Arr {
  return ref.arr(shape, data);
}

interface StepCase {
  op: string;
  /** Per-image shapes of the value inputs. */
  inShapes: number[][];
  inputs: Float32Array[];
  outShape: number[];
  batch: number;
  attrs?: Record<string, PlanAttr>;
  weights?: Record<string, PlanWeight>;
}

/** Runs a one-step plan; the output starts as NaN. `labels` receives the plan's step labels. */
function runStep(c: StepCase, labels?: string[]): Float32Array {
  const values = [...c.inShapes, c.outShape];
  const out = c.inShapes.length;
  const plan = native.createPlan({
    values,
    inputs: c.inShapes.map((_, i) => i),
    outputs: [out],
    steps: [{ op: c.op, name: 'step', inputs: c.inShapes.map((_, i) => i), outputs: [out], attrs: c.attrs, weights: c.weights }],
  });
  const y = new Float32Array(c.batch * ref.size(c.outShape)).fill(Number.NaN);
  native.runPlan(plan, { inputs: c.inputs, outputs: [y], batch: c.batch }, false);
  labels?.push(...(native.planInfo(plan) as { steps: string[] }).steps);
  return y;
}

/** |got - want| <= tol(i) everywhere (an infinity wants itself); a NaN reference wants NaN. Reports the first failures. */
function expectClose(got: Float32Array, want: ArrayLike<number>, tol: (i: number) => number, label: string): void {
  expect(got.length, `${label}: length`).toBe(want.length);
  const bad: string[] = [];
  for (let i = 0; i < got.length && bad.length < 5; i++) {
    const w = want[i];
    const ok = Number.isNaN(w) ? Number.isNaN(got[i]) : got[i] === w || Math.abs(got[i] - w) <= tol(i);
    if (!ok) bad.push(`[${i}] got ${got[i]} want ${w} (tol ${tol(i)})`);
  }
  expect(bad, label).toEqual([]);
}

const rel = (want: ArrayLike<number>, r: number, a = 1e-7) => (i: number) => r * Math.abs(want[i]) + a;

/** A binary step's operands: full shapes (batch first for values); a constant becomes weight A or B. */
function binaryOperands(c: { a: number[]; b: number[]; aConst?: boolean; bConst?: boolean }, a: Float32Array, b: Float32Array): Pick<StepCase, 'inShapes' | 'inputs' | 'weights'> {
  const inShapes: number[][] = [];
  const inputs: Float32Array[] = [];
  const weights: Record<string, PlanWeight> = {};
  if (c.aConst) weights.A = { data: a, shape: c.a };
  else { inShapes.push(c.a.slice(1)); inputs.push(a); }
  if (c.bConst) weights.B = { data: b, shape: c.b };
  else { inShapes.push(c.b.slice(1)); inputs.push(b); }
  return { inShapes, inputs, weights };
}

function activate(kind: string, v: number, attrs: Record<string, number>): number {
  if (kind === 'Relu') return Math.max(0, v);
  if (kind === 'Relu6') return Math.min(6, Math.max(0, v));
  if (kind === 'LeakyRelu') return v < 0 ? v * (attrs.activationAlpha ?? 0.01) : v;
  if (kind === 'Clip') return Math.min(attrs.activationMax, Math.max(attrs.activationMin, v));
  return v;
}

interface ConvCase {
  n: number; c: number; h: number; w: number; o: number; k: [number, number];
  strides?: number[]; pads?: number[]; dilations?: number[]; group?: number; bias?: boolean; act?: string;
}

const CONV_CASES: ConvCase[] = [
  { n: 1, c: 1, h: 1, w: 1, o: 1, k: [1, 1] },
  { n: 2, c: 3, h: 7, w: 5, o: 4, k: [3, 3], pads: [1, 0, 2, 1], strides: [2, 1], act: 'Relu' },
  { n: 3, c: 6, h: 9, w: 9, o: 6, k: [3, 3], pads: [1, 1, 1, 1], group: 6, act: 'Relu6' },
  { n: 2, c: 4, h: 8, w: 11, o: 6, k: [2, 3], dilations: [2, 1], group: 2, act: 'LeakyRelu' },
  { n: 2, c: 5, h: 5, w: 3, o: 7, k: [1, 1], bias: false },
  { n: 3, c: 1, h: 28, w: 28, o: 32, k: [3, 3], act: 'Relu' },
  { n: 2, c: 3, h: 11, w: 13, o: 5, k: [5, 3], strides: [3, 2], dilations: [1, 2], pads: [2, 1, 0, 3], act: 'Clip' },
  { n: 1, c: 17, h: 6, w: 7, o: 13, k: [3, 2], strides: [1, 2], pads: [0, 1, 1, 0] },
];

describe.each(ISAS)('plan ops on %s', (isa) => {
  beforeAll(() => setIsa(isa));
  afterAll(() => setIsa(ORIGINAL_ISA));
  const rng = new Rng(1234);

  it('Conv: groups, depthwise, dilation, strides, asymmetric pads, bias and fused activations', () => {
    for (const cc of CONV_CASES) {
      const group = cc.group ?? 1;
      const p = { strides: cc.strides ?? [1, 1], pads: cc.pads ?? [0, 0, 0, 0], dilations: cc.dilations ?? [1, 1], group };
      const x = random(rng, cc.n * cc.c * cc.h * cc.w);
      const wShape = [cc.o, cc.c / group, ...cc.k];
      const w = random(rng, ref.size(wShape));
      const b = cc.bias === false ? undefined : random(rng, cc.o);
      const { out, mag } = ref.conv2d(full([cc.n, cc.c, cc.h, cc.w], x), full(wShape, w), b && full([cc.o], b), p);
      const act = cc.act ?? 'None';
      const actAttrs: Record<string, number> = act === 'LeakyRelu' ? { activationAlpha: 0.1 } : act === 'Clip' ? { activationMin: -0.3, activationMax: 0.4 } : {};
      const want = out.data.map((v) => activate(act, v, actAttrs));
      const y = runStep({
        op: 'Conv', inShapes: [[cc.c, cc.h, cc.w]], inputs: [x], outShape: out.shape.slice(1), batch: cc.n,
        attrs: { kernel: cc.k, strides: p.strides, pads: p.pads, dilations: p.dilations, group, activation: act, ...actAttrs },
        weights: b ? { W: { data: w, shape: wShape }, B: { data: b, shape: [cc.o] } } : { W: { data: w, shape: wShape } },
      });
      const depth = (cc.c / group) * cc.k[0] * cc.k[1];
      expectClose(y, want, (i) => (depth + 4) * U * 4 * mag[i] + 1e-7, `Conv ${JSON.stringify(cc)}`);
    }
  });

  it('Conv with a fused MaxPool / AveragePool, over several cache-sized chunks of the batch', () => {
    const cases = [
      // 16x38x38 conv outputs: chunks of 5 images (5, 5, 2).
      { n: 12, c: 3, h: 40, w: 40, o: 16, k: [3, 3], pool: 'MaxPool', pk: [2, 2], ps: [2, 2], pp: [0, 0, 0, 0], ceil: 0, act: 'Relu' },
      { n: 3, c: 2, h: 9, w: 8, o: 5, k: [2, 2], pool: 'MaxPool', pk: [3, 3], ps: [2, 2], pp: [1, 1, 1, 1], ceil: 1, act: 'None' },
      { n: 4, c: 4, h: 7, w: 11, o: 3, k: [3, 1], pool: 'AveragePool', pk: [2, 3], ps: [1, 2], pp: [1, 0, 0, 1], ceil: 1, act: 'LeakyRelu' },
    ];
    for (const c of cases) {
      const x = random(rng, c.n * c.c * c.h * c.w);
      const wShape = [c.o, c.c, ...c.k];
      const w = random(rng, ref.size(wShape));
      const b = random(rng, c.o);
      const conv = ref.conv2d(full([c.n, c.c, c.h, c.w], x), full(wShape, w), full([c.o], b), { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 });
      const actAttrs: Record<string, number> = c.act === 'LeakyRelu' ? { activationAlpha: 0.1 } : {};
      const activated = ref.arr(conv.out.shape, conv.out.data.map((v) => activate(c.act, v, actAttrs)));
      const max = c.pool === 'MaxPool';
      const want = ref.pool2d(activated, { kernel: c.pk, strides: c.ps, pads: c.pp, dilations: [1, 1], ceil: c.ceil === 1, max, includePad: !max });
      // The pooled value's error is at most the largest error among the window's conv outputs.
      const magMax = conv.mag.reduce((a, v) => Math.max(a, v), 0);
      const y = runStep({
        op: 'Conv', inShapes: [[c.c, c.h, c.w]], inputs: [x], outShape: want.shape.slice(1), batch: c.n,
        attrs: {
          kernel: c.k, activation: c.act, ...actAttrs, pool: c.pool, pool_kernel: c.pk, pool_strides: c.ps, pool_pads: c.pp,
          pool_ceilMode: c.ceil, ...(max ? {} : { pool_countIncludePad: 1 }),
        },
        weights: { W: { data: w, shape: wShape }, B: { data: b, shape: [c.o] } },
      });
      const depth = c.c * c.k[0] * c.k[1];
      expectClose(y, want.data, () => (depth + 4) * U * 4 * magMax + 1e-7, `Conv+${c.pool} ${JSON.stringify(c)}`);
    }
  });

  it('ConvTranspose: strides, pads, dilation, groups, output padding', () => {
    const cases = [
      { n: 1, cin: 1, h: 1, w: 1, cog: 1, k: [1, 1], s: [1, 1], p: [0, 0, 0, 0], d: [1, 1], g: 1, op: [0, 0] },
      { n: 2, cin: 3, h: 4, w: 5, cog: 2, k: [3, 3], s: [2, 2], p: [1, 1, 1, 1], d: [1, 1], g: 1, op: [1, 0] },
      { n: 1, cin: 4, h: 5, w: 3, cog: 3, k: [2, 3], s: [3, 1], p: [0, 2, 1, 0], d: [1, 2], g: 2, op: [2, 0] },
      { n: 3, cin: 6, h: 3, w: 7, cog: 1, k: [3, 1], s: [1, 2], p: [1, 0, 0, 0], d: [2, 1], g: 6, op: [0, 1] },
    ];
    for (const c of cases) {
      const x = random(rng, c.n * c.cin * c.h * c.w);
      const wShape = [c.cin, c.cog, ...c.k];
      const w = random(rng, ref.size(wShape));
      const cout = c.cog * c.g;
      const b = random(rng, cout);
      const { out, mag } = ref.convTranspose2d(full([c.n, c.cin, c.h, c.w], x), full(wShape, w), full([cout], b), {
        strides: c.s, pads: c.p, dilations: c.d, group: c.g, outputPadding: c.op,
      });
      const y = runStep({
        op: 'ConvTranspose', inShapes: [[c.cin, c.h, c.w]], inputs: [x], outShape: out.shape.slice(1), batch: c.n,
        attrs: { kernel: c.k, strides: c.s, pads: c.p, dilations: c.d, group: c.g, outputPadding: c.op },
        weights: { W: { data: w, shape: wShape }, B: { data: b, shape: [cout] } },
      });
      expectClose(y, out.data, (i) => 64 * U * mag[i] + 1e-7, `ConvTranspose ${JSON.stringify(c)}`);
    }
  });

  it('Conv with winograd: 1 (F(2x2, 3x3) and F(4x4, 3x3) on AVX-512): odd channel counts, pads, partial tiles, several bands, fused 2x2/2 max pool', () => {
    const cases = [
      { n: 2, c: 8, h: 5, w: 5, o: 16, pads: [0, 0, 0, 0], bias: true, act: 'None' },
      { n: 1, c: 11, h: 7, w: 9, o: 17, pads: [1, 1, 1, 1], bias: true, act: 'Relu' },
      { n: 2, c: 13, h: 12, w: 10, o: 70, pads: [0, 2, 1, 0], bias: false, act: 'Relu' },
      { n: 1, c: 37, h: 3, w: 3, o: 19, pads: [0, 0, 0, 0], bias: true, act: 'None' },
      // 32 x 34 tiles, 3 tile rows per band: 12 bands, the last one partial.
      { n: 1, c: 8, h: 66, w: 70, o: 16, pads: [1, 1, 1, 1], bias: true, act: 'Relu' },
      // SeedCNN conv2 and odd conv outputs under the pool (the last row and column unread).
      { n: 3, c: 32, h: 13, w: 13, o: 64, pads: [0, 0, 0, 0], bias: true, act: 'Relu', pool: true },
      { n: 2, c: 16, h: 13, w: 11, o: 24, pads: [0, 0, 0, 0], bias: true, act: 'None', pool: true },
      { n: 1, c: 9, h: 66, w: 70, o: 31, pads: [1, 0, 0, 1], bias: false, act: 'Relu', pool: true },
      // 96 x 96 channel pairs: past the old 8192 bound, inside the 65536 one.
      { n: 1, c: 96, h: 6, w: 6, o: 96, pads: [1, 1, 1, 1], bias: true, act: 'Relu' },
      // Past 256 x 256 channel pairs (257 x 256): Winograd when a tile is asked for (by cost only
      // from a batch of enough tiles: the test below).
      { n: 1, c: 257, h: 4, w: 4, o: 256, pads: [1, 1, 1, 1], bias: true, act: 'Relu' },
      // Not Winograd: too many channel pairs (513 x 512), stride 2, dilation 2 (the label says so; results as ever).
      { n: 1, c: 513, h: 3, w: 3, o: 512, pads: [1, 1, 1, 1], bias: true, act: 'Relu', expect: false },
      { n: 1, c: 8, h: 9, w: 9, o: 16, pads: [0, 0, 0, 0], bias: true, act: 'None', strides: [2, 2], expect: false },
      { n: 1, c: 8, h: 9, w: 9, o: 16, pads: [0, 0, 0, 0], bias: true, act: 'None', dilations: [2, 2], expect: false },
    ];
    for (const [tile, c] of [2, 4].flatMap((t) => cases.map((c) => [t, c] as const))) {
      const p = { strides: c.strides ?? [1, 1], pads: c.pads, dilations: c.dilations ?? [1, 1], group: 1 };
      const x = random(rng, c.n * c.c * c.h * c.w);
      // One NaN input pixel: every output it reaches must be NaN, and only those. Under F(4x4) the
      // image holding it runs F(2x2) (see winograd.h), so single-image cases go without it there.
      if (tile === 2 || c.n > 1) x[3] = Number.NaN;
      const wShape = [c.o, c.c, 3, 3];
      const w = random(rng, ref.size(wShape));
      const b = c.bias ? random(rng, c.o) : undefined;
      const conv = ref.conv2d(full([c.n, c.c, c.h, c.w], x), full(wShape, w), b && full([c.o], b), p);
      const activated = ref.arr(conv.out.shape, conv.out.data.map((v) => activate(c.act, v, {})));
      const want = c.pool
        ? ref.pool2d(activated, { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], ceil: false, max: true, includePad: false })
        : activated;
      const magMax = conv.mag.reduce((a, v) => (Number.isNaN(v) ? a : Math.max(a, v)), 0);
      const labels: string[] = [];
      const y = runStep(
        {
          op: 'Conv', inShapes: [[c.c, c.h, c.w]], inputs: [x], outShape: want.shape.slice(1), batch: c.n,
          attrs: {
            kernel: [3, 3], strides: p.strides, pads: p.pads, dilations: p.dilations, group: 1, activation: c.act, winograd: 1, winograd_tile: tile,
            ...(c.pool ? { pool: 'MaxPool', pool_kernel: [2, 2], pool_strides: [2, 2], pool_pads: [0, 0, 0, 0] } : {}),
          },
          weights: b ? { W: { data: w, shape: wShape }, B: { data: b, shape: [c.o] } } : { W: { data: w, shape: wShape } },
        },
        labels,
      );
      expect(labels[0]!.includes(`winograd F(${tile}x${tile}, 3x3)`), `tile ${tile} ${JSON.stringify(c)}: ${labels[0]}`).toBe(c.expect ?? true);
      // Winograd rounds differently from the direct sum (the transforms add and subtract), but well
      // inside this: a missing or wrong term is ~1e4 times larger.
      expectClose(y, want.data, (i) => 64 * U * (c.pool ? magMax : conv.mag[i]) + 1e-6, `Conv winograd F(${tile}x${tile}) ${JSON.stringify(c)}`);
    }
  });

  it('Conv with winograd: transformed weights past the L2 (whole-image bands, groups of images, tile rows split over threads)', (ctx) => {
    // Channels so that F(2x2)'s weights (16 floats per channel pair) pass this CPU's L2: 160 x 160
    // (1.6 MiB) on a 1 MiB L2, 192 x 192 (2.3 MiB) on a 2 MiB one. Batches of several images form
    // groups of up to 96 tiles (five 9x7 images of 20 tiles each, three 12x12 of 36), with 1 and 2
    // threads so the groups split; a single image with 2 threads splits its tile rows. A NaN in the
    // first image must stay there: the group transforms every image into one buffer.
    const l2 = cpuInfo().l2CacheBytes;
    let cin = 160;
    while (16 * 4 * cin * cin <= l2) cin += 16;
    // Winograd takes up to 65,536 channel pairs (256 x 256, 4 MiB) at batch 1: an L2 that holds
    // them leaves nothing past it to test.
    if (cin * (cin + 10) > 65536) ctx.skip();
    const cinPastL2 = cin;
    const cases: { n: number; h: number; w: number; ci?: number; o: number; tile: number; pads: number[]; act: string; bias?: boolean; pool?: boolean; from?: number }[] = [
      { n: 5, h: 9, w: 7, o: cin, tile: 2, pads: [1, 1, 1, 1], act: 'Relu' },
      { n: 3, h: 12, w: 12, o: cin, tile: 0, pads: [1, 1, 1, 1], act: 'None', bias: true },
      { n: 1, h: 12, w: 12, o: cin, tile: 0, pads: [1, 1, 1, 1], act: 'Relu', bias: true },
      { n: 4, h: 12, w: 10, o: cin + 10, tile: 2, pads: [1, 1, 1, 1], act: 'Relu', bias: true, pool: true },
      // F(4x4)'s weights (36 floats per pair, 2.25x F(2x2)'s) stream too: whole-image bands, never groups.
      { n: 3, h: 10, w: 9, o: cin, tile: 4, pads: [0, 1, 1, 0], act: 'None', bias: true },
      // By cost, a 7x7 output (16 tiles) runs im2col + GEMM at batch 1 (too little work per read of
      // the weights) and Winograd from batch 2 (32 tiles); so do channels past 256 x 256 (here
      // 272 x 272, 4.5 MiB, 9 tiles an image: from batch 4).
      { n: 1, h: 7, w: 7, o: cin, tile: 0, pads: [1, 1, 1, 1], act: 'Relu', from: 2 },
      { n: 2, h: 7, w: 7, o: cin, tile: 0, pads: [1, 1, 1, 1], act: 'Relu', from: 2 },
      { n: 4, h: 5, w: 5, ci: 272, o: 272, tile: 0, pads: [1, 1, 1, 1], act: 'None', bias: true, from: 4 },
    ];
    const threadsBefore = native.cpuInfo().threads;
    try {
      for (const c of cases) {
        const cin = c.ci ?? cinPastL2;
        const x = random(rng, c.n * cin * c.h * c.w);
        if (c.tile !== 4) x[3] = Number.NaN;
        const wShape = [c.o, cin, 3, 3];
        const w = random(rng, ref.size(wShape));
        const b = c.bias ? random(rng, c.o) : undefined;
        const p = { strides: [1, 1], pads: c.pads, dilations: [1, 1], group: 1 };
        const conv = ref.conv2d(full([c.n, cin, c.h, c.w], x), full(wShape, w), b && full([c.o], b), p);
        const activated = ref.arr(conv.out.shape, conv.out.data.map((v) => activate(c.act, v, {})));
        const want = c.pool
          ? ref.pool2d(activated, { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], ceil: false, max: true, includePad: false })
          : activated;
        const magMax = conv.mag.reduce((a, v) => (Number.isNaN(v) ? a : Math.max(a, v)), 0);
        for (const threads of [1, 2]) {
          native.setNumThreads(threads);
          const labels: string[] = [];
          const y = runStep(
            {
              op: 'Conv', inShapes: [[cin, c.h, c.w]], inputs: [x], outShape: want.shape.slice(1), batch: c.n,
              attrs: {
                kernel: [3, 3], strides: p.strides, pads: p.pads, dilations: p.dilations, group: 1, activation: c.act, winograd: 1, winograd_tile: c.tile,
                ...(c.pool ? { pool: 'MaxPool', pool_kernel: [2, 2], pool_strides: [2, 2], pool_pads: [0, 0, 0, 0] } : {}),
              },
              weights: b ? { W: { data: w, shape: wShape }, B: { data: b, shape: [c.o] } } : { W: { data: w, shape: wShape } },
            },
            labels,
          );
          const label = `Conv winograd ${JSON.stringify(c)}, ${threads} threads`;
          expect(labels[0]!.includes('winograd F('), `${label}: ${labels[0]}`).toBe(true);
          expect(labels[0]!.includes(' from batch '), `${label}: ${labels[0]}`).toBe(c.from !== undefined);
          if (c.from !== undefined) expect(labels[0]!, label).toContain(`on avx512 from batch ${c.from})`);
          expectClose(y, want.data, (i) => 64 * U * (c.pool ? magMax : conv.mag[i]) + 1e-6, label);
        }
      }
    } finally {
      native.setNumThreads(threadsBefore);
    }
  });

  it('Gemm: transB, alpha, beta, bias shapes, fused activation, batch as rows', () => {
    const cases = [
      { batch: 1, k: 1, n: 1, transB: 0, alpha: 1, beta: 1, c: [1] },
      { batch: 5, k: 7, n: 3, transB: 1, alpha: 0.5, beta: 2, c: [3], act: 'Relu' },
      { batch: 3, k: 31, n: 17, transB: 0, alpha: 1, beta: 1, c: [1, 17] },
      { batch: 64, k: 1600, n: 128, transB: 1, alpha: 1, beta: 1, c: [128], act: 'Relu' },
      // Batch 1 with over 256 KiB of weights: the GEMV splits its column panels over the threads.
      { batch: 1, k: 1600, n: 128, transB: 1, alpha: 1, beta: 1, c: [128], act: 'Relu' },
      { batch: 1, k: 1031, n: 67, transB: 0, alpha: 1, beta: 1, c: [67] },
      { batch: 2, k: 13, n: 11, transB: 1, alpha: -1.5, beta: 0.25, c: [] as number[] },
      { batch: 4, k: 9, n: 6, transB: 0, alpha: 1, beta: 1, c: undefined },
    ];
    for (const g of cases) {
      const x = random(rng, g.batch * g.k);
      const bShape = g.transB ? [g.n, g.k] : [g.k, g.n];
      const b = random(rng, g.k * g.n);
      const c = g.c ? random(rng, ref.size(g.c)) : undefined;
      const want = new Float64Array(g.batch * g.n);
      const mag = new Float64Array(want.length);
      for (let r = 0; r < g.batch; r++)
        for (let j = 0; j < g.n; j++) {
          let s = 0, m = 0;
          for (let p = 0; p < g.k; p++) {
            const t = x[r * g.k + p] * (g.transB ? b[j * g.k + p] : b[p * g.n + j]);
            s += t;
            m += Math.abs(t);
          }
          const bias = c ? g.beta * c[c.length === 1 ? 0 : j] : 0;
          want[r * g.n + j] = activate(g.act ?? 'None', g.alpha * s + bias, {});
          mag[r * g.n + j] = Math.abs(g.alpha) * m + Math.abs(bias);
        }
      const weights: Record<string, PlanWeight> = { B: { data: b, shape: bShape } };
      if (c) weights.C = { data: c, shape: g.c! };
      const y = runStep({
        op: 'Gemm', inShapes: [[g.k]], inputs: [x], outShape: [g.n], batch: g.batch,
        attrs: { transB: g.transB, alpha: g.alpha, beta: g.beta, activation: g.act ?? 'None' }, weights,
      });
      expectClose(y, want, (i) => (g.k + 4) * U * 4 * mag[i] + 1e-7, `Gemm ${JSON.stringify(g)}`);
    }
  });

  it('MatMul: 2-D rows, stacked rows, batched with broadcasting, constant A or B, 1-D operands', () => {
    // Each case: full shapes with the batch first for values; `aConst`/`bConst` mark constants.
    const batch = 3;
    const cases: { a: number[]; b: number[]; aConst?: boolean; bConst?: boolean }[] = [
      { a: [batch, 7], b: [7, 5], bConst: true },
      { a: [batch, 1], b: [1, 1], bConst: true },
      { a: [batch, 3, 4, 6], b: [6, 5], bConst: true },
      { a: [batch, 2, 4, 5], b: [2, 5, 3], bConst: true },
      { a: [4, 6], b: [batch, 6, 5], aConst: true },
      { a: [batch, 4, 3, 7], b: [batch, 1, 7, 2] },
      { a: [batch, 1, 5, 3], b: [batch, 2, 3, 4] },
      { a: [batch, 9], b: [9], bConst: true },
      { a: [6], b: [batch, 2, 6, 3], aConst: true },
      { a: [batch, 2, 3, 4], b: [1, 2, 4, 5], bConst: true },
    ];
    for (const c of cases) {
      const a = random(rng, ref.size(c.a));
      const b = random(rng, ref.size(c.b));
      // The reference promotes 1-D operands the numpy way.
      const aFull = c.a.length === 1 ? [1, ...c.a] : c.a;
      const bFull = c.b.length === 1 ? [...c.b, 1] : c.b;
      let { out, mag } = ref.matmul(full(aFull, a), full(bFull, b));
      let shape = out.shape;
      if (c.a.length === 1) shape = [...shape.slice(0, -2), shape[shape.length - 1]];
      if (c.b.length === 1) shape = shape.slice(0, -1);
      void mag;
      const inShapes: number[][] = [];
      const inputs: Float32Array[] = [];
      const weights: Record<string, PlanWeight> = {};
      if (c.aConst) weights.A = { data: a, shape: c.a };
      else {
        inShapes.push(c.a.slice(1));
        inputs.push(a);
      }
      if (c.bConst) weights.B = { data: b, shape: c.b };
      else {
        inShapes.push(c.b.slice(1));
        inputs.push(b);
      }
      const y = runStep({ op: 'MatMul', inShapes, inputs, outShape: shape.slice(1), batch, weights });
      const k = aFull[aFull.length - 1];
      expectClose(y, out.data, (i) => (k + 4) * U * 4 * mag[i] + 1e-7, `MatMul ${JSON.stringify(c)}`);
      ({ out, mag } = { out, mag });
    }
  });

  it('unary activations', () => {
    const shape = [3, 5, 7];
    const batch = 2;
    const x = random(rng, batch * ref.size(shape), -8, 8);
    const cases: { op: string; attrs?: Record<string, number>; f: (v: number) => number; r: number }[] = [
      { op: 'Relu', f: (v) => Math.max(0, v), r: 0 },
      { op: 'LeakyRelu', attrs: { alpha: 0.2 }, f: (v) => (v < 0 ? 0.2 * v : v), r: 1e-7 },
      { op: 'Clip', attrs: { min: -1.5, max: 2.25 }, f: (v) => Math.min(2.25, Math.max(-1.5, v)), r: 0 },
      { op: 'Sigmoid', f: (v) => 1 / (1 + Math.exp(-v)), r: 1e-6 },
      { op: 'HardSigmoid', attrs: { alpha: 0.3, beta: 0.4 }, f: (v) => Math.max(0, Math.min(1, 0.3 * v + 0.4)), r: 1e-6 },
      { op: 'HardSwish', f: (v) => v * Math.max(0, Math.min(1, v / 6 + 0.5)), r: 1e-6 },
      { op: 'Tanh', f: Math.tanh, r: 1e-6 },
      { op: 'Copy', f: (v) => v, r: 0 },
    ];
    for (const c of cases) {
      const y = runStep({ op: c.op, inShapes: [shape], inputs: [x], outShape: shape, batch, attrs: c.attrs });
      const want = Array.from(x, c.f);
      expectClose(y, want, rel(want, c.r, c.r ? 1e-7 : 0), c.op);
    }
  });

  it('unary math (Abs ... ThresholdedRelu, Gelu both ways) on random and odd lengths with edge values', () => {
    // erfc by its continued fraction for |v| >= 2, the Taylor series below (float64 throughout).
    const erfc = (v: number): number => {
      let kf = v;
      for (let n = 80; n >= 1; n--) kf = v + n / 2 / kf;
      return Math.exp(-v * v) / (Math.sqrt(Math.PI) * kf);
    };
    const erf = (v: number): number => {
      if (Math.abs(v) >= 2) return Math.sign(v) * (1 - erfc(Math.abs(v)));
      let term = v, sum = v;
      for (let n = 1; n < 200 && Math.abs(term) > 1e-17; n++) {
        term *= (-v * v) / n;
        sum += term / (2 * n + 1);
      }
      return (2 / Math.sqrt(Math.PI)) * sum;
    };
    const softplus = (v: number) => (v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v)));
    const k = Math.sqrt(2 / Math.PI);
    // Tolerance: r |want| + a + ax |x|.
    const cases: { op: string; attrs?: Record<string, PlanAttr>; f: (v: number) => number; r: number; a?: number; ax?: number }[] = [
      { op: 'Abs', f: Math.abs, r: 0 },
      { op: 'Neg', f: (v) => -v, r: 0 },
      { op: 'Sqrt', f: Math.sqrt, r: U },
      { op: 'Exp', f: Math.exp, r: 4 * U },
      { op: 'Log', f: Math.log, r: 2 * U },
      { op: 'Reciprocal', f: (v) => 1 / v, r: U },
      { op: 'Floor', f: Math.floor, r: 0 },
      { op: 'Ceil', f: Math.ceil, r: 0 },
      // Halves to even (the edges hold 0.5, -0.5 and 20.5; the values 2.5 and -3.5 below).
      { op: 'Round', f: (v) => (Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v)), r: 0 },
      { op: 'Erf', f: erf, r: 4 * U, a: 2.5e-7 },
      { op: 'Softplus', f: softplus, r: 4 * U },
      { op: 'Softsign', f: (v) => v / (1 + Math.abs(v)), r: 2 * U },
      { op: 'Elu', attrs: { alpha: 0.6 }, f: (v) => (v < 0 ? 0.6 * Math.expm1(v) : v), r: 4 * U, a: 1e-7 },
      { op: 'Selu', attrs: { alpha: 1.5, gamma: 0.8 }, f: (v) => 0.8 * (v <= 0 ? 1.5 * Math.expm1(v) : v), r: 4 * U, a: 1e-7 },
      { op: 'Celu', attrs: { alpha: 2 }, f: (v) => (v < 0 ? 2 * Math.expm1(v / 2) : v), r: 4 * U, a: 2e-7 },
      { op: 'Mish', f: (v) => v * Math.tanh(softplus(v)), r: 8 * U, a: 1e-7 },
      // 0.5 x (1 + erf(x / sqrt 2)): erf's absolute error (< 2e-7, see f32-math-vec.h) scaled by
      // 0.5 |x| (a draw at x = -3.0876 was 2.6e-7 off on AVX2 and AVX-512).
      { op: 'Gelu', f: (v) => (v < -2 * Math.SQRT2 ? 0.5 * v * erfc(-v / Math.SQRT2) : 0.5 * v * (1 + erf(v / Math.SQRT2))), r: 8 * U, a: 1e-7, ax: 1e-7 },
      { op: 'Gelu', attrs: { approximate: 'tanh' }, f: (v) => 0.5 * v * (1 + Math.tanh(k * (v + 0.044715 * v ** 3))), r: 8 * U, a: 1e-7 },
      { op: 'ThresholdedRelu', attrs: { alpha: 0.25 }, f: (v) => (v > 0.25 ? v : 0), r: 0 },
    ];
    const edges = [Number.NaN, Infinity, -Infinity, -0, 0, 90, -90, -104, 1e-30, 0.5, -0.5, 20.5, 2.5, -3.5, 8388607.5];
    for (const shape of [[3, 5, 7], [1], [17], [1031]]) {
      const batch = shape.length === 1 ? 1 : 2;
      const x = random(rng, batch * ref.size(shape), -8, 8);
      for (let i = 0; i < Math.min(x.length, edges.length); i++) x[(i * 5) % x.length] = edges[i];
      for (const c of cases) {
        const y = runStep({ op: c.op, inShapes: [shape], inputs: [x], outShape: shape, batch, attrs: c.attrs });
        const want = Array.from(x, (v) => (c.op === 'ThresholdedRelu' && Number.isNaN(v) ? 0 : Math.fround(c.f(v))));
        const tol = rel(want, c.r, c.r ? (c.a ?? 1e-7) : 0);
        const ax = c.ax ?? 0;
        expectClose(y, want, (i) => (Number.isFinite(want[i]) ? tol(i) + ax * Math.abs(x[i]!) : 0), `${c.op} ${JSON.stringify(c.attrs ?? {})} ${JSON.stringify(shape)}`);
      }
    }
  });

  it('Reduce*: trailing (global pooling) and gathered axes, keepdims', () => {
    const fns: Record<string, (v: number[]) => number> = {
      ReduceSum: (v) => v.reduce((a, b) => a + b, 0),
      ReduceMean: (v) => v.reduce((a, b) => a + b, 0) / v.length,
      ReduceMax: (v) => Math.max(...v),
      ReduceMin: (v) => Math.min(...v),
      ReduceProd: (v) => v.reduce((a, b) => a * b, 1),
      ReduceL1: (v) => v.reduce((a, b) => a + Math.abs(b), 0),
      ReduceL2: (v) => Math.sqrt(v.reduce((a, b) => a + b * b, 0)),
      ReduceSumSquare: (v) => v.reduce((a, b) => a + b * b, 0),
      ReduceLogSumExp: (v) => { const m = Math.max(...v); return m + Math.log(v.reduce((a, b) => a + Math.exp(b - m), 0)); },
      ReduceLogSum: (v) => Math.log(v.reduce((a, b) => a + b, 0)),
    };
    const cases: { shape: number[]; axes: number[]; keepdims: number }[] = [
      { shape: [5, 7, 9], axes: [2, 3], keepdims: 1 },
      { shape: [64, 7, 7], axes: [2, 3], keepdims: 0 },
      { shape: [3, 1, 37], axes: [3], keepdims: 1 },
      { shape: [6, 5, 3], axes: [1], keepdims: 1 },
      { shape: [4, 3, 5], axes: [1, 3], keepdims: 0 },
      { shape: [2, 3, 4], axes: [1, 2, 3], keepdims: 1 },
      { shape: [13], axes: [1], keepdims: 0 },
      { shape: [48, 16, 33], axes: [1], keepdims: 0 }, // gathered rows over several threads' chunks
      { shape: [40, 30, 29], axes: [2, 3], keepdims: 1 }, // contiguous rows over several chunks
    ];
    const batch = 3;
    for (const [op, f] of Object.entries(fns)) {
      for (const c of cases) {
        // (LogSum of a positive sum: a log's relative error grows as the sum nears 1.)
        const x = op === 'ReduceProd' ? random(rng, batch * ref.size(c.shape), 0.8, 1.25) : op === 'ReduceLogSum' ? random(rng, batch * ref.size(c.shape), 0.5, 2) : random(rng, batch * ref.size(c.shape), -2, 2);
        const full4 = [batch, ...c.shape];
        const st = full4.map((_, i) => full4.slice(i + 1).reduce((a, b) => a * b, 1));
        const outFull = full4.map((d, i) => (c.axes.includes(i) ? 1 : d));
        const groups = new Map<number, number[]>();
        for (let i = 0; i < x.length; i++) {
          let o = 0;
          for (let d = 0, rest = i; d < full4.length; d++) {
            const idx = Math.floor(rest / st[d]) % full4[d];
            o = o * outFull[d] + (c.axes.includes(d) ? 0 : idx);
          }
          if (!groups.has(o)) groups.set(o, []);
          groups.get(o)!.push(x[i]);
        }
        const want = Array.from({ length: ref.size(outFull) }, (_, o) => f(groups.get(o)!));
        const outShape = c.shape.flatMap((d, i) => (c.axes.includes(i + 1) ? (c.keepdims ? [1] : []) : [d]));
        const y = runStep({ op, inShapes: [c.shape], inputs: [x], outShape, batch, attrs: { axes: c.axes, keepdims: c.keepdims } });
        const count = ref.size(c.shape) / (ref.size(outShape) || 1);
        expectClose(y, want, rel(want, (count + 4) * U, 1e-6), `${op} ${JSON.stringify(c)}`);
      }
    }
  });

  it('Max / Min / Pow / PRelu with broadcasting and constant operands', () => {
    const batch = 2;
    const fns: Record<string, (a: number, b: number) => number> = {
      Max: (a, b) => Math.max(a, b), Min: (a, b) => Math.min(a, b), Pow: (a, b) => a ** b, PRelu: (a, b) => (a < 0 ? a * b : a),
    };
    const cases: { a: number[]; b: number[]; bConst?: boolean; aConst?: boolean }[] = [
      { a: [batch, 3, 4, 5], b: [batch, 3, 4, 5] },
      { a: [batch, 3, 4, 5], b: [3, 1, 1], bConst: true },
      { a: [batch, 6, 7], b: [batch, 6, 1] },
      { a: [batch, 3, 4, 5], b: [], bConst: true },
      { a: [5], b: [batch, 3, 4, 5], aConst: true },
    ];
    for (const op of Object.keys(fns)) {
      for (const c of cases) {
        if (op === 'PRelu' && c.aConst) continue;
        const a = op === 'Pow' ? random(rng, ref.size(c.a), 0.1, 3) : random(rng, ref.size(c.a));
        const b = random(rng, ref.size(c.b), -2, 2);
        const want = ref.binary(full(c.a, a), full(c.b, b), fns[op]);
        const y = runStep({ op, ...binaryOperands(c, a, b), outShape: want.shape.slice(1), batch });
        expectClose(y, want.data, rel(want.data, 4 * U, 1e-7), `${op} ${JSON.stringify(c)}`);
      }
    }
  });

  it('MaxPool / AveragePool: 1-D and 2-D, pads, strides, dilations, ceil_mode, count_include_pad', () => {
    const cases = [
      { n: 1, c: 1, h: 1, w: 1, k: [1, 1], s: [1, 1], p: [0, 0, 0, 0], d: [1, 1], ceil: false },
      { n: 2, c: 3, h: 26, w: 26, k: [2, 2], s: [2, 2], p: [0, 0, 0, 0], d: [1, 1], ceil: false },
      { n: 2, c: 2, h: 11, w: 13, k: [2, 2], s: [2, 2], p: [0, 0, 0, 0], d: [1, 1], ceil: false },
      { n: 2, c: 2, h: 11, w: 13, k: [2, 2], s: [2, 2], p: [0, 0, 0, 0], d: [1, 1], ceil: true },
      { n: 1, c: 3, h: 7, w: 9, k: [3, 3], s: [2, 2], p: [1, 1, 1, 1], d: [1, 1], ceil: true },
      { n: 3, c: 2, h: 10, w: 7, k: [3, 2], s: [3, 1], p: [2, 0, 1, 1], d: [1, 1], ceil: false },
      { n: 1, c: 4, h: 9, w: 11, k: [2, 3], s: [2, 3], p: [1, 2, 0, 1], d: [2, 2], ceil: true },
      // ceil_mode would add a window starting in the end padding: dropped.
      { n: 2, c: 2, h: 4, w: 6, k: [3, 3], s: [2, 2], p: [0, 0, 2, 2], d: [1, 1], ceil: true },
    ];
    for (const c of cases) {
      const x = random(rng, c.n * c.c * c.h * c.w);
      for (const max of [true, false]) {
        for (const includePad of max ? [false] : [false, true]) {
          const want = ref.pool2d(full([c.n, c.c, c.h, c.w], x), { kernel: c.k, strides: c.s, pads: c.p, dilations: c.d, ceil: c.ceil, max, includePad });
          const attrs: Record<string, PlanAttr> = { kernel: c.k, strides: c.s, pads: c.p, dilations: c.d, ceilMode: c.ceil ? 1 : 0 };
          if (!max) attrs.countIncludePad = includePad ? 1 : 0;
          const y = runStep({ op: max ? 'MaxPool' : 'AveragePool', inShapes: [[c.c, c.h, c.w]], inputs: [x], outShape: want.shape.slice(1), batch: c.n, attrs });
          expectClose(y, want.data, rel(want.data, 1e-6), `${max ? 'Max' : 'Avg'}Pool ${JSON.stringify(c)} includePad=${includePad}`);
        }
      }
    }
    // 1-D: [C, L] windows equal the 2-D ones with a unit height.
    const x = random(rng, 2 * 3 * 10);
    const want = ref.pool2d(full([2, 3, 1, 10], x), { kernel: [1, 3], strides: [1, 2], pads: [0, 1, 0, 1], dilations: [1, 1], ceil: true, max: false, includePad: true });
    const y = runStep({
      op: 'AveragePool', inShapes: [[3, 10]], inputs: [x], outShape: [3, want.shape[3]], batch: 2,
      attrs: { kernel: [3], strides: [2], pads: [1, 1], ceilMode: 1, countIncludePad: 1 },
    });
    expectClose(y, want.data, rel(want.data, 1e-6), 'AveragePool 1-D');
  });

  it('GlobalAveragePool / GlobalMaxPool', () => {
    for (const shape of [[3, 5, 7], [1, 1, 1], [4, 13]]) {
      const batch = 2;
      const x = random(rng, batch * ref.size(shape));
      const sp = ref.size(shape.slice(1));
      const avg = new Float64Array(batch * shape[0]);
      const mx = new Float64Array(batch * shape[0]);
      for (let p = 0; p < avg.length; p++) {
        let s = 0, m = -Infinity;
        for (let i = 0; i < sp; i++) {
          s += x[p * sp + i];
          m = Math.max(m, x[p * sp + i]);
        }
        avg[p] = s / sp;
        mx[p] = m;
      }
      const outShape = [shape[0], ...shape.slice(1).map(() => 1)];
      expectClose(runStep({ op: 'GlobalAveragePool', inShapes: [shape], inputs: [x], outShape, batch }), avg, rel(avg, 1e-6), 'GlobalAveragePool');
      expectClose(runStep({ op: 'GlobalMaxPool', inShapes: [shape], inputs: [x], outShape, batch }), mx, () => 0, 'GlobalMaxPool');
    }
  });

  it('LRN', () => {
    for (const size of [1, 3, 4, 5]) {
      const shape = [7, 3, 2];
      const x = random(rng, 2 * ref.size(shape), -2, 2);
      const want = ref.lrn(full([2, ...shape], x), size, 1e-2, 0.75, 2);
      const y = runStep({ op: 'LRN', inShapes: [shape], inputs: [x], outShape: shape, batch: 2, attrs: { size, alpha: 1e-2, beta: 0.75, bias: 2 } });
      expectClose(y, want.data, rel(want.data, 2e-6), `LRN size ${size}`);
    }
  });

  it('BatchNormalization (inference affine) on [C,H,W] and [C]', () => {
    for (const shape of [[5, 3, 4], [7]]) {
      const c = shape[0];
      const batch = 3;
      const x = random(rng, batch * ref.size(shape));
      const [scale, bias, mean] = [random(rng, c), random(rng, c), random(rng, c)];
      const variance = random(rng, c, 0.1, 2);
      const sp = ref.size(shape.slice(1));
      const want = Array.from(x, (v, i) => {
        const ch = Math.floor(i / sp) % c;
        return ((v - mean[ch]) / Math.sqrt(variance[ch] + 1e-3)) * scale[ch] + bias[ch];
      });
      const w = (d: Float32Array) => ({ data: d, shape: [c] });
      const y = runStep({
        op: 'BatchNormalization', inShapes: [shape], inputs: [x], outShape: shape, batch,
        attrs: { epsilon: 1e-3 }, weights: { scale: w(scale), B: w(bias), mean: w(mean), var: w(variance) },
      });
      expectClose(y, want, rel(want, 1e-5, 1e-6), `BatchNormalization ${shape}`);
    }
  });

  it('Add / Sub / Mul / Div with broadcasting and constant operands', () => {
    const batch = 2;
    const fns: Record<string, (a: number, b: number) => number> = { Add: (a, b) => a + b, Sub: (a, b) => a - b, Mul: (a, b) => a * b, Div: (a, b) => a / b };
    // a, b: full shapes (batch first for values); const marks a constant operand.
    const cases: { a: number[]; b: number[]; aConst?: boolean; bConst?: boolean }[] = [
      { a: [batch, 3, 4, 5], b: [batch, 3, 4, 5] },
      { a: [batch, 3, 1, 5], b: [batch, 1, 4, 1] },
      { a: [batch, 6, 7], b: [batch, 6, 1] },
      { a: [batch, 3, 4, 5], b: [3, 1, 1], bConst: true },
      { a: [batch, 3, 4, 5], b: [], bConst: true },
      { a: [5], b: [batch, 3, 4, 5], aConst: true },
      { a: [1, 3, 1, 1], b: [batch, 3, 2, 2], aConst: true },
      { a: [batch, 1], b: [batch, 1] },
      { a: [batch, 1, 1], b: [batch, 5, 3] },
    ];
    for (const op of Object.keys(fns)) {
      for (const c of cases) {
        const a = random(rng, ref.size(c.a));
        const b = op === 'Div' ? random(rng, ref.size(c.b), 0.5, 2) : random(rng, ref.size(c.b));
        const want = ref.binary(full(c.a, a), full(c.b, b), fns[op]);
        const y = runStep({ op, ...binaryOperands(c, a, b), outShape: want.shape.slice(1), batch });
        expectClose(y, want.data, rel(want.data, 2e-7, 1e-7), `${op} ${JSON.stringify(c)}`);
      }
    }
  });

  it('Sum of one, two and three inputs with broadcasting', () => {
    const batch = 3;
    for (const shapes of [[[2, 3]], [[2, 3], [2, 3]], [[4, 1, 5], [4, 3, 1], [1, 3, 5]]]) {
      const xs = shapes.map((s) => random(rng, batch * ref.size(s)));
      let want = full([batch, ...shapes[0]], xs[0]);
      for (let i = 1; i < xs.length; i++) want = ref.binary(want, full([batch, ...shapes[i]], xs[i]), (a, b) => a + b);
      const y = runStep({ op: 'Sum', inShapes: shapes, inputs: xs, outShape: want.shape.slice(1), batch });
      expectClose(y, want.data, rel(want.data, 4e-7, 1e-7), `Sum ${JSON.stringify(shapes)}`);
    }
  });

  it('Concat along every non-batch axis', () => {
    const batch = 2;
    for (const [axis, shapes] of [[1, [[2, 3, 4], [5, 3, 4], [1, 3, 4]]], [2, [[2, 1, 3], [2, 4, 3]]], [3, [[2, 3, 1], [2, 3, 7]]], [1, [[3]]]] as [number, number[][]][]) {
      const xs = shapes.map((s) => random(rng, batch * ref.size(s)));
      const want = ref.concat(xs.map((x, i) => full([batch, ...shapes[i]], x)), axis);
      const y = runStep({ op: 'Concat', inShapes: shapes, inputs: xs, outShape: want.shape.slice(1), batch, attrs: { axis } });
      expectClose(y, want.data, () => 0, `Concat axis ${axis}`);
    }
  });

  it('Concat and ConcatU8 split over threads within an image: slabs cut mid-way, the same bits as one thread', () => {
    // Channel Concats of one and of three images, ~90K elements an image: several chunks of output
    // elements, whose edges fall inside slabs and across images.
    const shapes = [[24, 33, 35], [7, 33, 35], [40, 33, 35]];
    const outShape = [71, 33, 35];
    const threadsBefore = native.cpuInfo().threads;
    try {
      for (const batch of [1, 3]) {
        const xs = shapes.map((sh) => random(rng, batch * ref.size(sh)));
        const want = ref.concat(xs.map((x, i) => full([batch, ...shapes[i]!], x)), 1);
        // uint8 (NHWC: an image's rows are its pixels, each the inputs' channels in turn): inputs
        // quantized with the output's parameters (a copy) and with others (the requantization
        // table), back to float after.
        const u8 = native.createPlan({
          values: [...shapes, ...shapes, outShape, outShape],
          valueTypes: ['float32', 'float32', 'float32', 'uint8', 'uint8', 'uint8', 'uint8', 'float32'],
          inputs: [0, 1, 2],
          outputs: [7],
          steps: [
            ...[0, 1, 2].map((i) => ({ op: 'QuantizeLinear', name: `q${i}`, inputs: [i], outputs: [3 + i], attrs: { scale: [0.02, 0.03, 0.02][i]!, zero_point: [128, 100, 128][i]!, channels: shapes[i]![0]! } })),
            { op: 'ConcatU8', name: 'cat', inputs: [3, 4, 5], outputs: [6], attrs: { axis: 1, nhwc: 1, x_scales: [0.02, 0.03, 0.02], x_zero_points: [128, 100, 128], y_scale: 0.02, y_zero_point: 128 } },
            { op: 'DequantizeLinear', name: 'dq', inputs: [6], outputs: [7], attrs: { scale: 0.02, zero_point: 128, channels: outShape[0]! } },
          ],
        });
        const runs: Float32Array[] = [];
        for (const threads of [1, 2]) {
          native.setNumThreads(threads);
          const y = runStep({ op: 'Concat', inShapes: shapes, inputs: xs, outShape, batch, attrs: { axis: 1 } });
          expectClose(y, want.data, () => 0, `Concat of ${batch} images on ${threads} threads`);
          const q = new Float32Array(batch * ref.size(outShape)).fill(Number.NaN);
          native.runPlan(u8, { inputs: xs, outputs: [q], batch }, false);
          runs.push(q);
        }
        expect(Buffer.from(runs[1]!.buffer).equals(Buffer.from(runs[0]!.buffer)), `ConcatU8 of ${batch} images`).toBe(true);
        // Each part where it belongs: within a quantization step of its input.
        expectClose(runs[1]!, want.data, () => 0.03, `ConcatU8 of ${batch} images`);
      }
    } finally {
      native.setNumThreads(threadsBefore);
    }
  });

  it('Transpose of the per-image axes', () => {
    const batch = 2;
    // Then matrix transposes (NCHW <-> NHWC) on each of their kernels: 16 x 16 blocks with whole
    // 16-float rows on the output side (bands of 16 rows and a short last band), on the input side
    // (7x7 planes of 96 channels; 1,088 rows of 3), and 4 x 4 blocks with odd edges.
    for (const [shape, perm] of [
      [[3, 4, 5], [0, 3, 1, 2]], [[3, 4, 5], [0, 2, 3, 1]], [[2, 7], [0, 2, 1]], [[1, 3, 1, 2], [0, 4, 2, 3, 1]],
      [[32, 48], [0, 2, 1]], [[7, 7, 96], [0, 3, 1, 2]], [[96, 7, 7], [0, 2, 3, 1]], [[64, 17, 3], [0, 3, 1, 2]],
      [[5, 6, 7], [0, 3, 1, 2]], [[13, 37], [0, 2, 1]], [[3, 35, 17], [0, 2, 3, 1]], [[48, 33], [0, 2, 1]],
    ] as [number[], number[]][]) {
      const x = random(rng, batch * ref.size(shape));
      const want = ref.transpose(full([batch, ...shape], x), perm);
      const y = runStep({ op: 'Transpose', inShapes: [shape], inputs: [x], outShape: want.shape.slice(1), batch, attrs: { perm } });
      expectClose(y, want.data, () => 0, `Transpose ${shape} perm ${perm}`);
    }
  });

  it('Softmax / LogSoftmax over any non-batch axis', () => {
    const batch = 3;
    for (const [shape, axis] of [[[10], 1], [[4, 5, 6], 1], [[4, 5, 6], 2], [[4, 5, 6], 3], [[1], 1]] as [number[], number][]) {
      const x = random(rng, batch * ref.size(shape), -5, 5);
      for (const log of [false, true]) {
        const want = ref.softmax(full([batch, ...shape], x), axis, log);
        const y = runStep({ op: log ? 'LogSoftmax' : 'Softmax', inShapes: [shape], inputs: [x], outShape: shape, batch, attrs: { axis } });
        expectClose(y, want.data, rel(want.data, 2e-6, 1e-6), `${log ? 'Log' : ''}Softmax axis ${axis}`);
      }
    }
  });

  it('Pad: constant, reflect, edge and wrap, negative pads crop', () => {
    const batch = 2;
    const shape = [3, 5, 4];
    const x = random(rng, batch * ref.size(shape));
    const cases: { pads: number[]; mode: 'constant' | 'reflect' | 'edge' | 'wrap'; value?: number }[] = [
      { pads: [0, 1, 2, 0, 0, 0, 1, 3], mode: 'constant', value: 1.5 },
      { pads: [0, 0, 4, 3, 0, 2, 1, 3], mode: 'reflect' },
      { pads: [0, 2, 0, 5, 0, 1, 3, 0], mode: 'edge' },
      { pads: [0, -1, 1, -2, 0, 0, -3, 1], mode: 'constant', value: -2 },
      { pads: [0, 2, 7, 1, 0, 4, 0, 9], mode: 'wrap' },
    ];
    for (const c of cases) {
      const want = ref.pad(full([batch, ...shape], x), c.pads, c.mode, c.value ?? 0);
      const y = runStep({ op: 'Pad', inShapes: [shape], inputs: [x], outShape: want.shape.slice(1), batch, attrs: { pads: c.pads, mode: c.mode, value: c.value ?? 0 } });
      expectClose(y, want.data, () => 0, `Pad ${JSON.stringify(c)}`);
    }
  });

  it('views (Reshape, Flatten, Squeeze, Unsqueeze, Identity) from a plan input to a plan output copy the data', () => {
    const x = random(rng, 2 * 24);
    for (const [op, outShape] of [['Reshape', [6, 4]], ['Flatten', [24]], ['Squeeze', [2, 3, 4]], ['Unsqueeze', [1, 2, 3, 4]], ['Identity', [2, 3, 4]]] as [string, number[]][]) {
      const inShape = op === 'Squeeze' ? [2, 1, 3, 4] : [2, 3, 4];
      const y = runStep({ op, inShapes: [inShape], inputs: [x], outShape, batch: 2 });
      expectClose(y, x, () => 0, op);
    }
  });
});
