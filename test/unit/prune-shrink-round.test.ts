/**
 * Shrink planning as the CLI uses it: `roundTo` rounds each group's kept channel count up to a
 * multiple (and the shrunk graph still equals the masked one), `planZeroFilters` removes exactly
 * the filters a filter pruning zeroed, and naming a layer that exists but has no prunable weight
 * is refused differently from naming one that does not exist (Module layers and graph nodes).
 */
import { describe, expect, it } from 'vitest';

import { toGraph } from '../../src/graph/from-module.js';
import { GraphBuilder, type Graph } from '../../src/graph/ir.js';
import { seedCNN } from '../../src/nn/models.js';
import { prune } from '../../src/prune/prune.js';
import { maskGraph, planShrink, planZeroFilters, shrinkGraph } from '../../src/prune/shrink/index.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const rng = new Rng(5);
function tensor(dims: number[], lo = -1, hi = 1): Tensor<'float32'> {
  return new Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.uniform(lo, hi)), dims);
}

async function outputs(graph: Graph, x: Tensor): Promise<Float32Array> {
  const session = await InferenceSession.create(graph);
  try {
    return (await session.run({ [session.inputNames[0]]: x }))[session.outputNames[0]].data as Float32Array;
  } finally {
    session.release();
  }
}

/** max |b - a| / max |a|. */
function relError(a: Float32Array, b: Float32Array): number {
  expect(b.length).toBe(a.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  expect(scale).toBeGreaterThan(0);
  return diff / scale;
}

/** conv0(40) BN Relu -> conv1(24) Relu -> [conv2(40) + skip] Relu -> conv3(20) Relu -> GAP -> Gemm. */
function residual(): Graph {
  const b = new GraphBuilder('round');
  const x = b.addInput('x', ['N', 3, 6, 6]);
  const attrs = { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 };
  const conv = (input: string, cin: number, cout: number, name: string) =>
    b.addNode('Conv', [input, b.addInitializer(`${name}_w`, tensor([cout, cin, 3, 3])), b.addInitializer(`${name}_b`, tensor([cout], -0.1, 0.1))], attrs, name);
  const bn = b.addNode(
    'BatchNormalization',
    [conv(x, 3, 40, 'conv0'), b.addInitializer('s', tensor([40], 0.5, 1.5)), b.addInitializer('bb', tensor([40], -0.2, 0.2)), b.addInitializer('m', tensor([40], -0.2, 0.2)), b.addInitializer('v', tensor([40], 0.5, 1.5))],
    { epsilon: 1e-5 },
    'bn0',
  );
  const a = b.addNode('Relu', [bn], {}, 'relu0');
  const r1 = b.addNode('Relu', [conv(a, 40, 24, 'conv1')], {}, 'relu1');
  const sum = b.addNode('Relu', [b.addNode('Add', [conv(r1, 24, 40, 'conv2'), a], {}, 'add')], {}, 'relu2');
  const r3 = b.addNode('Relu', [conv(sum, 40, 20, 'conv3')], {}, 'relu3');
  const f = b.addNode('Flatten', [b.addNode('GlobalAveragePool', [r3], {}, 'gap')], { axis: 1 }, 'flatten');
  const y = b.addNode('Gemm', [f, b.addInitializer('fc_w', tensor([5, 20])), b.addInitializer('fc_b', tensor([5]))], { alpha: 1, beta: 1, transA: 0, transB: 1 }, 'fc');
  return b.build([{ name: y, dtype: 'float32', shape: ['N', 5] }]);
}

const failure = (f: () => unknown): { name: string; code?: string; message: string } => {
  try {
    f();
  } catch (err) {
    return { name: (err as Error).name, code: (err as { code?: string }).code, message: (err as Error).message };
  }
  throw new Error('expected a throw');
};

describe('planShrink roundTo: kept counts rounded up to a multiple', () => {
  it('each group keeps a multiple of roundTo (up, never below the fraction), and shrunk == masked within 1e-5', async () => {
    const g = residual();
    // 30% of 40 = 12 removed -> 28 kept -> up to 32 with roundTo 16; 24 -> 17 kept -> 24 (whole: rounding up passes it)
    // 20 -> 14 kept -> 16.
    const plan = planShrink(g, { fraction: 0.3, roundTo: 16 });
    const kept = Object.fromEntries(plan.groups.map((gr) => [gr.convs.join('+'), gr.channels - gr.removed]));
    expect(kept).toEqual({ 'conv0+conv2': 32, conv1: 24, conv3: 16 });
    const { graph, report } = shrinkGraph(g, plan.removals);
    expect(report.channels).toEqual({ conv0: { before: 40, after: 32 }, conv2: { before: 40, after: 32 }, conv3: { before: 20, after: 16 } });
    const x = tensor([2, 3, 6, 6]);
    expect(relError(await outputs(maskGraph(g, plan.removals), x), await outputs(graph, x))).toBeLessThanOrEqual(1e-5);
    // Without rounding the same fraction keeps 28, 17 and 14: rounding changed the plan.
    const plain = planShrink(g, { fraction: 0.3 });
    expect(plain.groups.map((gr) => gr.channels - gr.removed)).toEqual([28, 17, 14]);
  });

  it('roundTo must be a positive integer', () => {
    for (const roundTo of [0, -16, 1.5, NaN, '16' as unknown as number]) {
      const e = failure(() => planShrink(residual(), { fraction: 0.5, roundTo }));
      expect(e.code).toBe('ERR_KILN_INVALID_ARG');
      expect(e.message).toMatch(/options\.roundTo/);
    }
  });
});

describe('planZeroFilters: the filters a filter pruning zeroed', () => {
  it('a SeedCNN pruned by filter: exactly its zero filters go, the output is unchanged, roundTo keeps zero channels', async () => {
    const model = seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 3, widthMultiplier: 0.5, seed: 4 });
    await prune(model, undefined, { sparsity: 0.6, pattern: 'filter', schedule: 'oneshot', epochs: 0, layers: ['3'] });
    const w = model.parameters().find((p) => p.name === '3.weight')!.value;
    const per = w.size / w.dims[0];
    const zero = Array.from({ length: w.dims[0] }, (_, o) => o).filter((o) => w.data.subarray(o * per, (o + 1) * per).every((v) => v === 0));
    expect(zero).toHaveLength(Math.floor(0.6 * 32));
    const g = toGraph(model, [1, 12, 12]);
    const conv = g.nodes.find((n) => n.op === 'Conv' && n.inputs[1] === '3.weight')!.name;
    const plan = planZeroFilters(g);
    expect(plan.removals).toEqual(new Map([[conv, zero]]));
    const { graph } = shrinkGraph(g, plan.removals);
    const x = tensor([2, 1, 12, 12]);
    // Zero filters (and biases) removed: the pruned model itself is what the shrunk one equals.
    expect(relError(await outputs(g, x), await outputs(graph, x))).toBeLessThanOrEqual(1e-5);
    // 32 - 19 = 13 kept -> 16: three zero channels stay.
    const rounded = planZeroFilters(g, { roundTo: 8 });
    expect(rounded.removals.get(conv)).toHaveLength(16);
    expect(rounded.removals.get(conv)!.every((f) => zero.includes(f))).toBe(true);
    expect(relError(await outputs(g, x), await outputs(shrinkGraph(g, rounded.removals).graph, x))).toBeLessThanOrEqual(1e-5);
    // A dense model has nothing to remove.
    expect(planZeroFilters(toGraph(seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 3, seed: 4 }), [1, 12, 12])).removals.size).toBe(0);
  });
});

describe('a layer that exists but has no prunable weight', () => {
  const model = () => seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 3, widthMultiplier: 0.25, seed: 1 });

  it('prune() names it and says what it is (TypeError), unlike an unknown name (RangeError)', async () => {
    // SeedCNN: 0 Conv2d, 1 ReLU, 2 MaxPool2d, 3 Conv2d, ... 6 Flatten, 7 Linear.
    for (const [name, type] of [['1', 'ReLU'], ['2', 'MaxPool2d'], ['6', 'Flatten']]) {
      const err = await prune(model(), undefined, { sparsity: 0.5, schedule: 'oneshot', epochs: 0, layers: ['3', name] }).then(() => undefined, (e: Error & { code?: string }) => e);
      expect(err).toBeInstanceOf(TypeError);
      expect(err!.code).toBe('ERR_KILN_INVALID_ARG');
      expect(err!.message).toContain(`options.layers[1] but received '${name}', a ${type} layer which has no weight to prune`);
    }
    const unknown = await prune(model(), undefined, { sparsity: 0.5, schedule: 'oneshot', epochs: 0, layers: ['pool'] }).then(() => undefined, (e: Error & { code?: string }) => e);
    expect(unknown).toBeInstanceOf(RangeError);
    expect(unknown!.code).toBe('ERR_KILN_INVALID_ARG');
    expect(unknown!.message).toMatch(/received 'pool': the model's prunable layers are '0'/);
  });

  it('planShrink: a graph node that is not a Conv is named with its op (TypeError), an unknown one is not a node (RangeError)', () => {
    const relu = failure(() => planShrink(residual(), { fraction: 0.5, layers: ['conv1', 'relu1'] }));
    expect(relu).toMatchObject({ name: 'TypeError', code: 'ERR_KILN_INVALID_ARG' });
    expect(relu.message).toMatch(/options\.layers\[1\] .*'relu1' is a Relu node, which has no filters to remove; its Conv nodes are 'conv0', 'conv1'/);
    const gemm = failure(() => planShrink(residual(), { fraction: 0.5, layers: ['fc'] }));
    expect(gemm).toMatchObject({ name: 'TypeError', code: 'ERR_KILN_INVALID_ARG' });
    expect(gemm.message).toMatch(/'fc' is a Gemm node/);
    const missing = failure(() => planShrink(residual(), { fraction: 0.5, layers: ['conv9'] }));
    expect(missing).toMatchObject({ name: 'RangeError', code: 'ERR_KILN_INVALID_ARG' });
    expect(missing.message).toMatch(/'conv9' is not a node of it/);
  });
});
