/**
 * Shapes beyond one image batch: inputs without a batch dimension (scalars, 1-D vectors), several
 * inputs of different leading sizes (Gemm's A, B and C all fed), dynamic dimensions resolved per
 * run, and shape arithmetic over a dynamic batch that reads only static entries. Every result is
 * compared with onnxruntime on the same file.
 */
import { describe, expect, it } from 'vitest';

import { foldNode, type SymbolicValue } from '../../src/graph/constant-folding.js';
import { compareWithOnnxRuntime } from '../../src/onnx/compare.js';
import { importModel } from '../../src/onnx/import.js';
import type { Graph, ValueInfo } from '../../src/graph/ir.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { needsUnitBatch, withUnitBatch } from '../../src/runtime/unit-batch.js';
import { Tensor } from '../../src/tensor.js';
import { attr, floatTensor, int64Tensor, maxScaledDiff, model, node, randomData, runOrt, valueInfo, type ModelSpec } from './onnx-model-builder.js';

const feed = (dims: number[], seed: number): Tensor => new Tensor('float32', randomData(dims.reduce((a, b) => a * b, 1), seed), dims);

async function expectLikeOrt(spec: ModelSpec, feeds: Record<string, Tensor>): Promise<void> {
  const result = await compareWithOnnxRuntime(model(spec), feeds);
  for (const out of result.outputs) expect(out.relL2, out.name).toBeLessThanOrEqual(1e-5);
}

describe('inputs that share no batch dimension', () => {
  it('Gemm with A, B and C all fed, scaled by alpha and beta', async () => {
    await expectLikeOrt({
      opset: 13,
      inputs: [valueInfo('a', [3, 5]), valueInfo('b', [5, 4]), valueInfo('c', [1, 4])],
      outputs: [valueInfo('y')],
      nodes: [node('Gemm', ['a', 'b', 'c'], ['y'], [attr.f('alpha', 0.5), attr.f('beta', 2)])],
    }, { a: feed([3, 5], 1), b: feed([5, 4], 2), c: feed([1, 4], 3) });
  });

  it('Gemm with fed operands and the activations the passes fuse into it (Relu, Clip 0..6)', async () => {
    await expectLikeOrt({
      opset: 13,
      inputs: [valueInfo('a', [3, 5]), valueInfo('b', [5, 4])],
      outputs: [valueInfo('y'), valueInfo('z')],
      initializers: [floatTensor('lo', [], [0]), floatTensor('hi', [], [6])],
      nodes: [node('Gemm', ['a', 'b'], ['g'], [attr.f('alpha', 3)]), node('Relu', ['g'], ['y']), node('Gemm', ['a', 'b'], ['h'], [attr.f('alpha', 9)]), node('Clip', ['h', 'lo', 'hi'], ['z'])],
    }, { a: feed([3, 5], 1), b: feed([5, 4], 2) });
  });

  for (const cShape of [[4], [1], []]) {
    it(`Gemm with a fed bias of shape [${cShape.join(', ')}]`, async () => {
      await expectLikeOrt({
        opset: 13,
        inputs: [valueInfo('a', [3, 5]), valueInfo('b', [5, 4]), valueInfo('c', cShape)],
        outputs: [valueInfo('y')],
        nodes: [node('Gemm', ['a', 'b', 'c'], ['y'], [attr.f('beta', 0.5)])],
      }, { a: feed([3, 5], 1), b: feed([5, 4], 2), c: feed(cShape, 3) });
    });
  }

  for (const [aShape, bShape] of [[[1, 2, 3, 4], [4]], [[4], [2, 4, 3]], [[4], [4]], [[2, 3], [3]]]) {
    it(`MatMul of fed operands [${aShape!.join(', ')}] x [${bShape!.join(', ')}] (vectors among them)`, async () => {
      await expectLikeOrt({
        opset: 13,
        inputs: [valueInfo('a', aShape!), valueInfo('b', bShape!)],
        outputs: [valueInfo('y')],
        nodes: [node('MatMul', ['a', 'b'], ['y'])],
      }, { a: feed(aShape!, 1), b: feed(bShape!, 2) });
    });
  }

  it('Gemm with transposed fed operands', async () => {
    await expectLikeOrt({
      opset: 11,
      inputs: [valueInfo('a', [5, 3]), valueInfo('b', [4, 5])],
      outputs: [valueInfo('y')],
      nodes: [node('Gemm', ['a', 'b'], ['y'], [attr.i('transA', 1), attr.i('transB', 1)])],
    }, { a: feed([5, 3], 1), b: feed([4, 5], 2) });
  });

  it('a second input of another leading size broadcasts', async () => {
    await expectLikeOrt({
      opset: 13,
      inputs: [valueInfo('x', [3, 4, 5]), valueInfo('z', [5])],
      outputs: [valueInfo('y')],
      nodes: [node('Add', ['x', 'z'], ['s']), node('Softmax', ['s'], ['y'], [attr.i('axis', 0)])],
    }, { x: feed([3, 4, 5], 1), z: feed([5], 2) });
  });

  it('a scalar input, and a scalar times a vector', async () => {
    await expectLikeOrt({
      opset: 13,
      inputs: [valueInfo('s', []), valueInfo('v', [4])],
      outputs: [valueInfo('y'), valueInfo('r')],
      nodes: [node('Mul', ['s', 'v'], ['y']), node('Relu', ['s'], ['r'])],
    }, { s: feed([], 1), v: feed([4], 2) });
  });

  it('dynamic leading sizes of two inputs are resolved per run (one plan per shape signature)', async () => {
    const bytes = model({
      opset: 13,
      inputs: [valueInfo('x', ['M', 4]), valueInfo('w', ['K', 4])],
      outputs: [valueInfo('y')],
      nodes: [node('Transpose', ['w'], ['wt'], [attr.ints('perm', [1, 0])]), node('MatMul', ['x', 'wt'], ['y'])],
    });
    const session = await InferenceSession.create(bytes);
    try {
      for (const [m, k] of [[2, 6], [5, 3], [2, 6]] as const) {
        const feeds = { x: feed([m, 4], m), w: feed([k, 4], k + 10) };
        const ours = await session.run(feeds);
        const ort = await runOrt(bytes, Object.fromEntries(Object.entries(feeds).map(([n, t]) => [n, { data: t.data as Float32Array, dims: t.dims.slice() }])));
        expect(ours.y!.dims).toEqual(ort.y!.dims);
        expect(maxScaledDiff(ours.y!.data, ort.y!.data)).toBeLessThanOrEqual(1e-6);
      }
      // A shape the graph fixes is still checked.
      await expect(session.run({ x: feed([2, 5], 1), w: feed([3, 4], 2) })).rejects.toMatchObject({ code: 'ERR_KILN_SHAPE_MISMATCH' });
    } finally {
      session.release();
    }
  });

  it('a symbolic batch the batch-major plan cannot keep leading runs inside the image, planned per batch size', async () => {
    const spec: ModelSpec = {
      opset: 13,
      inputs: [valueInfo('x', ['N', 3])],
      outputs: [valueInfo('y'), valueInfo('twice')],
      nodes: [node('Softmax', ['x'], ['y'], [attr.i('axis', 0)]), node('Concat', ['x', 'x'], ['twice'], [attr.i('axis', 0)])],
    };
    const session = await InferenceSession.create(model(spec));
    try {
      for (const batch of [2, 4, 2]) {
        const x = feed([batch, 3], batch);
        const ours = await session.run({ x });
        const ort = await runOrt(model(spec), { x: { data: x.data as Float32Array, dims: [batch, 3] } });
        for (const name of ['y', 'twice']) {
          expect(ours[name]!.dims).toEqual(ort[name]!.dims);
          expect(maxScaledDiff(ours[name]!.data, ort[name]!.data)).toBeLessThanOrEqual(1e-6);
        }
        expect(session.runSync({ x }).twice!.dims).toEqual([2 * batch, 3]);
      }
    } finally {
      session.release();
    }
  });

  it('fully static inputs are planned at create: info() describes the plan before any run', async () => {
    const session = await InferenceSession.create(model({
      opset: 13,
      inputs: [valueInfo('a', [3, 5]), valueInfo('b', [5, 4])],
      outputs: [valueInfo('y')],
      nodes: [node('Gemm', ['a', 'b'], ['y'])],
    }));
    try {
      expect(session.info().steps.length).toBeGreaterThan(0);
      expect(session.outputShapes).toEqual([[3, 4]]);
      const out = session.runSync({ a: feed([3, 5], 1), b: feed([5, 4], 2) });
      expect(out.y!.dims).toEqual([3, 4]);
    } finally {
      session.release();
    }
  });

  it('a convolution over inputs without a shared batch is refused as unsupported, named', async () => {
    const bytes = model({
      opset: 13,
      inputs: [valueInfo('x', [1, 1, 4, 4]), valueInfo('z', [4])],
      outputs: [valueInfo('y')],
      initializers: [{ name: 'w', dims: [1, 1, 3, 3], dataType: 1, floatData: Array.from(randomData(9, 1)) }],
      nodes: [node('Add', ['x', 'z'], ['s']), node('Conv', ['s', 'w'], ['y'], [], 'conv')],
    });
    // Refused at create: the inputs are fully static, so the plan is built there.
    await expect(InferenceSession.create(bytes))
      .rejects.toMatchObject({ code: 'ERR_KILN_UNSUPPORTED_OP', message: expect.stringContaining("Conv 'conv'") });
  });
});

describe('the unit-batch rewrite', () => {
  const graph = (op: string, attrs: Graph['nodes'][number]['attrs'], inputs: ValueInfo[] = [{ name: 'x', dtype: 'float32', shape: [3, 4] }, { name: 'z', dtype: 'float32', shape: [4] }]): Graph => ({
    name: 'g',
    inputs,
    outputs: [{ name: 'y', dtype: 'float32', shape: [] }],
    nodes: [{ name: 'n', op, inputs: inputs.map((i) => i.name), outputs: ['y'], attrs }],
    initializers: new Map(),
  });

  it('is chosen when inputs differ in leading size or one is a scalar, not for one shared batch', () => {
    expect(needsUnitBatch(graph('Add', {}))).toBe(true);
    expect(needsUnitBatch(graph('Add', {}, [{ name: 'x', dtype: 'float32', shape: ['N', 4] }, { name: 'z', dtype: 'float32', shape: ['N', 2] }]))).toBe(false);
    expect(needsUnitBatch(graph('Relu', {}, [{ name: 'x', dtype: 'float32', shape: [] }]))).toBe(true);
  });

  it('shifts the axes of ops it does not list and refuses ops that take shapes from their inputs', () => {
    const one: ValueInfo[] = [{ name: 'x', dtype: 'float32', shape: [3, 4] }];
    const reduce = withUnitBatch(graph('ReduceSum', { axes: [0, -1], keepdims: 1 }, one), [[3, 4]]);
    expect(reduce.nodes[0]!.attrs.axes).toEqual([1, -1]);
    expect(reduce.inputs[0]!.shape).toEqual([1, 3, 4]);
    // Canonical Reduce* nodes list their axes (import makes ONNX's empty axes explicit).
    expect(withUnitBatch(graph('ReduceSum', { axes: [0, 1], keepdims: 0 }, one), [[3, 4]]).nodes[0]!.attrs.axes).toEqual([1, 2]);
    expect(() => withUnitBatch(graph('Gather', { axis: 0 }), [[3, 4], [4]])).toThrow(/Gather 'n'.*whole shape or values/);
  });
});

describe('shape arithmetic over a dynamic batch folds the static entries', () => {
  const i64 = (name: string, v: number[], dims: number[] = [v.length]) => int64Tensor(name, dims, v);
  /** A dynamo-style channel split: shape // [1, 2, 1, 1], sliced, the batch via Shape(start, end) and Reshapes. */
  const spec: ModelSpec = {
    opset: 18,
    inputs: [valueInfo('x', ['N', 4, 3, 3])],
    outputs: [valueInfo('y')],
    initializers: [i64('scalar', [], [0]), i64('vec', [1]), i64('div', [1, 2, 1, 1]), i64('st', [0]), i64('en', [2]), i64('two', [2]), i64('hw', [9]), i64('keep', [0, 1, 3, 4])],
    nodes: [
      node('Shape', ['x'], ['s']),
      node('Div', ['s', 'div'], ['half']),
      node('Slice', ['half', 'st', 'en'], ['nc']),
      node('Shape', ['x'], ['n1'], [attr.i('start', 0), attr.i('end', 1)]),
      node('Reshape', ['n1', 'scalar'], ['n0']),
      node('Reshape', ['n0', 'vec'], ['nv']),
      node('Concat', ['nv', 'two', 'nc', 'hw'], ['shp0'], [attr.i('axis', 0)]),
      node('Gather', ['shp0', 'keep'], ['shp'], [attr.i('axis', 0)]),
      node('Reshape', ['x', 'shp'], ['y']),
    ],
  };

  it('imports to one static Reshape and runs like onnxruntime at several batch sizes', async () => {
    const graph = await importModel(model(spec));
    expect(graph.nodes.map((n) => [n.op, n.attrs.shape])).toEqual([['Reshape', [0, 2, 2, 9]]]);
    for (const batch of [2, 3]) await expectLikeOrt(spec, { x: feed([batch, 4, 3, 3], batch) });
  });

  it('folds entry by entry: static pairs computed, a symbol against the identity kept', () => {
    const shape: SymbolicValue = { kind: 'symbolic', dims: ['N', 4, 3, 3], scalar: false };
    const div = new Tensor('int32', Int32Array.of(1, 2, 1, 1), [4]);
    const node = { name: 'd', op: 'Div', inputs: ['s', 'div'], outputs: ['o'], attrs: {} };
    expect(foldNode(node, [shape, div])).toEqual([{ kind: 'symbolic', dims: ['N', 2, 3, 3], scalar: false }]);
    // N / 2 has no static value: not folded.
    expect(foldNode(node, [shape, new Tensor('int32', Int32Array.of(2, 2, 1, 1), [4])])).toBeUndefined();
  });
});
