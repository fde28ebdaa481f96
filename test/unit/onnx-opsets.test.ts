/**
 * Opset variants: the same operator written the way each opset spells it (attributes vs inputs,
 * Softmax's 2-D coercion before opset 13, auto_pad) must import into the canonical form and keep
 * its meaning. Meaning is checked by onnxruntime itself: ORT on the original file vs ORT on
 * export(import(file)), and vs Kiln's runtime on the imported graph, on seeded random inputs.
 */
import { describe, expect, it } from 'vitest';

import { ErrorCode } from '../../src/errors.js';
import type { Graph } from '../../src/graph/ir.js';
import { compareWithOnnxRuntime } from '../../src/onnx/compare.js';
import { exportModel } from '../../src/onnx/export.js';
import { importModel } from '../../src/onnx/import.js';
import { Tensor } from '../../src/tensor.js';
import {
  attr, floatTensor, int64Tensor, maxScaledDiff, model, node, randomData, randomTensor, runOrt, valueInfo, type ModelSpec,
} from './onnx-model-builder.js';

interface Case {
  name: string;
  spec: ModelSpec;
  /** Concrete input shapes for the run (dynamic dims filled in). */
  feeds: Record<string, number[]>;
  /** Extra checks on the imported graph. */
  check?: (g: Graph) => void;
  /** 'unsupported': Kiln's runtime refuses the case (checked). Cases that move a fixed batch axis run: as one unit-batch image (src/runtime/unit-batch.ts). */
  kiln?: 'unsupported';
}

const ops = (g: Graph): string[] => g.nodes.map((n) => n.op);
const single = (input: string, shape: (number | string)[], output = 'y'): Pick<ModelSpec, 'inputs' | 'outputs'> => ({
  inputs: [valueInfo(input, shape)],
  outputs: [valueInfo(output)],
});

function unary(opset: number, op: string, shape: (number | string)[], attrs: ReturnType<typeof attr.i>[] = [], extraInputs: string[] = [], initializers: ModelSpec['initializers'] = []): ModelSpec {
  return { opset, ...single('x', shape), nodes: [node(op, ['x', ...extraInputs], ['y'], attrs)], initializers };
}

const cases: Case[] = [
  // Softmax / LogSoftmax
  {
    name: 'Softmax opset 11 axis 1 coerces to 2-D',
    spec: unary(11, 'Softmax', [2, 3, 4], [attr.i('axis', 1)]),
    feeds: { x: [2, 3, 4] },
    check: (g) => expect(g.nodes.map((n) => [n.op, n.attrs.shape ?? n.attrs.axis])).toEqual([['Reshape', [2, 12]], ['Softmax', 1], ['Reshape', [2, 3, 4]]]),
  },
  {
    name: 'Softmax opset 11 on the last axis stays one node',
    spec: unary(11, 'Softmax', [2, 3, 4], [attr.i('axis', -1)]),
    feeds: { x: [2, 3, 4] },
    check: (g) => {
      expect(ops(g)).toEqual(['Softmax']);
      expect(g.nodes[0]!.attrs.axis).toBe(2);
    },
  },
  {
    name: 'Softmax opset 13 axis 1 is per-axis',
    spec: unary(13, 'Softmax', [2, 3, 4], [attr.i('axis', 1)]),
    feeds: { x: [2, 3, 4] },
    check: (g) => expect(g.nodes.map((n) => [n.op, n.attrs.axis])).toEqual([['Softmax', 1]]),
  },
  {
    name: 'LogSoftmax opset 9 default axis over a dynamic batch',
    spec: unary(9, 'LogSoftmax', ['N', 3, 5]),
    feeds: { x: [3, 3, 5] },
    check: (g) => {
      expect(g.nodes.map((n) => [n.op, n.attrs.shape ?? n.attrs.axis])).toEqual([['Reshape', [0, 15]], ['LogSoftmax', 1], ['Reshape', [0, 3, 5]]]);
      expect(g.outputs[0]!.shape).toEqual(['N', 3, 5]);
    },
  },
  {
    name: 'Softmax opset 11 axis 2 of 4 over a dynamic batch',
    spec: unary(11, 'Softmax', ['N', 2, 3, 4], [attr.i('axis', 2)]),
    feeds: { x: [2, 2, 3, 4] },
    check: (g) => expect(g.nodes.map((n) => [n.op, n.attrs.shape ?? n.attrs.axis])).toEqual([['Reshape', [0, 2, 12]], ['Softmax', 2], ['Reshape', [0, 2, 3, 4]]]),
  },
  {
    name: 'Softmax opset 11 axis 0 (one row holds the whole batch)',
    spec: unary(11, 'Softmax', [2, 3], [attr.i('axis', 0)]),
    feeds: { x: [2, 3] },
    check: (g) => expect(ops(g)).toEqual(['Flatten', 'Softmax', 'Reshape']),
  },
  // Reshape
  {
    name: 'Reshape opset 13 with an int64 initializer',
    spec: unary(13, 'Reshape', [2, 3, 4], [], ['shape'], [int64Tensor('shape', [2], [0, -1])]),
    feeds: { x: [2, 3, 4] },
    check: (g) => {
      expect(g.nodes[0]!.attrs.shape).toEqual([0, -1]);
      expect(g.nodes[0]!.inputs).toEqual(['x']);
      expect(g.initializers.size).toBe(0);
    },
  },
  {
    name: 'Reshape opset 13 from a Shape/Gather/Unsqueeze/Concat chain over a dynamic batch',
    spec: {
      opset: 13,
      ...single('x', ['batch', 3, 4, 4]),
      nodes: [
        node('Shape', ['x'], ['s']),
        node('Gather', ['s', 'zero'], ['n'], [attr.i('axis', 0)]),
        node('Unsqueeze', ['n', 'axes0'], ['n1']),
        node('Concat', ['n1', 'minus1'], ['target'], [attr.i('axis', 0)]),
        node('Reshape', ['x', 'target'], ['y']),
      ],
      initializers: [int64Tensor('zero', [], [0]), int64Tensor('axes0', [1], [0]), int64Tensor('minus1', [1], [-1])],
    },
    feeds: { x: [3, 3, 4, 4] },
    check: (g) => {
      expect(ops(g)).toEqual(['Reshape']);
      expect(g.nodes[0]!.attrs.shape).toEqual([0, -1]);
      expect(g.outputs[0]!.shape).toEqual(['batch', 48]);
    },
  },
  {
    name: 'Reshape opset 11 chain with Unsqueeze axes as an attribute and a static Gather',
    spec: {
      opset: 11,
      ...single('x', ['N', 2, 3, 4]),
      nodes: [
        node('Shape', ['x'], ['s']),
        node('Gather', ['s', 'one'], ['c'], [attr.i('axis', 0)]),
        node('Unsqueeze', ['c'], ['c1'], [attr.ints('axes', [0])]),
        node('Concat', ['minus1', 'c1', 'twelve'], ['target'], [attr.i('axis', 0)]),
        node('Reshape', ['x', 'target'], ['y']),
      ],
      initializers: [int64Tensor('one', [], [1]), int64Tensor('minus1', [1], [-1]), int64Tensor('twelve', [1], [12])],
    },
    feeds: { x: [2, 2, 3, 4] },
    check: (g) => expect(g.nodes.map((n) => n.attrs.shape)).toEqual([[-1, 2, 12]]),
  },
  // Squeeze / Unsqueeze
  {
    name: 'Squeeze opset 11 axes attribute (negative)',
    spec: unary(11, 'Squeeze', [2, 1, 3, 1], [attr.ints('axes', [-1, 1])]),
    feeds: { x: [2, 1, 3, 1] },
    check: (g) => expect(g.nodes[0]!.attrs.axes).toEqual([1, 3]),
  },
  {
    name: 'Squeeze opset 13 axes input',
    spec: unary(13, 'Squeeze', [2, 1, 3, 1], [], ['axes'], [int64Tensor('axes', [1], [-1])]),
    feeds: { x: [2, 1, 3, 1] },
    check: (g) => {
      expect(g.nodes[0]!.attrs.axes).toEqual([3]);
      expect(g.nodes[0]!.inputs).toEqual(['x']);
    },
  },
  {
    name: 'Squeeze opset 13 without axes removes every 1',
    spec: unary(13, 'Squeeze', [2, 1, 4, 1], []),
    feeds: { x: [2, 1, 4, 1] },
    check: (g) => expect(g.nodes[0]!.attrs.axes).toEqual([1, 3]),
  },
  {
    name: 'Unsqueeze opset 9 axes attribute',
    spec: unary(9, 'Unsqueeze', [2, 3], [attr.ints('axes', [3, 1])]),
    feeds: { x: [2, 3] },
    check: (g) => expect(g.outputs[0]!.shape).toEqual([2, 1, 3, 1]),
  },
  {
    name: 'Unsqueeze opset 13 axes input (negative)',
    spec: unary(13, 'Unsqueeze', [2, 3], [], ['axes'], [int64Tensor('axes', [2], [-1, 1])]),
    feeds: { x: [2, 3] },
    check: (g) => {
      expect(g.nodes[0]!.attrs.axes).toEqual([1, 3]);
      expect(g.outputs[0]!.shape).toEqual([2, 1, 3, 1]);
    },
  },
  // Clip
  {
    name: 'Clip opset 6 attributes',
    spec: unary(6 + 1, 'Clip', [2, 8], [attr.f('min', -0.25), attr.f('max', 0.5)]),
    feeds: { x: [2, 8] },
    check: (g) => expect(g.nodes[0]!.attrs).toEqual({ min: -0.25, max: 0.5 }),
  },
  {
    name: 'Clip opset 11 min input only',
    spec: unary(11, 'Clip', [2, 8], [], ['lo'], [floatTensor('lo', [], [-0.1])]),
    feeds: { x: [2, 8] },
    check: (g) => {
      expect(g.nodes[0]!.attrs.min).toBeCloseTo(-0.1, 7);
      expect(g.nodes[0]!.attrs.max).toBe(3.4028234663852886e38);
    },
  },
  {
    name: 'Clip opset 13 max input only (min omitted)',
    spec: unary(13, 'Clip', [2, 8], [], ['', 'hi'], [floatTensor('hi', [], [0.3])]),
    feeds: { x: [2, 8] },
  },
  {
    name: 'Clip opset 12 without bounds',
    spec: unary(12, 'Clip', [2, 8]),
    feeds: { x: [2, 8] },
  },
  // Pad
  {
    name: 'Pad opset 7 attributes, constant value',
    spec: unary(7, 'Pad', [1, 2, 3, 3], [attr.ints('pads', [0, 0, 1, 2, 0, 0, 2, 0]), attr.f('value', 0.5)]),
    feeds: { x: [1, 2, 3, 3] },
    check: (g) => expect(g.nodes[0]!.attrs).toEqual({ pads: [0, 0, 1, 2, 0, 0, 2, 0], mode: 'constant', value: 0.5 }),
  },
  {
    name: 'Pad opset 11 inputs, reflect',
    spec: unary(11, 'Pad', [1, 2, 4, 5], [attr.s('mode', 'reflect')], ['pads'], [int64Tensor('pads', [8], [0, 0, 2, 1, 0, 0, 1, 3])]),
    feeds: { x: [1, 2, 4, 5] },
  },
  {
    name: 'Pad opset 13 inputs with a constant value',
    spec: unary(13, 'Pad', [1, 2, 3, 3], [], ['pads', 'v'], [int64Tensor('pads', [8], [0, 1, 1, 1, 0, 0, 1, 0]), floatTensor('v', [], [-2])]),
    feeds: { x: [1, 2, 3, 3] },
  },
  {
    name: 'Pad opset 18 with axes, edge',
    spec: unary(18, 'Pad', [1, 2, 3, 4], [attr.s('mode', 'edge')], ['pads', '', 'axes'], [int64Tensor('pads', [4], [2, 1, 0, 3]), int64Tensor('axes', [2], [-2, 3])]),
    feeds: { x: [1, 2, 3, 4] },
    check: (g) => expect(g.nodes[0]!.attrs.pads).toEqual([0, 0, 2, 1, 0, 0, 0, 3]),
  },
  // BatchNormalization, Dropout, Gemm, Constant, misc
  {
    name: 'BatchNormalization opset 7 (spatial) and 15',
    spec: {
      opset: 7,
      ...single('x', [2, 3, 4, 4]),
      nodes: [node('BatchNormalization', ['x', 'g', 'b', 'm', 'v'], ['y'], [attr.i('spatial', 1), attr.f('epsilon', 1e-3)])],
      initializers: [randomTensor('g', [3], 1), randomTensor('b', [3], 2), randomTensor('m', [3], 3), floatTensor('v', [3], [0.5, 1, 2])],
    },
    feeds: { x: [2, 3, 4, 4] },
    check: (g) => expect(g.nodes[0]!.attrs).toEqual({ epsilon: expect.closeTo(1e-3, 9) as unknown as number }),
  },
  {
    name: 'BatchNormalization opset 15',
    spec: {
      opset: 15,
      ...single('x', [2, 3, 4, 4]),
      nodes: [node('BatchNormalization', ['x', 'g', 'b', 'm', 'v'], ['y'])],
      initializers: [randomTensor('g', [3], 1), randomTensor('b', [3], 2), randomTensor('m', [3], 3), floatTensor('v', [3], [0.5, 1, 2])],
    },
    feeds: { x: [2, 3, 4, 4] },
  },
  {
    name: 'Dropout opset 7 ratio attribute',
    spec: unary(7, 'Dropout', [2, 5], [attr.f('ratio', 0.3)]),
    feeds: { x: [2, 5] },
    check: (g) => expect(g.nodes[0]!.attrs).toEqual({}),
  },
  {
    name: 'Dropout opset 13 ratio and training_mode inputs, unused mask',
    spec: {
      opset: 13,
      ...single('x', [2, 5]),
      nodes: [node('Dropout', ['x', 'r', 't'], ['y', 'mask'])],
      initializers: [floatTensor('r', [], [0.5]), { name: 't', dims: [], dataType: 9, int32Data: [0] }],
    },
    feeds: { x: [2, 5] },
    check: (g) => expect(g.nodes[0]!.inputs).toEqual(['x']),
  },
  {
    name: 'Gemm opset 11 without C, transposed A and B',
    spec: {
      opset: 11,
      ...single('x', [5, 3]),
      nodes: [node('Gemm', ['x', 'w'], ['y'], [attr.i('transA', 1), attr.i('transB', 1), attr.f('alpha', 0.5)])],
      initializers: [randomTensor('w', [4, 5], 4)],
    },
    feeds: { x: [5, 3] },
  },
  {
    name: 'Gemm opset 7 with a broadcast C',
    spec: {
      opset: 7,
      ...single('x', [2, 3]),
      nodes: [node('Gemm', ['x', 'w', 'c'], ['y'], [attr.f('beta', 2)])],
      initializers: [randomTensor('w', [3, 4], 5), randomTensor('c', [4], 6)],
    },
    feeds: { x: [2, 3] },
  },
  {
    name: 'Constant nodes (tensor and value_floats) as weights',
    spec: {
      opset: 13,
      ...single('x', [2, 3]),
      nodes: [
        node('Constant', [], ['w'], [attr.t('value', randomTensor('', [3, 3], 7))]),
        node('Constant', [], ['b'], [attr.floats('value_floats', [0.1, 0.2, 0.3])]),
        node('MatMul', ['x', 'w'], ['xw']),
        node('Add', ['xw', 'b'], ['y']),
      ],
    },
    feeds: { x: [2, 3] },
    check: (g) => {
      expect(ops(g)).toEqual(['MatMul', 'Add']);
      expect(g.initializers.size).toBe(2);
    },
  },
  {
    name: 'Flatten and Concat with negative axes, Transpose default perm, Cast to float',
    spec: {
      opset: 13,
      ...single('x', [2, 3, 4]),
      nodes: [
        node('Cast', ['x'], ['xc'], [attr.i('to', 1)]),
        node('Concat', ['xc', 'xc'], ['cat'], [attr.i('axis', -1)]),
        node('Transpose', ['cat'], ['t']),
        node('Flatten', ['t'], ['y'], [attr.i('axis', -2)]),
      ],
    },
    feeds: { x: [2, 3, 4] },
    check: (g) => {
      expect(g.nodes.map((n) => [n.op, n.attrs.axis ?? n.attrs.perm ?? null])).toEqual([['Identity', null], ['Concat', 2], ['Transpose', [2, 1, 0]], ['Flatten', 1]]);
    },
  },
];

// Convolution and pooling: auto_pad variants on odd sizes, stride 2, even and odd kernels.
for (const autoPad of ['SAME_UPPER', 'SAME_LOWER', 'VALID']) {
  for (const [k, s] of [[3, 2], [4, 2], [2, 1]] as const) {
    cases.push({
      name: `Conv auto_pad ${autoPad} kernel ${k} stride ${s}`,
      spec: {
        opset: 11,
        ...single('x', [1, 2, 7, 9]),
        nodes: [node('Conv', ['x', 'w', 'b'], ['y'], [attr.s('auto_pad', autoPad), attr.ints('strides', [s, s])])],
        initializers: [randomTensor('w', [3, 2, k, k], 10 + k), randomTensor('b', [3], 11)],
      },
      feeds: { x: [1, 2, 7, 9] },
      check: (g) => expect(g.nodes[0]!.attrs.auto_pad).toBeUndefined(),
    });
    cases.push({
      name: `MaxPool auto_pad ${autoPad} kernel ${k} stride ${s}`,
      spec: unary(12, 'MaxPool', [1, 2, 7, 9], [attr.s('auto_pad', autoPad), attr.ints('kernel_shape', [k, k]), attr.ints('strides', [s, s])]),
      feeds: { x: [1, 2, 7, 9] },
    });
    cases.push({
      name: `AveragePool auto_pad ${autoPad} kernel ${k} stride ${s}`,
      spec: unary(11, 'AveragePool', [1, 2, 7, 9], [attr.s('auto_pad', autoPad), attr.ints('kernel_shape', [k, k]), attr.ints('strides', [s, s])]),
      feeds: { x: [1, 2, 7, 9] },
    });
  }
}
cases.push(
  {
    name: 'Conv SAME_UPPER stride 1 over a dynamic spatial size',
    spec: {
      opset: 13,
      ...single('x', ['N', 2, 'H', 'W']),
      nodes: [node('Conv', ['x', 'w'], ['y'], [attr.s('auto_pad', 'SAME_UPPER')])],
      initializers: [randomTensor('w', [3, 2, 4, 3], 12)],
    },
    feeds: { x: [2, 2, 9, 6] },
    check: (g) => {
      expect(g.nodes[0]!.attrs.pads).toEqual([1, 1, 2, 1]);
      expect(g.outputs[0]!.shape).toEqual(['N', 3, 'H', 'W']);
    },
  },
  {
    name: 'MaxPool opset 10 ceil_mode with pads and dilations (opset 12)',
    spec: unary(12, 'MaxPool', [1, 1, 8, 7], [attr.ints('kernel_shape', [3, 2]), attr.ints('strides', [2, 3]), attr.ints('pads', [1, 0, 1, 1]), attr.i('ceil_mode', 1), attr.ints('dilations', [1, 2])]),
    feeds: { x: [1, 1, 8, 7] },
  },
  {
    name: 'AveragePool count_include_pad with ceil_mode',
    spec: unary(10, 'AveragePool', [1, 2, 6, 5], [attr.ints('kernel_shape', [3, 3]), attr.ints('strides', [2, 2]), attr.ints('pads', [1, 1, 1, 1]), attr.i('count_include_pad', 1), attr.i('ceil_mode', 1)]),
    feeds: { x: [1, 2, 6, 5] },
  },
  {
    name: 'ConvTranspose with output_shape',
    spec: {
      opset: 11,
      ...single('x', [1, 2, 4, 5]),
      nodes: [node('ConvTranspose', ['x', 'w'], ['y'], [attr.ints('strides', [2, 2]), attr.ints('output_shape', [9, 10])])],
      initializers: [randomTensor('w', [2, 3, 3, 3], 13)],
    },
    feeds: { x: [1, 2, 4, 5] },
    check: (g) => expect(g.outputs[0]!.shape).toEqual([1, 3, 9, 10]),
  },
  {
    // onnxruntime and the ONNX reference pad nothing and leave the bias in the extra rows at the end
    // (onnxruntime takes up to stride - 1 extra; the reference fixtures go further).
    name: 'ConvTranspose with an output_shape larger than it makes (bias)',
    spec: {
      opset: 13,
      ...single('x', [2, 2, 4, 5]),
      nodes: [node('ConvTranspose', ['x', 'w', 'b'], ['y'], [attr.ints('strides', [3, 2]), attr.ints('output_shape', [14, 12])])],
      initializers: [randomTensor('w', [2, 3, 3, 3], 31), randomTensor('b', [3], 32)],
    },
    feeds: { x: [2, 2, 4, 5] },
    check: (g) => expect(g.outputs[0]!.shape).toEqual([2, 3, 14, 12]),
  },
  {
    name: 'ConvTranspose 3-D: strides, pads, dilations, groups, bias, output_padding',
    spec: {
      opset: 13,
      ...single('x', [2, 4, 3, 4, 5]),
      nodes: [node('ConvTranspose', ['x', 'w', 'b'], ['y'], [
        attr.ints('strides', [2, 1, 3]), attr.ints('pads', [1, 0, 2, 0, 1, 1]), attr.ints('dilations', [1, 2, 1]), attr.i('group', 2), attr.ints('output_padding', [1, 0, 2]),
      ])],
      initializers: [randomTensor('w', [4, 3, 3, 2, 4], 33), randomTensor('b', [6], 34)],
    },
    feeds: { x: [2, 4, 3, 4, 5] },
    check: (g) => expect(g.outputs[0]!.shape).toEqual([2, 6, 7, 5, 15]),
  },
  {
    name: 'ConvTranspose 3-D with an output_shape larger on one axis, smaller on another',
    spec: {
      opset: 11,
      ...single('x', [1, 2, 3, 3, 4]),
      nodes: [node('ConvTranspose', ['x', 'w'], ['y'], [attr.ints('strides', [2, 2, 2]), attr.ints('output_shape', [8, 5, 9])])],
      initializers: [randomTensor('w', [2, 2, 3, 3, 3], 35)],
    },
    feeds: { x: [1, 2, 3, 3, 4] },
    check: (g) => expect(g.outputs[0]!.shape).toEqual([1, 2, 8, 5, 9]),
  },
  {
    name: 'ConvTranspose auto_pad SAME_UPPER, groups, output_padding',
    spec: {
      opset: 13,
      ...single('x', [1, 4, 3, 4]),
      nodes: [node('ConvTranspose', ['x', 'w', 'b'], ['y'], [attr.ints('strides', [2, 2]), attr.s('auto_pad', 'SAME_UPPER'), attr.i('group', 2)])],
      initializers: [randomTensor('w', [4, 1, 4, 3], 14), randomTensor('b', [2], 15)],
    },
    feeds: { x: [1, 4, 3, 4] },
  },
  {
    name: 'ConvTranspose auto_pad SAME_LOWER',
    spec: {
      opset: 13,
      ...single('x', [1, 2, 3, 4]),
      nodes: [node('ConvTranspose', ['x', 'w'], ['y'], [attr.ints('strides', [2, 2]), attr.s('auto_pad', 'SAME_LOWER')])],
      initializers: [randomTensor('w', [2, 2, 3, 2], 16)],
    },
    feeds: { x: [1, 2, 3, 4] },
  },
  {
    name: 'LRN defaults and HardSigmoid/LeakyRelu attributes',
    spec: {
      opset: 13,
      ...single('x', [1, 5, 3, 3]),
      nodes: [
        node('LRN', ['x'], ['l'], [attr.i('size', 3)]),
        node('HardSigmoid', ['l'], ['h'], [attr.f('alpha', 0.3)]),
        node('LeakyRelu', ['h'], ['y']),
      ],
    },
    feeds: { x: [1, 5, 3, 3] },
    check: (g) => expect(g.nodes.map((n) => n.attrs)).toEqual([
      { size: 3, alpha: expect.closeTo(1e-4, 9), beta: 0.75, bias: 1 },
      { alpha: expect.closeTo(0.3, 7), beta: 0.5 },
      { alpha: expect.closeTo(0.01, 7) },
    ]),
  },
);

// Constant folding: chains exporters emit around weights and shapes must fold to what ORT computes.
cases.push(
  {
    name: 'folding: Transpose, Slice (opset 13 inputs, negative step), Gather (negative index) of a constant weight',
    spec: {
      opset: 13,
      ...single('x', [2, 3]),
      nodes: [
        node('Transpose', ['w0'], ['wt'], [attr.ints('perm', [1, 0, 2])]),
        node('Slice', ['wt', 'st', 'en', 'ax', 'sp'], ['ws']),
        node('Gather', ['ws', 'idx'], ['w'], [attr.i('axis', 2)]),
        node('MatMul', ['x', 'w'], ['y']),
      ],
      initializers: [
        randomTensor('w0', [3, 6, 2], 20), int64Tensor('st', [2], [5, 0]), int64Tensor('en', [2], [-100, 2 ** 40]),
        int64Tensor('ax', [2], [0, 1]), int64Tensor('sp', [2], [-2, 1]), int64Tensor('idx', [], [-1]),
      ],
    },
    feeds: { x: [2, 3] },
    check: (g) => {
      expect(ops(g)).toEqual(['MatMul']);
      // [3, 6, 2] -> perm [1, 0, 2] -> rows 5, 3, 1 -> last of axis 2.
      expect(g.initializers.get('w')!.dims).toEqual([3, 3]);
    },
  },
  {
    name: 'folding: Slice opset 9 attributes, Cast of int64, Div/Mul/Sub/Neg/Sqrt on constants',
    spec: {
      opset: 9,
      ...single('x', [2, 3]),
      nodes: [
        node('Slice', ['c0'], ['c1'], [attr.ints('starts', [1]), attr.ints('ends', [4]), attr.ints('axes', [0])]),
        node('Cast', ['ints'], ['f'], [attr.i('to', 1)]),
        node('Div', ['c1', 'f'], ['d']),
        node('Mul', ['d', 'c1'], ['m']),
        node('Sqrt', ['m'], ['sq']),
        node('Neg', ['sq'], ['n']),
        node('Sub', ['x', 'n'], ['y']),
      ],
      initializers: [floatTensor('c0', [5], [9, 1, 4, 2, 7]), int64Tensor('ints', [3], [3, 2, 5])],
    },
    feeds: { x: [2, 3] },
    check: (g) => expect(ops(g)).toEqual(['Sub']),
  },
  {
    name: 'folding: ConstantOfShape from a Shape with start/end (opset 15), then Add',
    spec: {
      opset: 15,
      ...single('x', ['N', 3, 4]),
      nodes: [
        node('Shape', ['x'], ['s'], [attr.i('start', -2)]),
        node('ConstantOfShape', ['s'], ['c'], [attr.t('value', floatTensor('', [1], [0.25]))]),
        node('Add', ['x', 'c'], ['y']),
      ],
    },
    feeds: { x: [2, 3, 4] },
    check: (g) => {
      expect(ops(g)).toEqual(['Add']);
      expect(g.initializers.get('c')!.dims).toEqual([3, 4]);
    },
  },
);

describe('ONNX opset variants import to the canonical form with the same meaning (checked by onnxruntime)', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const original = model(c.spec);
      const graph = await importModel(original);
      c.check?.(graph);
      const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
      let seed = 100;
      for (const [name, dims] of Object.entries(c.feeds)) feeds[name] = { data: randomData(dims.reduce((a, b) => a * b, 1), seed++, 2), dims };
      const expected = await runOrt(original, feeds);
      const roundTrip = await runOrt(exportModel(graph), feeds);
      for (const [name, value] of Object.entries(expected)) {
        expect(roundTrip[name]!.dims).toEqual(value.dims);
        expect(maxScaledDiff(roundTrip[name]!.data, value.data)).toBeLessThanOrEqual(1e-6);
      }
      // And Kiln's runtime, running the imported graph, agrees with ORT on the original file.
      const tensors = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor('float32', v.data, v.dims)]));
      if (c.kiln === 'unsupported') {
        await expect(compareWithOnnxRuntime(original, tensors)).rejects.toMatchObject({ code: ErrorCode.UNSUPPORTED_OP });
        return;
      }
      const kiln = await compareWithOnnxRuntime(original, tensors);
      for (const out of kiln.outputs) expect(out.relL2, out.name).toBeLessThanOrEqual(1e-5);
    });
  }
});
