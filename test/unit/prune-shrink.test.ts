/**
 * Structured shrinking on the Graph IR: the shrunk graph's outputs equal the masked original's
 * (the same filters, and every coupled one, zeroed; BatchNormalization beta/mean zeroed there) on
 * random inputs, through Flatten -> Gemm, BatchNorm, residual Adds, Concats and depthwise convs;
 * bad requests fail with stable codes and never produce a graph.
 */
import { describe, expect, it } from 'vitest';

import { toGraph } from '../../src/graph/from-module.js';
import { GraphBuilder, type Graph } from '../../src/graph/ir.js';
import { fuseActivations } from '../../src/graph/passes/index.js';
import { validateGraph } from '../../src/graph/validate-graph.js';
import { seedCNN } from '../../src/nn/models.js';
import { maskGraph, modelSize, planShrink, shrinkByImportance, shrinkGraph, type Removals } from '../../src/prune/shrink/index.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const rng = new Rng(11);
function tensor(dims: number[], lo = -1, hi = 1): Tensor<'float32'> {
  return new Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.uniform(lo, hi)), dims);
}

async function run(graph: Graph, x: Tensor): Promise<Tensor[]> {
  const session = await InferenceSession.create(graph);
  const out = await session.run({ [session.inputNames[0]]: x });
  session.release();
  return session.outputNames.map((n) => out[n]);
}

/** max |shrunk - masked| / max |masked| over each output. */
async function relError(masked: Graph, shrunk: Graph, x: Tensor): Promise<number> {
  const [a, b] = [await run(masked, x), await run(shrunk, x)];
  let worst = 0;
  a.forEach((t, k) => {
    expect(b[k].dims).toEqual(t.dims);
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < t.data.length; i++) {
      diff = Math.max(diff, Math.abs(t.data[i] - b[k].data[i]));
      scale = Math.max(scale, Math.abs(t.data[i]));
    }
    expect(scale, 'a non-zero output').toBeGreaterThan(0);
    worst = Math.max(worst, diff / scale);
  });
  return worst;
}

async function expectShrinkEqualsMask(graph: Graph, removals: Removals, inputDims: number[]): Promise<ReturnType<typeof shrinkGraph>> {
  const before = JSON.stringify([...graph.initializers].map(([k, t]) => [k, t.dims, Array.from(t.data as Float32Array).slice(0, 8)]));
  const result = shrinkGraph(graph, removals);
  validateGraph(result.graph);
  expect(JSON.stringify([...graph.initializers].map(([k, t]) => [k, t.dims, Array.from(t.data as Float32Array).slice(0, 8)]))).toBe(before);
  const masked = maskGraph(graph, removals);
  const x = tensor(inputDims);
  expect(await relError(masked, result.graph, x)).toBeLessThanOrEqual(1e-5);
  // The masking matters: the original model computes something else.
  expect(await relError(graph, masked, x)).toBeGreaterThan(1e-4);
  expect(result.report.after.parameters).toBeLessThan(result.report.before.parameters);
  expect(result.report.after.macs).toBeLessThan(result.report.before.macs);
  return result;
}

const CONV = (k: number, pad: number, group = 1) => ({ kernel_shape: [k, k], strides: [1, 1], pads: [pad, pad, pad, pad], dilations: [1, 1], group });

function builder(name: string, c: number, hw: number): { b: GraphBuilder; x: string } {
  const b = new GraphBuilder(name);
  return { b, x: b.addInput('x', ['N', c, hw, hw]) };
}
function conv(b: GraphBuilder, x: string, cin: number, cout: number, name: string, k = 3, group = 1): string {
  return b.addNode('Conv', [x, b.addInitializer(`${name}_w`, tensor([cout, cin / group, k, k])), b.addInitializer(`${name}_b`, tensor([cout], -0.2, 0.2))], CONV(k, (k - 1) / 2, group), name);
}
function bn(b: GraphBuilder, x: string, c: number, name: string): string {
  return b.addNode(
    'BatchNormalization',
    [x, b.addInitializer(`${name}_s`, tensor([c], 0.5, 1.5)), b.addInitializer(`${name}_b`, tensor([c], -0.3, 0.3)), b.addInitializer(`${name}_m`, tensor([c], -0.3, 0.3)), b.addInitializer(`${name}_v`, tensor([c], 0.5, 1.5))],
    { epsilon: 1e-5 },
    name,
  );
}
/** GlobalAveragePool -> Flatten -> Gemm(classes) -> output 'y'. */
function head(b: GraphBuilder, x: string, c: number, classes = 5): Graph {
  const f = b.addNode('Flatten', [b.addNode('GlobalAveragePool', [x], {}, 'gap')], { axis: 1 }, 'flatten');
  const y = b.addNode('Gemm', [f, b.addInitializer('fc_w', tensor([classes, c])), b.addInitializer('fc_b', tensor([classes]))], { alpha: 1, beta: 1, transA: 0, transB: 1 }, 'fc');
  return b.build([{ name: y, dtype: 'float32', shape: ['N', classes] }]);
}

/** conv0(8) BN Relu -> [conv1(6) BN Relu conv2(8) BN] + skip -> Relu -> conv3(7) Relu -> head. */
function residualGraph(): Graph {
  const { b, x } = builder('residual', 3, 8);
  const a = b.addNode('Relu', [bn(b, conv(b, x, 3, 8, 'conv0'), 8, 'bn0')], {}, 'relu0');
  const r = b.addNode('Relu', [bn(b, conv(b, a, 8, 6, 'conv1'), 6, 'bn1')], {}, 'relu1');
  const sum = b.addNode('Add', [bn(b, conv(b, r, 6, 8, 'conv2'), 8, 'bn2'), a], {}, 'add');
  const c3 = b.addNode('Relu', [conv(b, b.addNode('Relu', [sum], {}, 'relu2'), 8, 7, 'conv3')], {}, 'relu3');
  return head(b, c3, 7);
}

/** convA(4), convB(6) -> Concat -> Relu -> MaxPool -> Pad (reflect) -> convC(5) -> head. */
function concatGraph(): Graph {
  const { b, x } = builder('concat', 3, 8);
  const ca = b.addNode('Relu', [conv(b, x, 3, 4, 'convA')], {}, 'reluA');
  const cb = b.addNode('Relu', [conv(b, x, 3, 6, 'convB', 1)], {}, 'reluB');
  const cat = b.addNode('Concat', [ca, cb], { axis: 1 }, 'cat');
  const pooled = b.addNode('MaxPool', [b.addNode('Relu', [cat], {}, 'relu')], { kernel_shape: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], ceil_mode: 0 }, 'pool');
  const padded = b.addNode('Pad', [pooled], { pads: [0, 0, 1, 1, 0, 0, 1, 1], mode: 'reflect', value: 0 }, 'pad');
  const c = b.addNode('Relu', [b.addNode('Conv', [padded, b.addInitializer('convC_w', tensor([5, 10, 3, 3])), b.addInitializer('convC_b', tensor([5]))], CONV(3, 0), 'convC')], {}, 'reluC');
  return head(b, c, 5, 3);
}

/** conv0(6) Relu -> depthwise(6 -> 12, multiplier 2) BN Relu -> conv1(4) -> head. */
function depthwiseGraph(): Graph {
  const { b, x } = builder('depthwise', 2, 7);
  const a = b.addNode('Relu', [conv(b, x, 2, 6, 'conv0')], {}, 'relu0');
  const dw = b.addNode('Relu', [bn(b, conv(b, a, 6, 12, 'dw', 3, 6), 12, 'bn_dw')], {}, 'relu_dw');
  return head(b, conv(b, dw, 12, 4, 'conv1', 1), 4);
}

describe('shrinkGraph: the shrunk graph equals the masked original', () => {
  it('SeedCNN: conv filters, the next conv input channels and fc1 input features in blocks of H*W', async () => {
    const g = toGraph(seedCNN({ inChannels: 1, height: 16, width: 16, numClasses: 10, widthMultiplier: 0.25, seed: 3 }), [1, 16, 16]);
    const convs = g.nodes.filter((n) => n.op === 'Conv').map((n) => n.name);
    const { graph, report } = await expectShrinkEqualsMask(g, new Map([[convs[0], [0, 3, 7]], [convs[1], [1, 2, 15]]]), [3, 1, 16, 16]);
    expect(report.removedFilters).toEqual({ [convs[0]]: [0, 3, 7], [convs[1]]: [1, 2, 15] });
    expect(report.channels[convs[1]]).toEqual({ before: 16, after: 13 });
    const fc1 = graph.nodes.find((n) => n.op === 'Gemm')!;
    // 16x16 -> conv 14 -> pool 7 -> conv 5 -> pool 2: 13 channels x 4.
    expect(graph.initializers.get(fc1.inputs[1])!.dims).toEqual([32, 13 * 4]);
  });

  it('SeedCNN with fused activations (kiln_activation) and by importance (50% by L1)', async () => {
    const g = fuseActivations(toGraph(seedCNN({ inChannels: 3, height: 12, width: 12, numClasses: 4, widthMultiplier: 0.5, seed: 1 }), [3, 12, 12]));
    expect(g.nodes.some((n) => n.attrs.kiln_activation === 'Relu')).toBe(true);
    const plan = planShrink(g, { fraction: 0.5 });
    expect(plan.groups.map((gr) => [gr.channels, gr.removed])).toEqual([[16, 8], [32, 16]]);
    await expectShrinkEqualsMask(g, plan.removals, [2, 3, 12, 12]);
    const { graph, report } = shrinkByImportance(g, { fraction: 0.5, roundTo: 16 });
    expect(Object.values(report.channels)).toEqual([{ before: 32, after: 16 }]);
    expect(report.after.parameters).toBeLessThan(report.before.parameters);
    expect(modelSize(graph)).toEqual(report.after);
  });

  it('L1 importance removes the filters with the smallest norms', () => {
    const g = toGraph(seedCNN({ inChannels: 1, height: 10, width: 10, numClasses: 2, widthMultiplier: 0.125, seed: 2 }), [1, 10, 10]);
    const conv = g.nodes.find((n) => n.op === 'Conv')!;
    const w = g.initializers.get(conv.inputs[1])!;
    const per = w.size / w.dims[0];
    const norms = Array.from({ length: w.dims[0] }, (_, o) => Array.from(w.data.slice(o * per, (o + 1) * per) as Float32Array).reduce((s, v) => s + Math.abs(v), 0));
    const lowest = norms.map((v, i) => [v, i]).sort((p, q) => p[0] - q[0]).slice(0, 2).map((p) => p[1]).sort((p, q) => p - q);
    expect(planShrink(g, { fraction: 0.5 }).removals.get(conv.name)).toEqual(lowest);
    // Caller scores override L1 for that conv.
    const scores = { [conv.name]: [4, 3, 2, 1] };
    expect(planShrink(g, { fraction: 0.5, scores }).removals.get(conv.name)).toEqual([2, 3]);
  });

  it('BatchNorm and a residual Add: coupled filters are removed together', async () => {
    const g = residualGraph();
    const { report, graph } = await expectShrinkEqualsMask(g, { conv2: [2], conv1: [0, 5], conv3: [6] }, [2, 3, 8, 8]);
    expect(report.removedFilters).toEqual({ conv0: [2], conv1: [0, 5], conv2: [2], conv3: [6] });
    const bn0 = graph.nodes.find((n) => n.name === 'bn0')!;
    expect(graph.initializers.get(bn0.inputs[1])!.dims).toEqual([7]);
    const plan = planShrink(g, { fraction: 0.5 });
    const group = plan.groups.find((gr) => gr.convs.includes('conv0'))!;
    expect(group).toEqual({ convs: ['conv0', 'conv2'], channels: 8, removed: 4 });
    expect(plan.removals.get('conv0')).toEqual(plan.removals.get('conv2'));
    await expectShrinkEqualsMask(g, plan.removals, [2, 3, 8, 8]);
    // options.layers: a group with a conv left out stays dense.
    const some = planShrink(g, { fraction: 0.5, layers: ['conv0', 'conv1'] });
    expect(some.groups.find((gr) => gr.convs.includes('conv0'))!.skipped).toBe("Conv 'conv2' is not among options.layers");
    expect([...some.removals.keys()]).toEqual(['conv1']);
    expect([...planShrink(g, { fraction: 0.5, layers: (n) => n.name === 'conv3' }).removals.keys()]).toEqual(['conv3']);
  });

  it('Concat along channels: the consumer loses the channels at each input\'s offset', async () => {
    const g = concatGraph();
    const { graph } = await expectShrinkEqualsMask(g, { convA: [1], convB: [0, 5] }, [2, 3, 8, 8]);
    const convC = graph.nodes.find((n) => n.name === 'convC')!;
    expect(graph.initializers.get(convC.inputs[1])!.dims).toEqual([5, 7, 3, 3]);
    const plan = planShrink(g, { fraction: 0.5 });
    expect(plan.groups.map((gr) => [gr.convs.join(), gr.removed])).toEqual([['convA', 2], ['convB', 3], ['convC', 2]]);
    await expectShrinkEqualsMask(g, plan.removals, [2, 3, 8, 8]);
  });

  it('a depthwise conv follows its input channels (multiplier 2: two of its filters per channel)', async () => {
    const g = depthwiseGraph();
    const { graph, report } = await expectShrinkEqualsMask(g, { conv0: [1, 4] }, [2, 2, 7, 7]);
    expect(report.removedFilters).toEqual({ conv0: [1, 4], dw: [2, 3, 8, 9] });
    const dw = graph.nodes.find((n) => n.name === 'dw')!;
    expect(dw.attrs.group).toBe(4);
    expect(graph.initializers.get(dw.inputs[1])!.dims).toEqual([8, 1, 3, 3]);
    // Removing a depthwise filter removes its input channel (and the other filter on it).
    expect(shrinkGraph(g, { dw: [5] }).report.removedFilters).toEqual({ conv0: [2], dw: [4, 5] });
    await expectShrinkEqualsMask(g, planShrink(g, { fraction: 0.5 }).removals, [2, 2, 7, 7]);
  });

  it('a Reshape that flattens into a MatMul, and a weight two convs share', async () => {
    const { b, x } = builder('reshape-matmul', 2, 4);
    const shared = b.addInitializer('shared_w', tensor([3, 2, 3, 3]));
    const c1 = b.addNode('Conv', [x, shared], CONV(3, 1), 'c1');
    const c2 = b.addNode('Conv', [x, shared], CONV(3, 1), 'c2');
    const cat = b.addNode('Concat', [b.addNode('Relu', [c1], {}, 'r1'), c2], { axis: 1 }, 'cat');
    const flat = b.addNode('Reshape', [cat], { shape: [-1, 6 * 16] }, 'flat');
    const y = b.addNode('MatMul', [flat, b.addInitializer('mm_w', tensor([6 * 16, 5]))], {}, 'mm');
    const g = b.build([{ name: y, dtype: 'float32', shape: ['N', 5] }]);
    const { graph, report } = await expectShrinkEqualsMask(g, { c1: [1], c2: [0, 2] }, [2, 2, 4, 4]);
    expect(report.removedFilters).toEqual({ c1: [1], c2: [0, 2] });
    expect(graph.nodes.find((n) => n.name === 'flat')!.attrs.shape).toEqual([-1, 3 * 16]);
    expect(graph.initializers.get('mm_w')!.dims).toEqual([3 * 16, 5]);
    // The shared weight stays for neither: each conv reads its own slice, the original is untouched.
    const w1 = graph.nodes.find((n) => n.name === 'c1')!.inputs[1];
    const w2 = graph.nodes.find((n) => n.name === 'c2')!.inputs[1];
    expect(new Set([w1, w2, 'shared_w']).size).toBe(3);
    expect(graph.initializers.has('shared_w')).toBe(false);
    // Masking one of them: the other still reads the original.
    const masked = maskGraph(g, { c1: [1] });
    expect(masked.nodes.find((n) => n.name === 'c2')!.inputs[1]).toBe('shared_w');
    expect(masked.nodes.find((n) => n.name === 'c1')!.inputs[1]).not.toBe('shared_w');
    expect(Array.from(masked.initializers.get('shared_w')!.data)).toEqual(Array.from(g.initializers.get('shared_w')!.data));
    expect(g.initializers.get('shared_w')!.dims).toEqual([3, 2, 3, 3]);
  });

  it('a ConvTranspose after the shrunk conv loses its input channels', async () => {
    const { b, x } = builder('deconv', 2, 5);
    const c = b.addNode('Relu', [conv(b, x, 2, 6, 'c')], {}, 'r');
    const up = b.addNode('ConvTranspose', [c, b.addInitializer('up_w', tensor([6, 3, 2, 2])), b.addInitializer('up_b', tensor([3]))], { kernel_shape: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, output_padding: [0, 0] }, 'up');
    const g = b.build([{ name: up, dtype: 'float32', shape: ['N', 3, 10, 10] }]);
    const { graph } = await expectShrinkEqualsMask(g, { c: [0, 4] }, [2, 2, 5, 5]);
    expect(graph.initializers.get('up_w')!.dims).toEqual([4, 3, 2, 2]);
  });

  it('random removals (seeded) on the residual, Concat and depthwise graphs: shrunk == masked every time', async () => {
    const pick = new Rng(99);
    let compared = 0;
    for (const make of [residualGraph, concatGraph, depthwiseGraph]) {
      const g = make();
      const convs = g.nodes.filter((n) => n.op === 'Conv').map((n) => [n.name, g.initializers.get(n.inputs[1])!.dims[0]] as const);
      const dims = [2, ...(g.inputs[0].shape.slice(1) as number[])];
      for (let trial = 0; trial < 6; trial++) {
        const removals = new Map<string, number[]>();
        for (const [name, count] of convs) {
          if (pick.uniform(0, 1) < 0.4) continue;
          const k = 1 + Math.floor(pick.uniform(0, 1) * (count / 2));
          removals.set(name, [...new Set(Array.from({ length: k }, () => Math.floor(pick.uniform(0, 1) * count)))]);
        }
        if (removals.size === 0) continue;
        let shrunk;
        try {
          shrunk = shrinkGraph(g, removals);
        } catch (err) {
          // Coupling can make a random request remove every channel of some value: that, and only that, is refused.
          expect((err as Error).message).toMatch(/Cannot remove every channel/);
          continue;
        }
        expect(await relError(maskGraph(g, removals), shrunk.graph, tensor(dims))).toBeLessThanOrEqual(1e-5);
        compared++;
      }
    }
    expect(compared).toBeGreaterThanOrEqual(12);
  });

  it('a Mul broadcast over space couples the channels of both operands (Tanh, HardSwish keep zeros)', async () => {
    const { b, x } = builder('gate', 3, 6);
    const a = b.addNode('Tanh', [conv(b, x, 3, 5, 'ca')], {}, 'tanh');
    const gate = b.addNode('GlobalAveragePool', [b.addNode('Relu', [conv(b, x, 3, 5, 'cg', 1)], {}, 'rg')], {}, 'gp');
    const m = b.addNode('HardSwish', [b.addNode('Mul', [a, gate], {}, 'mul')], {}, 'hs');
    const g = head(b, conv(b, m, 5, 4, 'out'), 4);
    const { report } = await expectShrinkEqualsMask(g, { cg: [3] }, [2, 3, 6, 6]);
    expect(report.removedFilters).toEqual({ ca: [3], cg: [3] });
  });

  it('activations that keep zero at zero pass channels through (Gelu, Elu, Mish, ...); Sigmoid blocks them', async () => {
    for (const op of ['Gelu', 'Elu', 'Selu', 'Celu', 'Mish', 'Softsign', 'Erf', 'Abs']) {
      const { b, x } = builder(op, 3, 6);
      const g = head(b, conv(b, b.addNode(op, [conv(b, x, 3, 5, 'c0')], {}, 'act'), 5, 4, 'c1'), 4);
      const { report } = await expectShrinkEqualsMask(g, { c0: [1, 3] }, [2, 3, 6, 6]);
      expect(report.removedFilters, op).toEqual({ c0: [1, 3] });
    }
    const { b, x } = builder('sigmoid', 3, 6);
    const g = head(b, conv(b, b.addNode('Sigmoid', [conv(b, x, 3, 5, 'c0')], {}, 'act'), 5, 4, 'c1'), 4);
    expect(() => shrinkGraph(g, { c0: [1] })).toThrow(/Sigmoid 'act'/);
  });
});

describe('shrinkGraph: bad requests', () => {
  const g = residualGraph();
  const code = (f: () => unknown): string | undefined => {
    try {
      f();
    } catch (err) {
      return `${(err as { code?: string }).code}: ${(err as Error).message}`;
    }
    return undefined;
  };

  it('an unknown node, a non-Conv node, an index out of range, every filter of a layer', () => {
    expect(code(() => shrinkGraph(g, { nope: [0] }))).toMatch(/^ERR_KILN_INVALID_ARG: .*'nope' is not a node/);
    expect(code(() => shrinkGraph(g, { relu0: [0] }))).toMatch(/^ERR_KILN_CANNOT_SHRINK: .*Relu 'relu0'.*only the filters of Conv/);
    expect(code(() => shrinkGraph(g, { conv1: [6] }))).toMatch(/^ERR_KILN_INVALID_ARG: .*Conv 'conv1'.*\[0, 5\] but received 6/);
    expect(code(() => shrinkGraph(g, { conv1: [-1] }))).toMatch(/^ERR_KILN_INVALID_ARG/);
    expect(code(() => shrinkGraph(g, { conv1: [1.5] }))).toMatch(/^ERR_KILN_INVALID_ARG/);
    expect(code(() => shrinkGraph(g, { conv1: [0, 1, 2, 3, 4, 5] }))).toMatch(/^ERR_KILN_CANNOT_SHRINK: Cannot remove every channel of .*Conv 'conv1'/);
    expect(code(() => planShrink(g, { fraction: 1 }))).toMatch(/^ERR_KILN_INVALID_ARG/);
    expect(code(() => planShrink(g, { fraction: 0.5, roundTo: 0 }))).toMatch(/^ERR_KILN_INVALID_ARG/);
    expect(code(() => planShrink(g, { fraction: 0.5, layers: ['relu0'] }))).toMatch(/^ERR_KILN_INVALID_ARG: .*'relu0' is a Relu node, which has no filters/);
    expect(code(() => planShrink(g, { fraction: 0.5, scores: { conv1: [1, 2] } }))).toMatch(/^ERR_KILN_INVALID_ARG: Expected 6 scores for Conv 'conv1'/);
    expect(code(() => planShrink(g, { fraction: 0.5, scores: { conv1: [1, 2, NaN, 4, 5, 6] } }))).toMatch(/^ERR_KILN_INVALID_ARG: Expected finite scores .*score 2 is NaN/);
  });

  it('a channel feeding the graph output, a Reshape that hard-codes channels, an op shrinking does not handle', () => {
    const out = (() => {
      const { b, x } = builder('out', 2, 4);
      return b.build([{ name: b.addNode('Relu', [conv(b, x, 2, 3, 'last')], {}, 'r'), dtype: 'float32', shape: ['N', 3, 4, 4] }]);
    })();
    expect(code(() => shrinkGraph(out, { last: [0] }))).toMatch(/^ERR_KILN_CANNOT_SHRINK: Cannot remove filter 0 of Conv 'last': it reaches the graph output/);
    const reshape = (() => {
      const { b, x } = builder('reshape', 2, 4);
      const r = b.addNode('Reshape', [conv(b, x, 2, 4, 'c')], { shape: [-1, 2, 2, 4, 4] }, 'split');
      return b.build([{ name: b.addNode('ReduceMean', [r], { axes: [1], keepdims: 0 }, 'mean'), dtype: 'float32', shape: ['N', 2, 4, 4] }]);
    })();
    expect(code(() => shrinkGraph(reshape, { c: [1] }))).toMatch(/^ERR_KILN_CANNOT_SHRINK: .*Reshape 'split'.*hard-codes the channels/);
    const sigmoid = (() => {
      const { b, x } = builder('sigmoid', 2, 4);
      const s = b.addNode('Sigmoid', [conv(b, x, 2, 4, 'c')], {}, 'sig');
      return head(b, conv(b, s, 4, 3, 'd'), 3);
    })();
    expect(code(() => shrinkGraph(sigmoid, { c: [1] }))).toMatch(/^ERR_KILN_CANNOT_SHRINK: .*Sigmoid 'sig', which shrinking cannot rewrite/);
    const pad = (() => {
      const { b, x } = builder('pad', 2, 4);
      const p = b.addNode('Pad', [conv(b, x, 2, 4, 'c')], { pads: [0, 0, 1, 1, 0, 0, 1, 1], mode: 'constant', value: 1 }, 'pad1');
      return head(b, conv(b, p, 4, 3, 'd'), 3);
    })();
    expect(code(() => shrinkGraph(pad, { c: [1] }))).toMatch(/^ERR_KILN_CANNOT_SHRINK: .*Pad 'pad1'.*constant 1/);
    const grouped = (() => {
      const { b, x } = builder('grouped', 4, 4);
      const gc = b.addNode('Relu', [conv(b, x, 4, 6, 'g2', 3, 2)], {}, 'rg');
      return head(b, conv(b, gc, 6, 3, 'd'), 3);
    })();
    expect(code(() => shrinkGraph(grouped, { g2: [0] }))).toMatch(/^ERR_KILN_CANNOT_SHRINK: Cannot remove filter 0 of Conv 'g2': .*Conv 'g2'.*group 2 that is not depthwise/);
    expect(planShrink(grouped, { fraction: 0.5 }).groups.find((gr) => gr.convs[0] === 'g2')!.skipped).toMatch(/group 2/);
    // The planner skips what cannot shrink and says why.
    const plan = planShrink(sigmoid, { fraction: 0.5 });
    expect(plan.groups.find((gr) => gr.convs[0] === 'c')!.skipped).toMatch(/Sigmoid 'sig'/);
    expect(plan.removals.get('d')).toHaveLength(1);
  });
});
