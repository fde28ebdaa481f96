/**
 * The int8 runtime (docs/int8-ir.md on the native plan) against the float64 / exact-integer
 * reference interpreter `runInt8Reference`: hand-built int8 graphs (conv chains with fused ReLU,
 * padding, strides, groups, max pools, flatten + gemm with the NHWC weight permutation, QLinearAdd,
 * float-output conv and gemm, DynamicQGemm, a reshape that needs the NCHW order, uint8 and int8
 * activations with non-zero zero points). Quantized values leave the graph through
 * DequantizeLinear, which is exact in float32, so bit-equal outputs mean bit-equal integers.
 * Every ISA, 1 and 2 threads, batch 1 / 7 / 64, concurrent runs, and bad specs.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { native, testHooks } from '../../src/binding.js';
import { KilnError } from '../../src/errors.js';
import { GraphBuilder, type Attrs, type Graph } from '../../src/graph/ir.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import { Plan, type PlanSpec } from '../../src/runtime/plan.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const info = native.cpuInfo();
const initialIsa = info.isa;
afterAll(() => {
  testHooks().setS8GemmKernel('auto');
  native.setIsa(initialIsa);
  native.setNumThreads(0);
});

/** Every kernel family this CPU has: each ISA, plus the AVX-VNNI int8 kernels where present. */
const PATHS = [
  ...info.supportedIsas.map((isa) => ({ isa, avxvnni: false })),
  ...(info.features.avxvnni ? [{ isa: info.bestIsa, avxvnni: true }] : []),
];
function select(p: { isa: string; avxvnni: boolean }): void {
  native.setIsa(p.isa);
  testHooks().setS8GemmKernel(p.avxvnni ? 'avxvnni' : 'auto');
}
function restore(): void {
  testHooks().setS8GemmKernel('auto');
  native.setIsa(initialIsa);
}

const rng = new Rng(2024);
type Act = 'uint8' | 'int8';

function input(batch: number, shape: number[], lo = -1, hi = 1): Tensor<'float32'> {
  const n = batch * shape.reduce((a, b) => a * b, 1);
  return new Tensor('float32', Float32Array.from({ length: n }, () => rng.uniform(lo, hi)), [batch, ...shape]);
}

function int8s(dims: number[], extremes = false): Tensor<'int8'> {
  const n = dims.reduce((a, b) => a * b, 1);
  return new Tensor('int8', Int8Array.from({ length: n }, (_, i) => (extremes && i % 7 === 0 ? (i % 2 ? 127 : -128) : rng.int(255) - 127)), dims);
}

function scales(n: number, lo: number, hi: number): Tensor<'float32'> {
  return new Tensor('float32', Float32Array.from({ length: n }, () => Math.fround(rng.uniform(lo, hi))), [n]);
}

function bias(n: number, range: number): Tensor<'int32'> {
  return new Tensor('int32', Int32Array.from({ length: n }, () => rng.int(2 * range) - range), [n]);
}

/** Quantization parameters of an activation of this dtype (int8: symmetric or an imported zero point). */
function qp(act: Act, scale: number, zp: number): { scale: number; zero_point: number } {
  return { scale: Math.fround(scale), zero_point: act === 'uint8' ? zp : zp - 128 };
}

function qconv(g: GraphBuilder, x: string, act: Act, cin: number, cout: number, k: number, xq: { scale: number; zero_point: number }, yq: { scale: number; zero_point: number } | undefined, attrs: Attrs = {}): string {
  const group = Number(attrs.group ?? 1);
  const w = g.addInitializer('w', int8s([cout, cin / group, k, k], true));
  const ws = g.addInitializer('ws', scales(cout, 0.002, 0.02));
  const b = g.addInitializer('b', bias(cout, 3000));
  return g.addNode('QLinearConv', [x, w, ws, b], {
    kernel_shape: [k, k], x_scale: xq.scale, x_zero_point: xq.zero_point,
    ...(yq ? { y_scale: yq.scale, y_zero_point: yq.zero_point, y_dtype: act } : {}),
    ...attrs,
  });
}

function qgemm(g: GraphBuilder, a: string, act: Act, k: number, n: number, aq: { scale: number; zero_point: number }, yq: { scale: number; zero_point: number } | undefined, transB = 1, attrs: Attrs = {}): string {
  const w = g.addInitializer('fc_w', int8s(transB ? [n, k] : [k, n], true));
  const ws = g.addInitializer('fc_ws', scales(n, 0.002, 0.02));
  const b = g.addInitializer('fc_b', bias(n, 2000));
  return g.addNode('QLinearGemm', [a, w, ws, b], {
    transB, a_scale: aq.scale, a_zero_point: aq.zero_point,
    ...(yq ? { y_scale: yq.scale, y_zero_point: yq.zero_point, y_dtype: act } : {}),
    ...attrs,
  });
}

const dq = (g: GraphBuilder, x: string, q: { scale: number; zero_point: number }) => g.addNode('DequantizeLinear', [x], { ...q });

/** Q -> conv 3x3 pad 1 relu -> grouped conv stride 2 -> maxpool -> flatten -> gemm (u8) -> gemm (f32), and the dequantized mid value. */
function convChain(act: Act, c = 3, h = 9, w = 9): Graph {
  const g = new GraphBuilder('int8-chain');
  const x = g.addInput('input', ['N', c, h, w]);
  const q0 = qp(act, 2 / 255, 120);
  const q1 = qp(act, 0.05, 128 - 20);
  const q2 = qp(act, 0.08, 131);
  const q3 = qp(act, 0.1, 125);
  const xq = g.addNode('QuantizeLinear', [x], { ...q0, dtype: act });
  const c1 = qconv(g, xq, act, c, 8, 3, q0, { ...q1, zero_point: q1.zero_point }, { pads: [1, 1, 1, 1], kiln_activation: 'Relu' });
  const c2 = qconv(g, c1, act, 8, 6, 3, q1, q2, { strides: [2, 2], pads: [0, 1, 1, 0], group: 2 });
  const p = g.addNode('MaxPool', [c2], { kernel_shape: [2, 2], strides: [1, 1] });
  const f = g.addNode('Flatten', [p], { axis: 1 });
  const flat = 6 * 3 * 3;
  const fc1 = qgemm(g, f, act, flat, 11, q2, q3, 1, { kiln_activation: 'Relu' });
  const fc2 = qgemm(g, fc1, act, 11, 5, q3, undefined, 0);
  const mid = dq(g, c2, q2);
  return g.build([
    { name: fc2, dtype: 'float32', shape: ['N', 5] },
    { name: dq(g, fc1, q3), dtype: 'float32', shape: ['N', 11] },
    { name: mid, dtype: 'float32', shape: ['N', 6, 4, 4] },
  ]);
}

/**
 * A RegNet-style bottleneck: 1x1 -> grouped 3x3 of 8 channels per group (relu; stride 2, then
 * stride 1 with 4 input channels per group) -> 1x1: the direct grouped kernel on AVX-512 VNNI, a
 * GEMM per group elsewhere.
 */
function groupedBlock(act: Act): Graph {
  const g = new GraphBuilder('int8-grouped');
  const x = g.addInput('input', ['N', 6, 11, 10]);
  const q0 = qp(act, 1 / 90, 110);
  const q1 = qp(act, 0.05, 120);
  const q2 = qp(act, 0.07, 127);
  const q3 = qp(act, 0.06, 125);
  const q4 = qp(act, 0.08, 130);
  const xq = g.addNode('QuantizeLinear', [x], { ...q0, dtype: act });
  const a = qconv(g, xq, act, 6, 48, 1, q0, q1, { kiln_activation: 'Relu' });
  const b = qconv(g, a, act, 48, 48, 3, q1, q2, { strides: [2, 2], pads: [1, 1, 1, 1], group: 6, kiln_activation: 'Relu' });
  const c = qconv(g, b, act, 48, 24, 3, q2, q3, { pads: [1, 0, 1, 2], group: 3 });
  const d = qconv(g, c, act, 24, 16, 3, q3, q4, { pads: [1, 1, 1, 1], group: 4 });
  return g.build([{ name: dq(g, d, q4), dtype: 'float32', shape: ['N', 16, 6, 5] }]);
}

/** Two convs of one quantized input added (relu), a float-output conv, a non-flat reshape of an NHWC value. */
function branchy(act: Act): Graph {
  const g = new GraphBuilder('int8-branchy');
  const x = g.addInput('input', ['N', 4, 7, 6]);
  const q0 = qp(act, 1 / 100, 100);
  const qa = qp(act, 0.04, 140);
  const qb = qp(act, 0.03, 110);
  const qy = qp(act, 0.06, 128);
  const xq = g.addNode('QuantizeLinear', [x], { ...q0, dtype: act });
  const a = qconv(g, xq, act, 4, 5, 3, q0, qa, { pads: [1, 1, 1, 1] });
  const b = qconv(g, xq, act, 4, 5, 1, q0, qb);
  const sum = g.addNode('QLinearAdd', [a, b], {
    a_scale: qa.scale, a_zero_point: qa.zero_point, b_scale: qb.scale, b_zero_point: qb.zero_point,
    y_scale: qy.scale, y_zero_point: qy.zero_point, y_dtype: act, kiln_activation: 'Relu',
  });
  const floatConv = qconv(g, sum, act, 5, 3, 2, qy, undefined, { kiln_activation: 'Relu', dilations: [2, 2] });
  const reshaped = g.addNode('Reshape', [sum], { shape: [0, 35, 6] });
  // the reshaped value is plain NCHW: a conv on a reshape of it needs NHWC again
  const back = g.addNode('Reshape', [reshaped], { shape: [0, 5, 7, 6] });
  const pooled = g.addNode('MaxPool', [back], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
  return g.build([
    { name: dq(g, sum, qy), dtype: 'float32', shape: ['N', 5, 7, 6] },
    { name: floatConv, dtype: 'float32', shape: ['N', 3, 5, 4] },
    { name: dq(g, reshaped, qy), dtype: 'float32', shape: ['N', 35, 6] },
    { name: dq(g, pooled, qy), dtype: 'float32', shape: ['N', 5, 4, 3] },
  ]);
}

/** Convs with fused max pools (2x2 s2 over an odd size; 3x3 s2 padded), and an unfused 2x2 s2 pool. */
function pooled(act: Act): Graph {
  const g = new GraphBuilder('int8-pooled');
  const x = g.addInput('input', ['N', 2, 11, 9]);
  const q0 = qp(act, 1 / 90, 90);
  const q1 = qp(act, 0.05, 100);
  const q2 = qp(act, 0.07, 140);
  const xq = g.addNode('QuantizeLinear', [x], { ...q0, dtype: act });
  const c1 = qconv(g, xq, act, 2, 16, 3, q0, q1, { pads: [1, 1, 1, 1], kiln_activation: 'Relu' });
  const p1 = g.addNode('MaxPool', [c1], { kernel_shape: [2, 2], strides: [2, 2] });
  const c2 = qconv(g, p1, act, 16, 24, 2, q1, q2);
  const p2 = g.addNode('MaxPool', [c2], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
  const c3 = qconv(g, xq, act, 2, 17, 1, q0, q1);
  const p3 = g.addNode('MaxPool', [c3], { kernel_shape: [2, 2], strides: [2, 2] });
  return g.build([
    { name: dq(g, p2, q2), dtype: 'float32', shape: ['N', 24, 2, 2] },
    { name: dq(g, p3, q1), dtype: 'float32', shape: ['N', 17, 5, 4] },
    { name: dq(g, c3, q1), dtype: 'float32', shape: ['N', 17, 11, 9] },
  ]);
}

/** One-channel convs (SeedCNN conv1-like, run two output pixels per GEMM row when the width is even). */
function oneChannel(act: Act): Graph {
  const g = new GraphBuilder('int8-one-channel');
  const x = g.addInput('input', ['N', 1, 10, 11]);
  const q0 = qp(act, 1 / 70, 60);
  const q1 = qp(act, 0.05, 128);
  const xq = g.addNode('QuantizeLinear', [x], { ...q0, dtype: act });
  // 10 x 10 output (pads 1 0 1 1): paired, fused with a pool
  const c1 = qconv(g, xq, act, 1, 32, 3, q0, q1, { pads: [1, 0, 1, 1], kiln_activation: 'Relu' });
  const p1 = g.addNode('MaxPool', [c1], { kernel_shape: [2, 2], strides: [2, 2] });
  // 8 x 9 output: odd width, not paired
  const c2 = qconv(g, xq, act, 1, 7, 3, q0, q1);
  // 10 x 10 output, per-tensor weight scale, no bias: paired
  const w = g.addInitializer('w', int8s([5, 1, 3, 3], true));
  const ws = g.addInitializer('ws', scales(1, 0.01, 0.02));
  const c3 = g.addNode('QLinearConv', [xq, w, ws, ''], {
    kernel_shape: [3, 3], pads: [1, 1, 1, 0], x_scale: q0.scale, x_zero_point: q0.zero_point, y_scale: q1.scale, y_zero_point: q1.zero_point, y_dtype: act,
  });
  return g.build([
    { name: dq(g, p1, q1), dtype: 'float32', shape: ['N', 32, 5, 5] },
    { name: dq(g, c2, q1), dtype: 'float32', shape: ['N', 7, 8, 9] },
    { name: dq(g, c3, q1), dtype: 'float32', shape: ['N', 5, 10, 10] },
  ]);
}

/** An fp32 island (DequantizeLinear -> Relu -> MaxPool -> QuantizeLinear) inside an int8 chain. */
function floatIsland(act: Act): Graph {
  const g = new GraphBuilder('int8-island');
  const x = g.addInput('input', ['N', 3, 8, 8]);
  const q0 = qp(act, 1 / 80, 110);
  const q1 = qp(act, 0.06, 128);
  const q2 = qp(act, 0.03, 10);
  const xq = g.addNode('QuantizeLinear', [x], { ...q0, dtype: act });
  const c1 = qconv(g, xq, act, 3, 7, 3, q0, q1, { pads: [1, 1, 1, 1] });
  const f = g.addNode('DequantizeLinear', [c1], { ...q1 });
  const r = g.addNode('Relu', [f]);
  const p = g.addNode('MaxPool', [r], { kernel_shape: [2, 2], strides: [2, 2] });
  const q = g.addNode('QuantizeLinear', [p], { ...q2, dtype: act });
  const flat = g.addNode('Flatten', [q], { axis: 1 });
  const y = qgemm(g, flat, act, 7 * 4 * 4, 6, q2, undefined, 1);
  return g.build([{ name: y, dtype: 'float32', shape: ['N', 6] }, { name: p, dtype: 'float32', shape: ['N', 7, 4, 4] }]);
}

function dynamicGemm(): Graph {
  const g = new GraphBuilder('dyn');
  const x = g.addInput('input', ['N', 37]);
  const w = g.addInitializer('w', int8s([37, 13], true));
  const ws = g.addInitializer('ws', scales(13, 0.001, 0.01));
  const b = g.addInitializer('b', new Tensor('float32', Float32Array.from({ length: 13 }, () => rng.uniform(-0.2, 0.2)), [13]));
  const y = g.addNode('DynamicQGemm', [x, w, ws, b], { transB: 0, kiln_activation: 'Relu' });
  const w2 = g.addInitializer('w2', int8s([4, 13]));
  const ws2 = g.addInitializer('ws2', scales(1, 0.01, 0.02));
  const y2 = g.addNode('DynamicQGemm', [y, w2, ws2, ''], { transB: 1 });
  return g.build([{ name: y2, dtype: 'float32', shape: ['N', 4] }, { name: y, dtype: 'float32', shape: ['N', 13] }]);
}

function expectExact(got: Record<string, Tensor>, want: Record<string, Tensor>): void {
  for (const [name, t] of Object.entries(want)) {
    // the oracle's outputs are not degenerate (many distinct values), so equality means something
    expect(new Set(t.data as Float32Array).size, name).toBeGreaterThan(t.data.length >= 64 ? 8 : 1);
    expect(got[name].dims, name).toEqual(t.dims);
    const a = got[name].data as Float32Array;
    const b = t.data as Float32Array;
    let bad = -1;
    for (let i = 0; i < b.length && bad < 0; i++) if (!Object.is(a[i], b[i]) && !(a[i] === 0 && b[i] === 0)) bad = i;
    expect(bad < 0 ? 'equal' : `${name}[${bad}]: ${a[bad]} vs ${b[bad]}`).toBe('equal');
  }
}

const GRAPHS: [string, (act: Act) => Graph, number[]][] = [
  ['conv chain', convChain, [3, 9, 9]],
  ['branches, add, float conv, reshape', branchy, [4, 7, 6]],
  ['convs with fused and unfused max pools', pooled, [2, 11, 9]],
  ['an fp32 island (DQ, Relu, MaxPool, Q) between int8 ops', floatIsland, [3, 8, 8]],
  ['one-channel convs, two pixels per GEMM row', oneChannel, [1, 10, 11]],
  ['grouped convs of 8 output channels per group (RegNet)', groupedBlock, [6, 11, 10]],
];

describe('int8 runtime vs runInt8Reference (bit-exact)', () => {
  for (const [label, build, shape] of GRAPHS) {
    for (const act of ['uint8', 'int8'] as const) {
      it(`${label}, ${act} activations: every ISA, 1 and 2 threads, batch 1/7/64`, async () => {
        const graph = build(act);
        const feeds = [1, 7, 64].map((b) => ({ input: input(b, shape, -1.3, 1.6) }));
        const wants = feeds.map((f) => runInt8Reference(graph, f));
        for (const path of PATHS) {
          select(path);
          for (const threads of [1, 2]) {
            const session = await InferenceSession.create(graph, { intraOpNumThreads: threads });
            for (let i = 0; i < feeds.length; i++) expectExact(await session.run(feeds[i]), wants[i]);
            session.release();
          }
        }
        restore();
      });
    }
  }

  it('DynamicQGemm (per-call min/max of the whole batch): every ISA, batch 1/7/64', async () => {
    const graph = dynamicGemm();
    for (const path of PATHS) {
      select(path);
      const session = await InferenceSession.create(graph);
      for (const b of [1, 7, 64]) {
        const feeds = { input: input(b, [37], -2, 3) };
        expectExact(await session.run(feeds), runInt8Reference(graph, feeds));
      }
      session.release();
    }
    restore();
  });

  it('DynamicQGemm: NaN inputs as the reference (skipped by min/max, quantized to the zero point); infinite ones rejected', async () => {
    const graph = dynamicGemm();
    const session = await InferenceSession.create(graph);
    const x = input(3, [37], -2, 3);
    x.data[5] = NaN;
    x.data[40] = NaN;
    expectExact(await session.run({ input: x }), runInt8Reference(graph, { input: x }));
    x.data[7] = Infinity;
    await expect(session.run({ input: x })).rejects.toThrow(/finite activations for DynamicQGemm/);
    session.release();
  });

  it('planInfo shows the int8 steps, NHWC inside, nothing between consecutive int8 ops', async () => {
    const session = await InferenceSession.create(convChain('uint8'));
    const steps = session.info().steps;
    const ops = steps.map((s) => s.split(' ')[0]);
    expect(ops).toEqual(['QuantizeLinear', 'QLinearConv', 'QLinearConv', 'MaxPoolU8', 'Flatten', 'QLinearGemm', 'QLinearGemm', 'DequantizeLinear', 'DequantizeLinear']);
    expect(steps[0]).toContain('NCHW->NHWC');
    expect(steps[4]).toContain('view');
    expect(steps.filter((s) => s.startsWith('DequantizeLinear') && s.includes('NHWC->NCHW')).length).toBe(1);  // the conv output, not the flat gemm output
    session.release();
  });

  it('a QLinearConv whose only reader is a MaxPool runs as one step with it', async () => {
    const session = await InferenceSession.create(pooled('uint8'));
    const steps = session.info().steps;
    expect(steps.filter((s) => s.startsWith('QLinearConv') && s.includes('+ max pool')).length).toBe(2);
    expect(steps.filter((s) => s.startsWith('MaxPoolU8')).length).toBe(1);  // c3 has two readers
    session.release();
  });

  it('the profile says which int8 convolutions take the grouped kernel and which read their input without im2col', async () => {
    const grouped = await InferenceSession.create(groupedBlock('uint8'));
    const convs = grouped.info().steps.filter((s) => s.startsWith('QLinearConv'));
    // 1x1 (read in place anyway), 8 in / 8 out per group, 16 in / 8 out, 6 in / 4 out (GEMM per group)
    expect(convs.map((s) => s.includes('grouped kernel on VNNI'))).toEqual([false, true, true, false]);
    grouped.release();
    const g = new GraphBuilder('int8-in-place');
    const x = g.addInput('input', ['N', 8, 6, 6]);
    const q0 = qp('uint8', 1 / 100, 100);
    const q1 = qp('uint8', 0.05, 120);
    const xq = g.addNode('QuantizeLinear', [x], { ...q0, dtype: 'uint8' });
    const wide = qconv(g, xq, 'uint8', 8, 16, 3, q0, q1, { pads: [1, 1, 1, 1] });  // kernel rows of 24 bytes
    const narrow = qconv(g, wide, 'uint8', 16, 4, 1, q1, q1, { strides: [2, 2] });  // 1x1/2: rows of 16 bytes
    const session = await InferenceSession.create(g.build([{ name: dq(g, narrow, q1), dtype: 'float32', shape: ['N', 4, 3, 3] }]));
    const steps = session.info().steps.filter((s) => s.startsWith('QLinearConv'));
    expect(steps.map((s) => s.includes('no im2col on VNNI'))).toEqual([true, true]);
    session.release();
  });

  it('one-channel convs with an even output width run two pixels per GEMM row', async () => {
    const session = await InferenceSession.create(oneChannel('uint8'));
    const convs = session.info().steps.filter((s) => s.startsWith('QLinearConv'));
    expect(convs.map((s) => s.includes('2 pixels per GEMM row'))).toEqual([true, false, true]);
    session.release();
    // three channels (CIFAR-like conv1, depth 28 -> 36) pair too: the fp32-island graph's conv
    const island = await InferenceSession.create(floatIsland('int8'));
    expect(island.info().steps.filter((s) => s.includes('2 pixels per GEMM row')).length).toBe(1);
    island.release();
  });

  it('a non-flat reshape of an NHWC value gets one explicit layout change', async () => {
    const session = await InferenceSession.create(branchy('uint8'));
    const ops = session.info().steps.map((s) => s.split(' ')[0]);
    expect(ops.filter((o) => o === 'TransposeU8').length).toBe(2);  // to NCHW for the reshape, back for the pool
    session.release();
  });

  it('concurrent runs on one session give each its own result', async () => {
    const graph = convChain('uint8');
    const session = await InferenceSession.create(graph);
    const feeds = [1, 3, 64, 2, 64].map((b) => ({ input: input(b, [3, 9, 9]) }));
    const got = await Promise.all(feeds.map((f) => session.run(f)));
    got.forEach((g, i) => expectExact(g, runInt8Reference(graph, feeds[i])));
    session.release();
  });
});

describe('int8 graphs refused with clear errors', () => {
  function withAttr(patch: (g: Graph) => void): Graph {
    const g = convChain('uint8');
    patch(g);
    return g;
  }
  const conv = (g: Graph) => g.nodes.find((n) => n.op === 'QLinearConv')!;
  const cases: [string, (g: Graph) => void, RegExp][] = [
    ['zero scale', (g) => (conv(g).attrs.x_scale = 0), /x_scale.*scale > 0/],
    ['NaN scale', (g) => (conv(g).attrs.y_scale = NaN), /y_scale/],
    ['missing scale', (g) => delete conv(g).attrs.x_scale, /x_scale.*required/],
    ['zero point out of range', (g) => (conv(g).attrs.y_zero_point = 256), /y_zero_point.*\[0, 255\]/],
    ['int8 zero point out of range', (g) => { conv(g).attrs.y_dtype = 'int8'; conv(g).attrs.y_zero_point = 128; }, /y_zero_point.*\[-128, 127\]/],
    ['float weight', (g) => g.initializers.set(conv(g).inputs[1], new Tensor('float32', new Float32Array(8 * 3 * 9), [8, 3, 3, 3])), /int8 initializer/],
    ['weight scale count', (g) => g.initializers.set(conv(g).inputs[2], scales(3, 0.1, 0.2)), /w_scale has 3 values/],
    ['negative weight scale', (g) => g.initializers.set(conv(g).inputs[2], new Tensor('float32', new Float32Array(8).fill(-1), [8])), /w_scale\[0\]/],
    ['float bias', (g) => g.initializers.set(conv(g).inputs[3], new Tensor('float32', new Float32Array(8), [8])), /bias must be int32/],
    ['fused Relu6', (g) => (conv(g).attrs.kiln_activation = 'Relu6'), /only 'Relu'/],
  ];
  for (const [label, patch, message] of cases) {
    it(label, async () => {
      const err = await InferenceSession.create(withAttr(patch)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KilnError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).toMatch(/qlinearconv/);  // names the node
    });
  }

  it('a float op on a quantized value, and a quantized graph output', async () => {
    const g = new GraphBuilder();
    const x = g.addInput('input', ['N', 4]);
    const q = g.addNode('QuantizeLinear', [x], { scale: 0.1, zero_point: 3, dtype: 'uint8' });
    const r = g.addNode('Relu', [q]);
    const err = await InferenceSession.create(g.build([{ name: r, dtype: 'float32', shape: ['N', 4] }])).catch((e: unknown) => e);
    expect((err as KilnError).code).toBe('ERR_KILN_UNSUPPORTED_OP');
    expect((err as Error).message).toMatch(/quantized \(uint8\) value; a float op needs a DequantizeLinear/);
    const g2 = new GraphBuilder();
    const x2 = g2.addInput('input', ['N', 4]);
    const q2 = g2.addNode('QuantizeLinear', [x2], { scale: 0.1, zero_point: 3, dtype: 'int8' });
    const err2 = await InferenceSession.create(g2.build([{ name: q2, dtype: 'float32', shape: ['N', 4] }])).catch((e: unknown) => e);
    expect((err2 as Error).message).toMatch(/end the graph with a DequantizeLinear/);
  });

  it('a quantized graph output declared int8 hands out the codes themselves', async () => {
    const g = new GraphBuilder();
    const x = g.addInput('input', ['N', 4]);
    const q = g.addNode('QuantizeLinear', [x], { scale: 0.1, zero_point: 3, dtype: 'int8' });
    const session = await InferenceSession.create(g.build([{ name: q, dtype: 'int8', shape: ['N', 4] }]));
    const xs = [-100, -0.25, 0.25, 100, 0.05, 0.15, -0.05, 12.7];
    const out = await session.run({ input: new Tensor('float32', xs, [2, 4]) });
    // ONNX: saturate(round-half-even(x / scale) + zero point), the division in float32
    const halfEven = (v: number): number => (Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v));
    const expected = xs.map((v) => Math.min(127, Math.max(-128, halfEven(Math.fround(Math.fround(v) / Math.fround(0.1))) + 3)));
    expect(expected.slice(0, 4)).toEqual([-128, 1, 5, 127]);
    expect(Array.from(out[q]!.data as ArrayLike<number>, Number)).toEqual(expected);
  });
});

describe('native plan: int8 spec checks (never a crash)', () => {
  const base = (): PlanSpec => ({
    values: [[6], [6], [3], [3]],
    valueTypes: ['float32', 'uint8', 'uint8', 'float32'] as ('float32' | 'uint8')[],
    inputs: [0],
    outputs: [3],
    steps: [
      { op: 'QuantizeLinear' as const, name: 'q', inputs: [0], outputs: [1], attrs: { scale: 0.1, zero_point: 5 } },
      {
        op: 'QLinearGemm' as const, name: 'fc', inputs: [1], outputs: [2],
        attrs: { transB: 1, out_features: 3, a_scale: 0.1, a_zero_point: 5, y_scale: 0.2, y_zero_point: 7 },
        weights: { W: { data: new Int8Array(18).fill(3), shape: [3, 6] }, w_scale: { data: new Float32Array([0.5]), shape: [1] }, B: { data: new Int32Array(3), shape: [3] } },
      },
      { op: 'DequantizeLinear' as const, name: 'dq', inputs: [2], outputs: [3], attrs: { scale: 0.2, zero_point: 7 } },
    ],
  });

  it('a valid spec runs', () => {
    const plan = Plan.createSync(base());
    const out = new Float32Array(3).fill(NaN);
    plan.run([Float32Array.from([0.1, 0.2, 0.3, -0.1, 0, 1])], [out], 1, false);
    // acc = 3 * sum(q - 5) = 3 * (1 + 2 + 3 - 1 + 0 + 10) = 45; 45 * 0.1 * 0.5 / 0.2 = 11.25 -> 11; y = 18 - 7
    expect(Array.from(out)).toEqual([11, 11, 11].map((v) => Math.fround(v * 0.2)));
    plan.dispose();
  });

  const bad: [string, (s: ReturnType<typeof base>) => void, RegExp][] = [
    ['short int8 weight', (s) => (s.steps[1].weights!.W.data = new Int8Array(17)), /18 elements for shape \[3, 6\]/],
    ['float32 weight where int8 is needed', (s) => (s.steps[1].weights!.W.data = new Float32Array(18) as unknown as Int8Array), /int8 weight/],
    ['int8 bias', (s) => (s.steps[1].weights!.B.data = new Int8Array(3) as unknown as Int32Array), /int32 weight/],
    ['int8 weight in a float op', (s) => {
      s.valueTypes = ['float32', 'float32', 'float32', 'float32'];
      Object.assign(s.steps[1], { op: 'Gemm', attrs: { transB: 1 } });
      s.steps.splice(2, 1); s.steps.splice(0, 1); s.steps[0].inputs = [0]; s.steps[0].outputs = [3]; s.values[3] = [3];
    }, /float32 weight/],
    ['zero scale', (s) => (s.steps[0].attrs!.scale = 0), /scale > 0/],
    ['NaN scale', (s) => (s.steps[2].attrs!.scale = NaN), /finite/],
    ['missing scale', (s) => delete (s.steps[1].attrs as Record<string, unknown>).a_scale, /a_scale/],
    ['zero point out of range', (s) => (s.steps[1].attrs!.y_zero_point = 256), /y_zero_point/],
    ['uint8 plan output', (s) => { s.outputs = [2]; s.steps.pop(); }, /float32 value/],
    ['uint8 value into a float op', (s) => Object.assign(s.steps[2], { op: 'Relu' }), /float32 value/],
    ['wrong valueTypes length', (s) => s.valueTypes!.pop(), /valueTypes/],
  ];
  for (const [label, patch, message] of bad) {
    it(label, () => {
      const spec = base();
      patch(spec);
      let err: unknown;
      try {
        Plan.createSync(spec);
      } catch (e) {
        err = e;
      }
      expect((err as { code?: string }).code).toBe('ERR_KILN_INVALID_ARG');
      expect((err as Error).message).toMatch(message);
    });
  }
});
