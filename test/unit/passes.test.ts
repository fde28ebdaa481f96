/**
 * Module → Graph lowering and the graph passes: each pass keeps the outputs (checked by running
 * the graph before and after on the plan with further passes disabled), rewrites what it should,
 * leaves alone what it must not, and never mutates its input graph.
 */
import { describe, expect, it } from 'vitest';

import { toGraph } from '../../src/graph/from-module.js';
import { GraphBuilder, type Graph } from '../../src/graph/ir.js';
import { eliminateDeadNodes, eliminateIdentity, foldBatchNorm, fuseActivations, fuseGelu, optimizeGraph } from '../../src/graph/passes/index.js';
import { validateGraph } from '../../src/graph/validate-graph.js';
import { Dropout, Sequential } from '../../src/nn/index.js';
import { seedCNN } from '../../src/nn/models.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const rng = new Rng(5);
function tensor(dims: number[], lo = -1, hi = 1): Tensor<'float32'> {
  return new Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.uniform(lo, hi)), dims);
}

async function run(graph: Graph, x: Tensor): Promise<Tensor[]> {
  const session = await InferenceSession.create(graph, { graphOptimizationLevel: 'disabled' });
  const out = await session.run({ [session.inputNames[0]]: x });
  session.release();
  return session.outputNames.map((n) => out[n]);
}

async function expectSameOutputs(before: Graph, after: Graph, x: Tensor, tol: number): Promise<void> {
  const [a, b] = [await run(before, x), await run(after, x)];
  expect(b.length).toBe(a.length);
  a.forEach((t, k) => {
    let diff = 0, scale = 0;
    for (let i = 0; i < t.data.length; i++) {
      diff = Math.max(diff, Math.abs(t.data[i] - b[k].data[i]));
      scale = Math.max(scale, Math.abs(t.data[i]));
    }
    expect(scale, 'a non-zero output (else the comparison is vacuous)').toBeGreaterThan(0);
    expect(diff / scale).toBeLessThanOrEqual(tol);
  });
}

/** A deep snapshot of what a pass must not touch. */
function snapshot(g: Graph): string {
  return JSON.stringify({ nodes: g.nodes, inputs: g.inputs, outputs: g.outputs, init: [...g.initializers].map(([k, t]) => [k, t.dims, Array.from(t.data as Float32Array)]) });
}

const ops = (g: Graph) => g.nodes.map((n) => n.op);

/** x → Conv → BN → Relu → ConvTranspose → BN → Flatten → Gemm → BN(1-D) → Clip(0,6) → out, plus a BN-on-input branch. */
function bnGraph(): Graph {
  const b = new GraphBuilder('bn');
  const x = b.addInput('x', ['N', 3, 6, 6]);
  const bn = (input: string, c: number) =>
    b.addNode('BatchNormalization', [input, b.addInitializer('s', tensor([c], 0.5, 1.5)), b.addInitializer('b', tensor([c])), b.addInitializer('m', tensor([c])), b.addInitializer('v', tensor([c], 0.5, 2))], { epsilon: 1e-3 });
  const c1 = b.addNode('Conv', [x, b.addInitializer('w1', tensor([4, 3, 3, 3])), b.addInitializer('b1', tensor([4]))], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  const r1 = b.addNode('Relu', [bn(c1, 4)]);
  const t1 = b.addNode('ConvTranspose', [r1, b.addInitializer('wt', tensor([4, 1, 2, 2]))], { kernel_shape: [2, 2], strides: [2, 2], group: 2 });
  const f = b.addNode('Flatten', [bn(t1, 2)], { axis: 1 });
  const g = b.addNode('Gemm', [f, b.addInitializer('wg', tensor([5, 2 * 12 * 12])), b.addInitializer('bg', tensor([5]))], { transB: 1, alpha: 0.5, beta: 2 });
  const clip = b.addNode('Clip', [bn(g, 5)], { min: 0, max: 6 });
  const side = b.addNode('Relu', [bn(x, 3)]);
  return b.build([
    { name: clip, dtype: 'float32', shape: ['N', 5] },
    { name: side, dtype: 'float32', shape: ['N', 3, 6, 6] },
  ]);
}

describe('toGraph', () => {
  it('lowers SeedCNN to ONNX-named nodes with input "input" [N,1,28,28] and output "logits"', () => {
    const g = validateGraph(toGraph(seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 1 }), [1, 28, 28]));
    expect(ops(g)).toEqual(['Conv', 'Relu', 'MaxPool', 'Conv', 'Relu', 'MaxPool', 'Flatten', 'Gemm', 'Relu', 'Gemm']);
    expect(g.inputs).toEqual([{ name: 'input', dtype: 'float32', shape: ['N', 1, 28, 28] }]);
    expect(g.outputs).toEqual([{ name: 'logits', dtype: 'float32', shape: ['N', 10] }]);
    expect(g.nodes[g.nodes.length - 1].outputs).toEqual(['logits']);
    expect(g.nodes.find((n) => n.op === 'Gemm')!.attrs.transB).toBe(1);
  });

  it('keeps a graph for a model that lowers to nothing, and validates its arguments', () => {
    const g = validateGraph(toGraph(new Sequential(new Dropout(0.5)), [4]));
    expect(ops(g)).toEqual(['Identity']);
    expect(g.nodes[0].outputs).toEqual(['logits']);
    expect(() => toGraph({} as never, [1])).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_KILN_INVALID_ARG' }));
    expect(() => toGraph(new Dropout(), [0])).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_KILN_INVALID_ARG' }));
  });
});

describe('graph passes', () => {
  it('foldBatchNorm folds into Conv, ConvTranspose and Gemm, keeps a BN with no producer, and preserves outputs', async () => {
    const g = bnGraph();
    const before = snapshot(g);
    const folded = foldBatchNorm(g);
    expect(snapshot(g)).toBe(before);
    expect(ops(folded).filter((o) => o === 'BatchNormalization')).toHaveLength(1); // the one on the graph input
    validateGraph(folded);
    await expectSameOutputs(g, folded, tensor([3, 3, 6, 6]), 2e-6);
  });

  it('fuseActivations fuses Relu, Clip(0,6) as Relu6, LeakyRelu and a general Clip; not when the value is shared', async () => {
    const b = new GraphBuilder('act');
    const x = b.addInput('x', ['N', 2, 5, 5]);
    const c1 = b.addNode('Conv', [x, b.addInitializer('w1', tensor([3, 2, 3, 3]))], { kernel_shape: [3, 3] });
    const r1 = b.addNode('LeakyRelu', [c1], { alpha: 0.2 });
    const c2 = b.addNode('ConvTranspose', [r1, b.addInitializer('w2', tensor([3, 2, 2, 2], -2, 2))], { kernel_shape: [2, 2] });
    const r2 = b.addNode('Clip', [c2], { min: -0.5, max: 0.25 });
    const c3 = b.addNode('Conv', [r2, b.addInitializer('w3', tensor([2, 2, 1, 1]))], { kernel_shape: [1, 1] });
    const r3 = b.addNode('Relu', [c3]);
    const sum = b.addNode('Add', [c3, r3]); // c3 has two readers: its Relu must stay
    const f = b.addNode('Flatten', [sum], { axis: 1 });
    const gm = b.addNode('Gemm', [f, b.addInitializer('wg', tensor([32, 4], -3, 3))], {});
    const r4 = b.addNode('Clip', [gm], { min: 0, max: 3.4028234663852886e38 });
    const gm2 = b.addNode('Gemm', [r4, b.addInitializer('wg2', tensor([4, 3], -3, 3)), b.addInitializer('bg2', tensor([3], 1, 2))], {});
    const r5 = b.addNode('Clip', [gm2], { min: 0, max: 6 });
    const g = b.build([{ name: r5, dtype: 'float32', shape: ['N', 3] }]);
    const before = snapshot(g);
    const fused = fuseActivations(g);
    expect(snapshot(g)).toBe(before);
    expect(ops(fused)).toEqual(['Conv', 'ConvTranspose', 'Conv', 'Relu', 'Add', 'Flatten', 'Gemm', 'Gemm']);
    expect(fused.nodes.map((n) => n.attrs.kiln_activation ?? null)).toEqual(['LeakyRelu', 'Clip', null, null, null, null, 'Relu', 'Relu6']);
    expect(fused.nodes[0].attrs.kiln_activation_alpha).toBe(0.2);
    expect([fused.nodes[1].attrs.kiln_activation_min, fused.nodes[1].attrs.kiln_activation_max]).toEqual([-0.5, 0.25]);
    await expectSameOutputs(g, fused, tensor([4, 2, 5, 5]), 1e-6);
  });

  it('fuseGelu turns the exported erf form of GELU into one Gelu node, in any operand order; not with other constants or shared values', async () => {
    const b = new GraphBuilder('gelu');
    const x = b.addInput('x', ['N', 6]);
    const scalar = (name: string, v: number) => b.addInitializer(name, new Tensor('float32', Float32Array.of(v), []));
    const gemm = (input: string, k: number) => b.addNode('Gemm', [input, b.addInitializer('w', tensor([k, 6], -2, 2))], {});
    // PyTorch's form: Div by sqrt(2), Erf, Add 1, Mul by x, Mul by 0.5.
    const gelu = (v: string, o: { mulScale?: boolean; swap?: boolean; half?: number } = {}) => {
      const scaled = o.mulScale ? b.addNode('Mul', o.swap ? [scalar('r', Math.SQRT1_2), v] : [v, scalar('r', Math.SQRT1_2)]) : b.addNode('Div', [v, scalar('s', Math.SQRT2)]);
      const e = b.addNode('Erf', [scaled]);
      const a = b.addNode('Add', o.swap ? [scalar('one', 1), e] : [e, scalar('one', 1)]);
      const m = b.addNode('Mul', o.swap ? [a, v] : [v, a]);
      return b.addNode('Mul', o.swap ? [scalar('half', o.half ?? 0.5), m] : [m, scalar('half', o.half ?? 0.5)]);
    };
    const g1 = gelu(gemm(x, 6));
    const g2 = gelu(gemm(g1, 6), { mulScale: true, swap: true });
    const g3 = gelu(gemm(g2, 6), { half: 0.49 }); // not GELU: stays five nodes
    const h = gemm(g3, 6);
    const scaled = b.addNode('Div', [h, scalar('s', Math.SQRT2)]);
    const e = b.addNode('Erf', [scaled]);
    const a = b.addNode('Add', [e, scalar('one', 1)]);
    const m = b.addNode('Mul', [h, a]);
    const y = b.addNode('Mul', [m, scalar('half', 0.5)]);
    const both = b.addNode('Add', [y, e]); // the Erf's output has a second reader: stays
    const g = b.build([{ name: both, dtype: 'float32', shape: ['N', 6] }]);
    const before = snapshot(g);
    const fused = fuseGelu(g);
    expect(snapshot(g)).toBe(before);
    expect(ops(fused)).toEqual([
      'Gemm', 'Gelu', 'Gemm', 'Gelu', 'Gemm', 'Div', 'Erf', 'Add', 'Mul', 'Mul', 'Gemm', 'Div', 'Erf', 'Add', 'Mul', 'Mul', 'Add',
    ]);
    expect(fused.nodes.filter((n) => n.op === 'Gelu').map((n) => n.attrs.approximate)).toEqual(['none', 'none']);
    validateGraph(eliminateDeadNodes(fused));
    // Inputs of up to +-8 reach GELU's tails and its curved middle.
    await expectSameOutputs(g, fused, tensor([5, 6], -4, 4), 1e-6);
    // Only at 'all', with the other fusions that are not bit for bit.
    expect(ops(optimizeGraph(g, 'all')).filter((op) => op === 'Gelu')).toHaveLength(2);
    expect(ops(optimizeGraph(g, 'extended')).filter((op) => op === 'Gelu')).toHaveLength(0);
  });

  it('eliminateIdentity removes Identity/Dropout chains, also before a graph output', async () => {
    const b = new GraphBuilder('id');
    const x = b.addInput('x', ['N', 4]);
    const i1 = b.addNode('Identity', [x]);
    const r = b.addNode('Relu', [i1]);
    const d = b.addNode('Dropout', [r], { ratio: 0.5 });
    const i2 = b.addNode('Identity', [d]);
    const s = b.addNode('Sigmoid', [i1]);
    const i3 = b.addNode('Identity', [s]);
    const g = b.build([
      { name: i2, dtype: 'float32', shape: ['N', 4] },
      { name: i3, dtype: 'float32', shape: ['N', 4] },
    ]);
    const before = snapshot(g);
    const out = eliminateIdentity(g);
    expect(snapshot(g)).toBe(before);
    validateGraph(out);
    expect(ops(out)).toEqual(['Relu', 'Identity', 'Sigmoid']);
    expect(out.outputs.map((o) => o.name)).toEqual([i2, i3]);
    await expectSameOutputs(g, out, tensor([3, 4]), 0);
  });

  it("eliminateIdentity removes a one-input Concat and a Pad of nothing (DenseNet's), and keeps real ones", async () => {
    const b = new GraphBuilder('copies');
    const x = b.addInput('x', ['N', 2, 3, 3]);
    const one = b.addNode('Concat', [x], { axis: 1 });
    const zero = b.addNode('Pad', [b.addNode('Relu', [one])], { pads: [0, 0, 0, 0, 0, 0, 0, 0], mode: 'constant', value: 0 });
    const padded = b.addNode('Pad', [zero], { pads: [0, 0, 1, 0, 0, 0, 0, 1], mode: 'constant', value: 0 });
    const two = b.addNode('Concat', [padded, padded], { axis: 1 });
    const g = b.build([{ name: two, dtype: 'float32', shape: ['N', 4, 4, 4] }]);
    const out = eliminateIdentity(g);
    validateGraph(out);
    expect(ops(out)).toEqual(['Relu', 'Pad', 'Concat']);
    expect(out.nodes[0].inputs[0]).toBe(x);
    await expectSameOutputs(g, out, tensor([2, 2, 3, 3]), 0);
  });

  it('eliminateDeadNodes drops unread nodes and unused initializers', () => {
    const b = new GraphBuilder('dead');
    const x = b.addInput('x', ['N', 4]);
    const y = b.addNode('Relu', [x]);
    const dead = b.addNode('Add', [x, b.addInitializer('unused', tensor([4]))]);
    b.addNode('Sigmoid', [dead]);
    const g = b.build([{ name: y, dtype: 'float32', shape: ['N', 4] }]);
    const out = eliminateDeadNodes(g);
    expect(ops(out)).toEqual(['Relu']);
    expect(out.initializers.size).toBe(0);
    expect(g.nodes).toHaveLength(3);
  });

  it('optimizeGraph levels: disabled keeps the graph, basic folds, all also fuses; outputs agree', async () => {
    const g = bnGraph();
    expect(optimizeGraph(g, 'disabled')).toBe(g);
    const basic = optimizeGraph(g, 'basic');
    const all = optimizeGraph(g, 'all');
    expect(ops(basic)).toContain('Relu');
    expect(all.nodes.filter((n) => n.attrs.kiln_activation !== undefined).length).toBeGreaterThanOrEqual(2);
    const x = tensor([2, 3, 6, 6]);
    await expectSameOutputs(g, basic, x, 2e-6);
    await expectSameOutputs(g, all, x, 2e-6);
  });

  it('a test of the checker: a wrong fold is caught', async () => {
    const g = bnGraph();
    const folded = foldBatchNorm(g);
    const conv = folded.nodes.find((n) => n.op === 'Conv')!;
    const bias = folded.initializers.get(conv.inputs[2])!;
    const broken = new Map(folded.initializers);
    const data = (bias.data as Float32Array).slice();
    data[0] += 0.5;
    broken.set(conv.inputs[2], new Tensor('float32', data, bias.dims));
    await expect(expectSameOutputs(g, { ...folded, initializers: broken }, tensor([2, 3, 6, 6]), 2e-6)).rejects.toThrow();
  });
});

describe('validateGraph', () => {
  it('refuses undefined inputs, duplicate names and missing outputs', () => {
    const b = new GraphBuilder('bad');
    const x = b.addInput('x', ['N', 2]);
    const y = b.addNode('Relu', [x]);
    const g = b.build([{ name: y, dtype: 'float32', shape: ['N', 2] }]);
    const err = { code: 'ERR_KILN_INVALID_ARG' };
    expect(() => validateGraph({ ...g, nodes: [{ ...g.nodes[0], inputs: ['nope'] }] })).toThrow(expect.objectContaining({ name: 'RangeError', ...err }));
    expect(() => validateGraph({ ...g, nodes: [g.nodes[0], { ...g.nodes[0], name: 'other' }] })).toThrow(expect.objectContaining({ name: 'RangeError', ...err }));
    expect(() => validateGraph({ ...g, outputs: [{ name: 'missing', dtype: 'float32', shape: [] }] })).toThrow(expect.objectContaining({ name: 'RangeError', ...err }));
    expect(() => validateGraph({ ...g, initializers: {} as never })).toThrow(expect.objectContaining({ name: 'TypeError', ...err }));
    expect(() => validateGraph({ ...g, outputs: [g.outputs[0], g.outputs[0]] })).toThrow(expect.objectContaining({ name: 'RangeError', ...err }));
  });
});
