/**
 * PTQ with element-wise ops and reductions between quantized layers: each stays an fp32 island
 * (DequantizeLinear -> op -> QuantizeLinear) in the int8 graph, which the runtime executes and
 * which stays close to the float model.
 */
import { describe, expect, it } from 'vitest';

import { exportModel } from '../../src/onnx/export.js';
import { importModel } from '../../src/onnx/import.js';
import { quantizeDynamic } from '../../src/quant/dynamic.js';
import { quantize } from '../../src/quant/ptq.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { DataType } from '../../src/onnx/proto.js';
import { attr, floatTensor, int64Tensor, model, node, randomTensor, runOrt, valueInfo } from './onnx-model-builder.js';

function images(n: number): Tensor<'float32'> {
  const data = new Float32Array(n * 3 * 8 * 8);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.137 + Math.floor(i / 192) * 0.7);
  return new Tensor('float32', data, [n, 3, 8, 8]);
}

async function run(source: Parameters<typeof InferenceSession.create>[0], x: Tensor): Promise<Float32Array> {
  const session = await InferenceSession.create(source);
  try {
    return (await session.run({ [session.inputNames[0]!]: x }))[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    session.release();
  }
}

/** ||got - want|| / ||want||. */
function relL2(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let err = 0, norm = 0;
  for (let i = 0; i < want.length; i++) {
    err += (got[i]! - want[i]!) ** 2;
    norm += want[i]! ** 2;
  }
  return Math.sqrt(err / norm);
}

describe('quantize: element-wise ops and reductions between int8 layers', () => {
  it('Max, PRelu, Pow and ReduceMean run as fp32 islands; Gelu between two int8 convs is a lookup', async () => {
    const bytes = model({
      opset: 21,
      inputs: [valueInfo('x', ['N', 3, 8, 8])],
      outputs: [valueInfo('y')],
      nodes: [
        node('Conv', ['x', 'w1', 'b1'], ['c1'], [attr.ints('kernel_shape', [3, 3]), attr.ints('pads', [1, 1, 1, 1])]),
        node('Gelu', ['c1'], ['g']),
        node('Conv', ['g', 'w2', 'b2'], ['c2'], [attr.ints('kernel_shape', [3, 3]), attr.ints('pads', [1, 1, 1, 1])]),
        node('Max', ['c2', 'floor'], ['m']),
        node('Conv', ['m', 'w3', 'b3'], ['c3'], [attr.ints('kernel_shape', [1, 1])]),
        node('PRelu', ['c3', 'slope'], ['p']),
        node('Conv', ['p', 'w4', 'b4'], ['c4'], [attr.ints('kernel_shape', [1, 1])]),
        node('Pow', ['c4', 'two'], ['sq']),
        node('ReduceMean', ['sq', 'axes'], ['r'], [attr.i('keepdims', 0)]),
        node('Gemm', ['r', 'wf', 'bf'], ['y'], [attr.i('transB', 1)]),
      ],
      initializers: [
        randomTensor('w1', [8, 3, 3, 3], 1, 0.3), randomTensor('b1', [8], 2, 0.1),
        randomTensor('w2', [8, 8, 3, 3], 3, 0.2), randomTensor('b2', [8], 4, 0.1),
        floatTensor('floor', [], [-0.05]),
        randomTensor('w3', [6, 8, 1, 1], 5, 0.4), randomTensor('b3', [6], 6, 0.1),
        randomTensor('slope', [6, 1, 1], 7, 0.3),
        randomTensor('w4', [6, 6, 1, 1], 8, 0.4), randomTensor('b4', [6], 9, 0.1),
        floatTensor('two', [], [2]),
        int64Tensor('axes', [2], [2, 3]),
        randomTensor('wf', [5, 6], 10, 0.5), randomTensor('bf', [5], 11, 0.1),
      ],
    });
    const graph = await importModel(bytes);
    const { graph: int8, report } = await quantize(graph, images(64), { batchSize: 16 });
    expect(report.layers.map((l) => l.op)).toEqual(['Conv', 'Conv', 'Conv', 'Conv', 'Gemm']);
    expect(report.fp32Nodes.map((n) => n.op).sort()).toEqual(['Max', 'PRelu', 'Pow', 'ReduceMean']);
    expect(report.lookups?.map((l) => l.function)).toEqual(['Gelu']);
    const ops = int8.nodes.map((n) => n.op);
    // Each float op reads a float value (an int8 layer writing float32, or a DequantizeLinear)
    // and the next int8 layer quantizes its result again.
    expect(ops).toEqual([
      'QuantizeLinear', 'QLinearConv', 'QLinearLookup', 'QLinearConv', 'Max', 'QuantizeLinear', 'QLinearConv', 'PRelu',
      'QuantizeLinear', 'QLinearConv', 'Pow', 'ReduceMean', 'QuantizeLinear', 'QLinearGemm',
    ]);
    const x = images(8);
    const want = await run(graph, x);
    const got = await run(int8, x);
    expect(relL2(got, want)).toBeLessThan(0.1);
    // The plain-JS int8 reference runs the islands too: the report has its SQNR figures.
    expect(report.measuredWith).not.toMatch(/no sqnrDb/);
    const reference = runInt8Reference(int8, { x })[int8.outputs[0]!.name]!.data as Float32Array;
    expect(relL2(got, reference)).toBeLessThan(0.02);
    // Its QDQ export (Gelu written out at opset 17) runs on onnxruntime and agrees with Kiln's int8 run.
    const ort = (await runOrt(exportModel(int8), { x: { data: x.data as Float32Array, dims: x.dims.slice() } })).y!.data;
    expect(relL2(ort, got)).toBeLessThan(0.05);
  });
});

describe('quantizeDynamic: element-wise ops between DynamicQGemm layers', () => {
  it('MatMul -> Gelu -> MatMul (a transformer MLP) keeps the Gelu in float and runs', async () => {
    const bytes = model({
      opset: 20,
      inputs: [valueInfo('x', ['N', 16])],
      outputs: [valueInfo('y')],
      nodes: [node('MatMul', ['x', 'w1'], ['h']), node('Gelu', ['h'], ['g'], [attr.s('approximate', 'tanh')]), node('MatMul', ['g', 'w2'], ['y'])],
      initializers: [randomTensor('w1', [16, 32], 1, 0.3), randomTensor('w2', [32, 8], 2, 0.3)],
    });
    const graph = await importModel(bytes);
    const { graph: int8 } = quantizeDynamic(graph);
    expect(int8.nodes.map((n) => n.op)).toEqual(['DynamicQGemm', 'Gelu', 'DynamicQGemm']);
    const x = new Tensor('float32', Float32Array.from({ length: 64 }, (_, i) => Math.sin(i)), [4, 16]);
    expect(relL2(await run(int8, x), await run(graph, x))).toBeLessThan(0.05);
  });
});

describe('imported int8 ONNX models with element-wise ops between quantized layers', () => {
  it('QLinearConv -> DQ -> ReduceMean -> Q -> DQ -> Elu -> Max -> Q -> DQ runs and matches onnxruntime', async () => {
    const [o, c] = [4, 3];
    const w = Array.from({ length: o * c * 9 }, (_, i) => ((i * 37) % 255) - 127);
    const bytes = model({
      opset: 13,
      inputs: [valueInfo('x', ['N', c, 7, 6])],
      outputs: [valueInfo('y')],
      nodes: [
        node('QuantizeLinear', ['x', 'xs', 'xz'], ['xq']),
        node('QLinearConv', ['xq', 'xs', 'xz', 'w', 'ws', 'wz', 'cs', 'cz', 'b'], ['cq'], [attr.ints('kernel_shape', [3, 3]), attr.ints('pads', [1, 1, 1, 1])], 'conv'),
        node('DequantizeLinear', ['cq', 'cs', 'cz'], ['cf']),
        node('ReduceMean', ['cf'], ['m'], [attr.ints('axes', [2, 3]), attr.i('keepdims', 1)], 'mean'),
        node('QuantizeLinear', ['m', 'ms', 'mz'], ['mq']),
        node('DequantizeLinear', ['mq', 'ms', 'mz'], ['mf']),
        node('Elu', ['mf'], ['e'], [], 'elu'),
        node('Max', ['e', 'floor'], ['k'], [], 'max'),
        node('QuantizeLinear', ['k', 'ms', 'mz'], ['kq']),
        node('DequantizeLinear', ['kq', 'ms', 'mz'], ['y']),
      ],
      initializers: [
        floatTensor('xs', [], [1 / 64]), { name: 'xz', dims: [], dataType: DataType.UINT8, int32Data: [64] },
        { name: 'w', dims: [o, c, 3, 3], dataType: DataType.INT8, int32Data: w },
        floatTensor('ws', [o], [0.01, 0.02, 0.005, 0.03]), { name: 'wz', dims: [o], dataType: DataType.INT8, int32Data: [0, 0, 0, 0] },
        floatTensor('cs', [], [0.05]), { name: 'cz', dims: [], dataType: DataType.UINT8, int32Data: [100] },
        { name: 'b', dims: [o], dataType: DataType.INT32, int32Data: [100, -2000, 0, 5000] },
        floatTensor('ms', [], [0.02]), { name: 'mz', dims: [], dataType: DataType.UINT8, int32Data: [128] },
        floatTensor('floor', [], [-0.3]),
      ],
    });
    const x = Float32Array.from({ length: 2 * c * 42 }, (_, i) => Math.sin(i * 0.3) * 1.5);
    const want = (await runOrt(bytes, { x: { data: x, dims: [2, c, 7, 6] } })).y!.data;
    const got = await run(bytes, new Tensor('float32', x, [2, c, 7, 6]));
    expect(got.length).toBe(want.length);
    // The same up to one output quantization step (a mean rounding the other way).
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `element ${i}`).toBeLessThanOrEqual(0.02 + 1e-6);
  });
});
