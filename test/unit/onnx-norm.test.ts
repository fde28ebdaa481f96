/**
 * Normalizations (LayerNormalization, InstanceNormalization, GroupNormalization opset 18 and 21)
 * and the conv/pool/Gemm variants of issue 14: each model imported, exported again (ORT on the
 * round trip equals ORT on the original) and run on Kiln's runtime against ORT on the original,
 * on every ISA this CPU has (setIsa switches the dispatch table the kernels come from). A
 * ConvNeXt-like block (depthwise 7x7, permute, LayerNorm over channels, MLP, permute back,
 * residual) checks the pieces together.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { ErrorCode } from '../../src/errors.js';
import { type Graph, GraphBuilder } from '../../src/graph/ir.js';
import { compareWithOnnxRuntime } from '../../src/onnx/compare.js';
import { compareInt8WithOnnxRuntime } from '../../src/onnx/compare-int8.js';
import { exportModel } from '../../src/onnx/export.js';
import { importModel } from '../../src/onnx/import.js';
import { quantize } from '../../src/quant/ptq.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { cpuInfo, setIsa } from '../../src/system.js';
import { Tensor } from '../../src/tensor.js';
import { attr, floatTensor, maxScaledDiff, model, node, randomData, randomTensor, runOrt, valueInfo, type ModelSpec } from './onnx-model-builder.js';

const ISAS = cpuInfo().supportedIsas;
const ORIGINAL_ISA = cpuInfo().isa;
afterAll(() => setIsa(ORIGINAL_ISA));

interface Case {
  name: string;
  spec: ModelSpec;
  feeds: Record<string, number[]>;
  check?: (g: Graph) => void;
  /** The runtime refuses it (ERR_KILN_UNSUPPORTED_OP, message matching). */
  refused?: RegExp;
  /** Skip the ORT round trip of export(import(model)). */
  noExport?: boolean;
}

const ops = (g: Graph): string[] => g.nodes.map((n) => n.op);

function one(opset: number, op: string, shape: (number | string)[], attrs: ReturnType<typeof attr.i>[], extra: string[] = [], initializers: ModelSpec['initializers'] = [], outputs = ['y']): ModelSpec {
  return { opset, inputs: [valueInfo('x', shape)], outputs: [valueInfo('y')], nodes: [node(op, ['x', ...extra], outputs, attrs)], initializers };
}

const cases: Case[] = [
  {
    name: 'LayerNormalization opset 17 over the last axis (NHWC channels)',
    spec: one(17, 'LayerNormalization', ['N', 5, 6, 24], [], ['s', 'b'], [randomTensor('s', [24], 1), randomTensor('b', [24], 2)]),
    feeds: { x: [2, 5, 6, 24] },
    check: (g) => expect(g.nodes[0]!.attrs).toEqual({ axis: 3, epsilon: 1e-5 }),
  },
  {
    name: 'LayerNormalization over two trailing axes, no bias, epsilon 1e-3',
    spec: one(17, 'LayerNormalization', ['N', 3, 7, 9], [attr.i('axis', -2), attr.f('epsilon', 1e-3)], ['s'], [randomTensor('s', [7, 9], 3)]),
    feeds: { x: [3, 3, 7, 9] },
  },
  {
    name: 'LayerNormalization over every per-image axis (axis 1), odd shape',
    spec: one(17, 'LayerNormalization', ['N', 3, 5, 7], [attr.i('axis', 1)], ['s', 'b'], [randomTensor('s', [3, 5, 7], 4), randomTensor('b', [3, 5, 7], 5)]),
    feeds: { x: [2, 3, 5, 7] },
  },
  {
    name: 'LayerNormalization on a token matrix [N, 17, 33] with stash_type 1',
    spec: one(17, 'LayerNormalization', ['N', 17, 33], [attr.i('stash_type', 1)], ['s', 'b'], [randomTensor('s', [33], 6), randomTensor('b', [33], 7)]),
    feeds: { x: [2, 17, 33] },
  },
  {
    name: 'LayerNormalization with its Mean and InvStdDev outputs read',
    spec: {
      ...one(17, 'LayerNormalization', ['N', 3, 4, 5], [attr.i('axis', 2)], ['s', 'b'], [randomTensor('s', [4, 5], 57), randomTensor('b', [4, 5], 58)], ['y', 'mean', 'inv']),
      outputs: [valueInfo('y'), valueInfo('mean'), valueInfo('inv')],
    },
    feeds: { x: [2, 3, 4, 5] },
    check: (g) => expect(g.outputs.map((o) => o.shape)).toEqual([['N', 3, 4, 5], ['N', 3, 1, 1], ['N', 3, 1, 1]]),
  },
  {
    name: 'LayerNormalization with only InvStdDev read besides Y',
    spec: {
      ...one(17, 'LayerNormalization', ['N', 7, 9], [], ['s'], [randomTensor('s', [9], 59)], ['y', '', 'inv']),
      outputs: [valueInfo('y'), valueInfo('inv')],
    },
    feeds: { x: [3, 7, 9] },
  },
  {
    // The plan keeps the batch leading, so this one runs on the unit-batch path (runtime/unit-batch.ts).
    name: 'LayerNormalization over the batch axis (the whole tensor)',
    spec: one(17, 'LayerNormalization', [2, 3, 4], [attr.i('axis', 0)], ['s'], [randomTensor('s', [2, 3, 4], 8)]),
    feeds: { x: [2, 3, 4] },
  },
  {
    name: 'InstanceNormalization opset 7 on images',
    spec: one(7, 'InstanceNormalization', ['N', 6, 7, 9], [attr.f('epsilon', 1e-4)], ['s', 'b'], [randomTensor('s', [6], 9), randomTensor('b', [6], 10)]),
    feeds: { x: [2, 6, 7, 9] },
  },
  {
    name: 'InstanceNormalization on 1-D signals [N, 4, 11]',
    spec: one(13, 'InstanceNormalization', ['N', 4, 11], [], ['s', 'b'], [randomTensor('s', [4], 11), randomTensor('b', [4], 12)]),
    feeds: { x: [3, 4, 11] },
  },
  {
    name: 'GroupNormalization opset 18 (per-group scale and bias)',
    spec: one(18, 'GroupNormalization', ['N', 6, 5, 5], [attr.i('num_groups', 2)], ['s', 'b'], [randomTensor('s', [2], 13), randomTensor('b', [2], 14)]),
    feeds: { x: [2, 6, 5, 5] },
    noExport: true,
  },
  {
    name: 'GroupNormalization opset 21 (per-channel scale and bias), 3 groups of 4 channels',
    spec: one(21, 'GroupNormalization', ['N', 12, 3, 7], [attr.i('num_groups', 3), attr.f('epsilon', 1e-3)], ['s', 'b'], [randomTensor('s', [12], 15), randomTensor('b', [12], 16)]),
    feeds: { x: [2, 12, 3, 7] },
  },
  {
    name: 'GroupNormalization opset 21 with one group (LayerNorm over C, H, W)',
    spec: one(21, 'GroupNormalization', ['N', 5, 4, 4], [attr.i('num_groups', 1)], ['s', 'b'], [randomTensor('s', [5], 17), randomTensor('b', [5], 18)]),
    feeds: { x: [1, 5, 4, 4] },
  },
  {
    name: 'BatchNormalization opset 15 training_mode=0',
    spec: one(15, 'BatchNormalization', ['N', 3, 4, 5], [attr.i('training_mode', 0)], ['s', 'b', 'm', 'v'], [
      randomTensor('s', [3], 19), randomTensor('b', [3], 20), randomTensor('m', [3], 21), floatTensor('v', [3], [0.5, 1, 2]),
    ]),
    feeds: { x: [2, 3, 4, 5] },
  },
  {
    name: 'BatchNormalization opset 15 on features [N, C]',
    spec: one(15, 'BatchNormalization', ['N', 5], [attr.f('epsilon', 1e-3)], ['s', 'b', 'm', 'v'], [
      randomTensor('s', [5], 54), randomTensor('b', [5], 55), randomTensor('m', [5], 56), floatTensor('v', [5], [0.5, 1, 2, 0.1, 4]),
    ]),
    feeds: { x: [3, 5] },
  },
  {
    name: 'BatchNormalization opset 14 on [N, C, L]',
    spec: one(14, 'BatchNormalization', ['N', 3, 10], [], ['s', 'b', 'm', 'v'], [
      randomTensor('s', [3], 22), randomTensor('b', [3], 23), randomTensor('m', [3], 24), floatTensor('v', [3], [0.25, 1, 3]),
    ]),
    feeds: { x: [2, 3, 10] },
  },
  // 1-D convolution and pooling on [N, C, L] (2-D kernels with a unit height).
  {
    name: 'Conv 1-D with stride, pads, dilation and groups',
    spec: one(13, 'Conv', ['N', 4, 19], [attr.ints('strides', [2]), attr.ints('pads', [2, 1]), attr.ints('dilations', [2]), attr.i('group', 2)], ['w', 'b'], [randomTensor('w', [6, 2, 3], 25), randomTensor('b', [6], 26)]),
    feeds: { x: [2, 4, 19] },
  },
  {
    name: 'ConvTranspose 1-D stride 2 with output_padding',
    spec: one(13, 'ConvTranspose', ['N', 3, 9], [attr.ints('strides', [2]), attr.ints('pads', [1, 1]), attr.ints('output_padding', [1])], ['w', 'b'], [randomTensor('w', [3, 2, 4], 27), randomTensor('b', [2], 28)]),
    feeds: { x: [2, 3, 9] },
  },
  {
    name: 'MaxPool 1-D ceil_mode with dilations',
    spec: one(12, 'MaxPool', ['N', 3, 20], [attr.ints('kernel_shape', [3]), attr.ints('strides', [2]), attr.ints('dilations', [2]), attr.i('ceil_mode', 1)]),
    feeds: { x: [2, 3, 20] },
  },
  {
    name: 'AveragePool 1-D count_include_pad',
    spec: one(13, 'AveragePool', ['N', 3, 17], [attr.ints('kernel_shape', [4]), attr.ints('strides', [3]), attr.ints('pads', [1, 2]), attr.i('count_include_pad', 1)]),
    feeds: { x: [2, 3, 17] },
  },
  {
    name: 'AveragePool 2-D opset 19 dilations with ceil_mode',
    spec: one(19, 'AveragePool', ['N', 2, 9, 11], [attr.ints('kernel_shape', [2, 3]), attr.ints('strides', [2, 2]), attr.ints('dilations', [2, 1]), attr.i('ceil_mode', 1)]),
    feeds: { x: [2, 2, 9, 11] },
    noExport: true,
  },
  {
    name: 'AveragePool 2-D ceil_mode with count_include_pad and pads',
    spec: one(13, 'AveragePool', ['N', 2, 8, 7], [attr.ints('kernel_shape', [3, 3]), attr.ints('strides', [2, 2]), attr.ints('pads', [1, 0, 1, 1]), attr.i('ceil_mode', 1), attr.i('count_include_pad', 1)]),
    feeds: { x: [2, 2, 8, 7] },
  },
  {
    name: 'MaxPool 2-D dilations with asymmetric pads',
    spec: one(12, 'MaxPool', ['N', 3, 9, 10], [attr.ints('kernel_shape', [2, 3]), attr.ints('dilations', [2, 2]), attr.ints('pads', [1, 0, 0, 2])]),
    feeds: { x: [2, 3, 9, 10] },
  },
  {
    name: 'LayerNormalization with a Scale broadcast over the leading normalized axis',
    spec: one(17, 'LayerNormalization', ['N', 4, 6, 10], [attr.i('axis', 2)], ['s', 'b'], [randomTensor('s', [10], 36), randomTensor('b', [1, 10], 37)]),
    feeds: { x: [2, 4, 6, 10] },
  },
  {
    name: 'MaxPool 3-D (two 2-D pools) with pads, strides, dilations and ceil_mode',
    spec: one(12, 'MaxPool', ['N', 2, 5, 6, 7], [attr.ints('kernel_shape', [2, 3, 2]), attr.ints('strides', [2, 1, 2]), attr.ints('pads', [1, 1, 0, 0, 1, 1]), attr.ints('dilations', [1, 2, 1]), attr.i('ceil_mode', 1)]),
    feeds: { x: [2, 2, 5, 6, 7] },
  },
  {
    name: 'AveragePool 3-D with asymmetric pads (count_include_pad 0)',
    spec: one(13, 'AveragePool', ['N', 3, 5, 4, 6], [attr.ints('kernel_shape', [3, 2, 3]), attr.ints('strides', [2, 2, 1]), attr.ints('pads', [1, 0, 1, 1, 1, 0])]),
    feeds: { x: [2, 3, 5, 4, 6] },
  },
  {
    name: 'AveragePool 3-D ceil_mode and count_include_pad',
    spec: one(13, 'AveragePool', ['N', 2, 6, 5, 5], [attr.ints('kernel_shape', [2, 3, 3]), attr.ints('strides', [2, 2, 2]), attr.ints('pads', [0, 1, 1, 1, 0, 1]), attr.i('ceil_mode', 1), attr.i('count_include_pad', 1)]),
    feeds: { x: [1, 2, 6, 5, 5] },
  },
  {
    name: 'MaxPool 4-D is refused naming the rank',
    spec: one(13, 'MaxPool', ['N', 1, 3, 3, 3, 3], [attr.ints('kernel_shape', [2, 2, 2, 2])]),
    feeds: { x: [1, 1, 3, 3, 3, 3] },
    refused: /4-D/,
    noExport: true,
  },
  {
    name: 'Conv 3-D is refused naming the rank',
    spec: one(13, 'Conv', ['N', 2, 4, 4, 4], [], ['w'], [randomTensor('w', [3, 2, 2, 2, 2], 29)]),
    feeds: { x: [1, 2, 4, 4, 4] },
    refused: /3-D/,
    noExport: true,
  },
  // Gemm and MatMul variants.
  {
    name: 'Gemm alpha, beta and a [1, N] bias C',
    spec: one(13, 'Gemm', ['N', 6], [attr.f('alpha', 0.5), attr.f('beta', 2), attr.i('transB', 1)], ['w', 'c'], [randomTensor('w', [5, 6], 30), randomTensor('c', [1, 5], 31)]),
    feeds: { x: [3, 6] },
  },
  {
    name: 'Gemm with a scalar bias C',
    spec: one(13, 'Gemm', ['N', 6], [], ['w', 'c'], [randomTensor('w', [6, 4], 32), floatTensor('c', [], [0.75])]),
    feeds: { x: [3, 6] },
  },
  {
    // The batch is a column of A: it runs on the unit-batch path (runtime/unit-batch.ts).
    name: 'Gemm transA=1',
    spec: one(13, 'Gemm', [6, 'N'], [attr.i('transA', 1)], ['w'], [randomTensor('w', [6, 4], 33)]),
    feeds: { x: [6, 3] },
  },
  {
    name: 'MatMul rank-4 activation by a constant [K, N]',
    spec: one(13, 'MatMul', ['N', 3, 5, 8], [], ['w'], [randomTensor('w', [8, 7], 34)]),
    feeds: { x: [2, 3, 5, 8] },
  },
  {
    name: 'MatMul rank-3 activation by a batched constant [3, K, N]',
    spec: one(13, 'MatMul', ['N', 3, 4, 8], [], ['w'], [randomTensor('w', [3, 8, 5], 35)]),
    feeds: { x: [2, 3, 4, 8] },
  },
  {
    name: 'MatMul of two rank-4 activations (attention scores x . xT)',
    spec: {
      opset: 13,
      inputs: [valueInfo('x', ['N', 3, 5, 8])],
      outputs: [valueInfo('y')],
      nodes: [node('Transpose', ['x'], ['xt'], [attr.ints('perm', [0, 1, 3, 2])]), node('MatMul', ['x', 'xt'], ['y'])],
    },
    feeds: { x: [2, 3, 5, 8] },
  },
];

/** A ConvNeXt block on [N, C, H, W]: dwconv 7x7 -> permute -> LayerNorm(C) -> Linear(4C) -> x*sigmoid(1.702x) -> Linear(C) -> permute back -> + x. */
function convNextBlock(c: number, hw: number): ModelSpec {
  return {
    opset: 17,
    inputs: [valueInfo('x', ['N', c, hw, hw])],
    outputs: [valueInfo('y')],
    nodes: [
      node('Conv', ['x', 'dw.w', 'dw.b'], ['d'], [attr.ints('kernel_shape', [7, 7]), attr.ints('pads', [3, 3, 3, 3]), attr.i('group', c)], 'dwconv'),
      node('Transpose', ['d'], ['t'], [attr.ints('perm', [0, 2, 3, 1])], 'to_nhwc'),
      node('LayerNormalization', ['t', 'ln.s', 'ln.b'], ['n'], [attr.i('axis', -1), attr.f('epsilon', 1e-6)], 'norm'),
      node('MatMul', ['n', 'fc1.w'], ['h0'], [], 'pwconv1'),
      node('Add', ['h0', 'fc1.b'], ['h1'], [], 'pwconv1_bias'),
      node('Mul', ['h1', 'k'], ['h2'], [], 'gelu_scale'),
      node('Sigmoid', ['h2'], ['h3'], [], 'gelu_sigmoid'),
      node('Mul', ['h1', 'h3'], ['h4'], [], 'gelu'),
      node('MatMul', ['h4', 'fc2.w'], ['o0'], [], 'pwconv2'),
      node('Add', ['o0', 'fc2.b'], ['o1'], [], 'pwconv2_bias'),
      node('Mul', ['o1', 'gamma'], ['o2'], [], 'layer_scale'),
      node('Transpose', ['o2'], ['o3'], [attr.ints('perm', [0, 3, 1, 2])], 'to_nchw'),
      node('Add', ['x', 'o3'], ['y'], [], 'residual'),
    ],
    initializers: [
      randomTensor('dw.w', [c, 1, 7, 7], 40, 0.3), randomTensor('dw.b', [c], 41, 0.1),
      randomTensor('ln.s', [c], 42), randomTensor('ln.b', [c], 43),
      randomTensor('fc1.w', [c, 4 * c], 44, 0.3), randomTensor('fc1.b', [4 * c], 45, 0.1),
      floatTensor('k', [], [1.702]),
      randomTensor('fc2.w', [4 * c, c], 46, 0.2), randomTensor('fc2.b', [c], 47, 0.1),
      randomTensor('gamma', [c], 48, 0.5),
    ],
  };
}

cases.push(
  { name: 'ConvNeXt-like block (C=24, 14x14)', spec: convNextBlock(24, 14), feeds: { x: [2, 24, 14, 14] }, check: (g) => expect(ops(g)).toContain('LayerNormalization') },
  { name: 'ConvNeXt-like block (C=13, 9x9, odd)', spec: convNextBlock(13, 9), feeds: { x: [1, 13, 9, 9] } },
);

describe('normalizations and conv/pool/Gemm variants against onnxruntime', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const original = model(c.spec);
      const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
      let seed = 100;
      for (const [name, dims] of Object.entries(c.feeds)) feeds[name] = { data: randomData(dims.reduce((a, b) => a * b, 1), seed++, 2), dims };
      const tensors = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor('float32', v.data, v.dims)]));
      if (c.refused) {
        const err = await compareWithOnnxRuntime(original, tensors).then(() => undefined, (e: unknown) => e);
        expect(err).toMatchObject({ code: ErrorCode.UNSUPPORTED_OP });
        expect((err as Error).message).toMatch(c.refused);
        return;
      }
      const graph = await importModel(original);
      c.check?.(graph);
      if (!c.noExport) {
        const expected = await runOrt(original, feeds);
        const roundTrip = await runOrt(exportModel(graph), feeds);
        for (const [name, value] of Object.entries(expected)) {
          expect(roundTrip[name]!.dims).toEqual(value.dims);
          expect(maxScaledDiff(roundTrip[name]!.data, value.data)).toBeLessThanOrEqual(1e-5);
        }
      }
      for (const isa of ISAS) {
        setIsa(isa);
        const kiln = await compareWithOnnxRuntime(original, tensors);
        for (const out of kiln.outputs) expect(out.relL2, `${out.name} on ${isa}`).toBeLessThanOrEqual(1e-5);
      }
      setIsa(ORIGINAL_ISA);
    });
  }

  it('GroupNormalization opset 18 exports as ONNX opset 17 and keeps its meaning', async () => {
    const spec = one(18, 'GroupNormalization', ['N', 6, 5, 5], [attr.i('num_groups', 3)], ['s', 'b'], [randomTensor('s', [3], 50), randomTensor('b', [3], 51)]);
    const original = model(spec);
    const feeds = { x: { data: randomData(2 * 150, 52, 2), dims: [2, 6, 5, 5] } };
    const expected = await runOrt(original, feeds);
    const roundTrip = await runOrt(exportModel(await importModel(original)), feeds);
    expect(maxScaledDiff(roundTrip.y!.data, expected.y!.data)).toBeLessThanOrEqual(1e-5);
  });

  it('LayerNormalization: an unread Mean output is dropped at import', async () => {
    const spec = one(17, 'LayerNormalization', ['N', 4, 6], [], ['s'], [randomTensor('s', [6], 53)], ['y', 'mean']);
    const g = await importModel(model(spec));
    expect(g.nodes[0]!.outputs).toEqual(['y']);
  });
});

/** conv -> relu -> GroupNorm -> conv -> relu -> LayerNorm over [C, H, W] -> conv -> flatten -> gemm. */
function normBetweenConvs(): Graph {
  const g = new GraphBuilder('norms');
  const t = (dims: number[], seed: number, scale: number): Tensor<'float32'> => new Tensor('float32', randomData(dims.reduce((a, b) => a * b, 1), seed, scale), dims);
  const conv = { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1], dilations: [1, 1], group: 1 };
  const x = g.addInput('x', ['N', 3, 6, 6]);
  const c1 = g.addNode('Relu', [g.addNode('Conv', [x, g.addInitializer('w1', t([8, 3, 3, 3], 60, 0.5)), g.addInitializer('b1', t([8], 61, 0.1))], conv, 'conv1')], {}, 'relu1');
  const gn = g.addNode('GroupNormalization', [c1, g.addInitializer('gs', t([8], 62, 1)), g.addInitializer('gb', t([8], 63, 0.2))], { num_groups: 4, epsilon: 1e-5 }, 'gn');
  const c2 = g.addNode('Relu', [g.addNode('Conv', [gn, g.addInitializer('w2', t([8, 8, 3, 3], 64, 0.3)), g.addInitializer('b2', t([8], 65, 0.1))], conv, 'conv2')], {}, 'relu2');
  const ln = g.addNode('LayerNormalization', [c2, g.addInitializer('ls', t([8, 6, 6], 66, 1)), g.addInitializer('lb', t([8, 6, 6], 67, 0.2))], { axis: 1, epsilon: 1e-5 }, 'ln');
  const c3 = g.addNode('Conv', [ln, g.addInitializer('w3', t([4, 8, 3, 3], 68, 0.3)), g.addInitializer('b3', t([4], 69, 0.1))], conv, 'conv3');
  const flat = g.addNode('Flatten', [c3], { axis: 1 }, 'flatten');
  const y = g.addNode('Gemm', [flat, g.addInitializer('fc', t([144, 5], 70, 0.1))], { alpha: 1, beta: 1, transA: 0, transB: 0 }, 'fc');
  return g.build([{ name: y, dtype: 'float32', shape: ['N', 5] }]);
}

describe('int8: normalizations between quantized convolutions', () => {
  it('PTQ quantizes the convolutions around GroupNorm and LayerNorm, which run as fp32 islands', async () => {
    const float = normBetweenConvs();
    const calibration = new Tensor('float32', randomData(64 * 108, 71, 1), [64, 3, 6, 6]);
    const { graph, report } = await quantize(float, calibration, { reportImages: 0 });
    const opsOf = ops(graph);
    expect(opsOf.filter((o) => o === 'QLinearConv')).toHaveLength(3);
    expect(opsOf).toContain('GroupNormalization');
    expect(opsOf).toContain('LayerNormalization');
    expect(report.fp32Nodes.map((n) => n.op).sort()).toEqual(['GroupNormalization', 'LayerNormalization']);
    const held = new Tensor('float32', randomData(16 * 108, 72, 1), [16, 3, 6, 6]);
    const run = async (g: Graph): Promise<Float32Array> => {
      const session = await InferenceSession.create(g, { intraOpNumThreads: 1 });
      const out = await session.run({ x: held });
      return out[g.outputs[0]!.name]!.data as Float32Array;
    };
    const want = await run(float);
    const got = await run(graph);
    let num = 0, den = 0;
    for (let i = 0; i < want.length; i++) {
      num += (got[i]! - want[i]!) ** 2;
      den += want[i]! ** 2;
    }
    expect(Math.sqrt(num / den)).toBeLessThan(0.1);
    // The QDQ export (GroupNormalization written as opset-17 nodes) runs in ORT like Kiln's int8 runtime.
    const ort = await compareInt8WithOnnxRuntime(graph, { x: held });
    expect(ort.reference).toBe('qdq-export');
    for (const out of ort.outputs) expect(out.relL2, out.name).toBeLessThan(0.02);
  });
});
