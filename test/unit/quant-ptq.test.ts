/**
 * quantize() / convertToInt8(): the int8 graph's structure (one Q at the input, nothing between
 * consecutive int8 nodes, float logits), weights, biases and scales against the float graph, every
 * option, the report, fp32 fallback and strict mode, and every bad input the issue lists.
 */
import { describe, expect, it } from 'vitest';

import { ErrorCode, KilnError } from '../../src/errors.js';
import { exportModel } from '../../src/onnx/export.js';
import { importModel } from '../../src/onnx/import.js';
import { toGraph } from '../../src/graph/from-module.js';
import type { Graph } from '../../src/graph/ir.js';
import { AvgPool2d } from '../../src/nn/layers/avg-pool2d.js';
import { Conv2d } from '../../src/nn/layers/conv2d.js';
import { Flatten } from '../../src/nn/layers/flatten.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { MaxPool2d } from '../../src/nn/layers/max-pool2d.js';
import { ReLU } from '../../src/nn/layers/relu.js';
import { Sequential } from '../../src/nn/layers/sequential.js';
import { seedCNN } from '../../src/nn/models.js';
import { convertToInt8, prepareForQuantization, quantize, valuesToCalibrate, type QuantizationReport } from '../../src/quant/ptq.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { attr, floatTensor, model as onnxModel, node as onnxNode, randomData, randomTensor, valueInfo } from './onnx-model-builder.js';

const SHAPE = [1, 12, 12];
const model = seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 5, widthMultiplier: 0.25, seed: 5 });

/** Smooth, image-like, non-negative data (deterministic). */
function images(n: number, seed = 0): Tensor<'float32'> {
  const data = new Float32Array(n * 144);
  for (let i = 0; i < data.length; i++) data[i] = 0.5 + 0.5 * Math.sin(i * 0.173 + seed * 1.7 + Math.floor(i / 144) * 0.91);
  return new Tensor('float32', data, [n, ...SHAPE]);
}

const calibration = images(96);

function ops(graph: Graph): string[] {
  return graph.nodes.map((n) => n.op);
}

async function fp32Logits(x: Tensor): Promise<Float32Array> {
  const session = await InferenceSession.create(model, { inputShape: SHAPE });
  const out = await session.run({ [session.inputNames[0]]: x });
  session.release();
  return out[session.outputNames[0]].data;
}

describe('quantize: the int8 graph', () => {
  it('SeedCNN: one QuantizeLinear, int8 ops back to back, float logits from the last QLinearGemm', async () => {
    const { graph, report } = await quantize(model, calibration, { batchSize: 32 });
    expect(ops(graph)).toEqual(['QuantizeLinear', 'QLinearConv', 'MaxPool', 'QLinearConv', 'MaxPool', 'Flatten', 'QLinearGemm', 'QLinearGemm']);
    // Each int8 node reads the previous one's quantized output directly.
    for (let i = 1; i < graph.nodes.length; i++) expect(graph.nodes[i].inputs[0]).toBe(graph.nodes[i - 1].outputs[0]);
    const last = graph.nodes[graph.nodes.length - 1];
    expect(last.attrs.y_scale).toBeUndefined();
    expect(last.outputs[0]).toBe(graph.outputs[0].name);
    expect(graph.nodes.filter((n) => n.op === 'QLinearConv').every((n) => n.attrs.kiln_activation === 'Relu' && n.attrs.y_dtype === 'uint8')).toBe(true);
    expect(report.layers.map((l) => l.op)).toEqual(['Conv', 'Conv', 'Gemm', 'Gemm']);
    expect(report.fp32Nodes).toEqual([]);
    expect(JSON.parse(graph.metadata!.kiln_quantization)).toEqual(JSON.parse(JSON.stringify(report)));
  });

  it('weights int8 per output channel, biases int32 = round(b / (x_scale * w_scale[o])), input scale from the data range', async () => {
    const prepared = prepareForQuantization(toGraph(model, SHAPE));
    const { graph, report } = await quantize(model, calibration);
    const conv = graph.nodes.find((n) => n.op === 'QLinearConv')!;
    const floatConv = prepared.nodes.find((n) => n.op === 'Conv')!;
    const w = prepared.initializers.get(floatConv.inputs[1])!.data as Float32Array;
    const b = prepared.initializers.get(floatConv.inputs[2])!.data as Float32Array;
    const wq = graph.initializers.get(conv.inputs[1])!;
    const ws = graph.initializers.get(conv.inputs[2])!.data as Float32Array;
    const bq = graph.initializers.get(conv.inputs[3])!;
    expect(wq.type).toBe('int8');
    expect(bq.type).toBe('int32');
    const channels = wq.dims[0];
    expect(ws.length).toBe(channels);
    const per = w.length / channels;
    for (let o = 0; o < channels; o++) {
      let maxAbs = 0;
      for (let i = o * per; i < (o + 1) * per; i++) maxAbs = Math.max(maxAbs, Math.abs(w[i]));
      expect(ws[o]).toBe(Math.fround(maxAbs / 127));
      for (let i = o * per; i < (o + 1) * per; i++) expect(Math.abs(wq.data[i] * ws[o] - w[i])).toBeLessThanOrEqual(ws[o] / 2 + 1e-7);
      const xScale = conv.attrs.x_scale as number;
      expect(bq.data[o]).toBe(Math.round(b[o] / Math.fround(xScale * ws[o])));
    }
    // Calibration images lie in [0, 1]: the uint8 input scale is (max - 0) / 255 with zero point 0.
    let max = 0;
    for (const v of calibration.data) max = Math.max(max, v);
    expect(report.layers[0].inputScale).toBe(Math.fround(max / 255));
    expect(report.layers[0].inputZeroPoint).toBe(0);
  });

  it('perChannel false: one weight scale per layer', async () => {
    const { graph, report } = await quantize(model, calibration, { perChannel: false });
    for (const n of graph.nodes.filter((x) => x.op.startsWith('QLinear'))) expect(graph.initializers.get(n.inputs[2])!.size).toBe(1);
    expect(report.weights.perChannel).toBe(false);
    expect(report.layers.every((l) => l.weightScaleMin === l.weightScaleMax)).toBe(true);
  });

  it("activations 'int8': symmetric int8 values, zero points 0", async () => {
    const { graph, report } = await quantize(model, calibration, { activations: 'int8' });
    expect(graph.nodes[0].attrs.dtype).toBe('int8');
    expect(report.activations).toBe('int8');
    for (const l of report.layers) {
      expect(l.inputZeroPoint).toBe(0);
      if (l.outputScale !== undefined) expect([l.outputZeroPoint, l.outputDtype]).toEqual([0, 'int8']);
    }
  });

  it('the int8 graph tracks fp32 (reference interpreter) and the report measures it', async () => {
    const held = images(16, 9);
    const { graph, report } = await quantize(model, calibration, { reportImages: 32 });
    const fp32 = await fp32Logits(held);
    const q = runInt8Reference(graph, { [graph.inputs[0].name]: held })[graph.outputs[0].name].data as Float32Array;
    let signal = 0;
    let noise = 0;
    for (let i = 0; i < fp32.length; i++) {
      signal += fp32[i] ** 2;
      noise += (fp32[i] - q[i]) ** 2;
    }
    expect(10 * Math.log10(signal / noise)).toBeGreaterThan(25);
    for (const l of report.layers) {
      expect(l.sqnrDb).toBeGreaterThan(20);
      expect(l.sqnrDb).toBeLessThan(80);
      // minmax covers every calibration value: nothing clips.
      if (l.outputScale !== undefined) expect(l.clippingFraction).toBe(0);
    }
    expect(report.measuredWith).toMatch(/reference interpreter/);
  });

  it.each(['minmax', 'percentile', 'entropy', 'mse'] as const)('method %s calibrates every layer', async (method) => {
    const { report } = await quantize(model, calibration, { method });
    expect(report.calibration.method).toBe(method);
    expect(report.layers).toHaveLength(4);
    for (const l of report.layers) expect(l.sqnrDb).toBeGreaterThan(10);
  });

  it('percentile 99 clips about 1% of some layer output and narrows its range against minmax', async () => {
    const minmax = await quantize(model, calibration, { method: 'minmax' });
    const p99 = await quantize(model, calibration, { method: 'percentile', percentile: 99 });
    expect(p99.report.calibration.percentile).toBe(99);
    const clipped = p99.report.layers.map((l) => l.clippingFraction ?? 0);
    expect(Math.max(...clipped)).toBeGreaterThan(0.001);
    expect(Math.max(...clipped)).toBeLessThan(0.02);
    p99.report.layers.forEach((l, i) => {
      if (l.outputScale !== undefined) expect(l.outputScale).toBeLessThanOrEqual(minmax.report.layers[i].outputScale!);
    });
  });

  it('batches and batchSize bound the calibration images; onProgress reports each batch', async () => {
    const seen: string[] = [];
    const { report } = await quantize(model, calibration, { batches: 2, batchSize: 16, onProgress: (p) => seen.push(`${p.phase} ${p.done}/${p.total}`) });
    expect(report.calibration).toEqual({ method: 'minmax', batches: 2, images: 32 });
    expect(seen).toEqual(['calibrate 1/2', 'calibrate 2/2', 'measure 1/2', 'measure 2/2']);
  });

  it('takes a Graph, a Dataset-like object and an array of batches', async () => {
    const graph = toGraph(model, SHAPE);
    const a = await quantize(graph, calibration);
    const dataset = { name: 'd', images: calibration.data, labels: new Int32Array(96), length: 96, imageShape: [1, 12, 12] as [number, number, number], numClasses: 5 };
    const b = await quantize(model, dataset);
    const c = await quantize(model, [images(48), images(48, 3)]);
    expect(a.report.layers.map((l) => l.outputScale)).toEqual(b.report.layers.map((l) => l.outputScale));
    expect(c.report.calibration.images).toBe(96);
  });

  it('quantizes an imported ONNX graph like the Module it came from', async () => {
    const imported = await importModel(exportModel(model, { inputShape: SHAPE }));
    const a = await quantize(imported, calibration);
    const b = await quantize(model, calibration);
    expect(a.report.fp32Nodes).toEqual([]);
    expect(a.report.layers.map((l) => [l.int8Op, l.inputScale, l.outputScale])).toEqual(b.report.layers.map((l) => [l.int8Op, l.inputScale, l.outputScale]));
    const x = images(3, 4);
    const qa = runInt8Reference(a.graph, { [a.graph.inputs[0].name]: x })[a.graph.outputs[0].name].data;
    const qb = runInt8Reference(b.graph, { [b.graph.inputs[0].name]: x })[b.graph.outputs[0].name].data;
    expect(Array.from(qa)).toEqual(Array.from(qb));
  });

  it('an average pool between int8 layers runs int8 (QLinearAveragePool), with nothing float around it', async () => {
    const withAvg = new Sequential(new Conv2d(1, 4, 3), new ReLU(), new AvgPool2d(2), new Conv2d(4, 4, 3), new ReLU(), new Flatten(), new Linear(36, 3));
    withAvg.inputShape = Object.freeze([1, 12, 12]);
    const { graph, report } = await quantize(withAvg, calibration);
    expect(ops(graph)).toEqual(['QuantizeLinear', 'QLinearConv', 'QLinearAveragePool', 'QLinearConv', 'Flatten', 'QLinearGemm']);
    expect(report.fp32Nodes).toEqual([]);
    expect(runInt8Reference(graph, { [graph.inputs[0].name]: images(2) })[graph.outputs[0].name].dims).toEqual([2, 3]);
  });

  it('an op with no int8 form stays fp32 between float values and is reported; strict refuses it', async () => {
    // Conv -> ReLU -> AveragePool -> Erf -> Conv ...: Erf has no int8 form, and the pool, read by
    // Erf only, gains nothing from one.
    const withAvg = new Sequential(new Conv2d(1, 4, 3), new ReLU(), new AvgPool2d(2), new Conv2d(4, 4, 3), new ReLU(), new Flatten(), new Linear(36, 3));
    const float = toGraph(withAvg, [1, 12, 12]);
    const pool = float.nodes.find((n) => n.op === 'AveragePool')!;
    const after = float.nodes.find((n) => n.inputs[0] === pool.outputs[0])!;
    const erf = { name: 'erf', op: 'Erf', inputs: [pool.outputs[0]], outputs: ['erf_out'], attrs: {} };
    const withErf: Graph = { ...float, nodes: float.nodes.flatMap((n) => (n === pool ? [n, erf] : n === after ? [{ ...n, inputs: ['erf_out', ...n.inputs.slice(1)] }] : [n])) };
    const { graph, report } = await quantize(withErf, calibration);
    // The conv before them dequantizes in its epilogue (a float output); the conv after them quantizes again.
    expect(ops(graph)).toEqual(['QuantizeLinear', 'QLinearConv', 'AveragePool', 'Erf', 'QuantizeLinear', 'QLinearConv', 'Flatten', 'QLinearGemm']);
    expect(graph.nodes[1].attrs.y_scale).toBeUndefined();
    expect(graph.nodes[2].inputs[0]).toBe(graph.nodes[1].outputs[0]);
    expect(report.fp32Nodes).toEqual([
      { node: pool.name, op: 'AveragePool', reason: 'no reader of its output runs on quantized values (kept float32)' },
      { node: 'erf', op: 'Erf', reason: 'Erf has no int8 form in Kiln\'s int8 IR' },
    ]);
    const ref = runInt8Reference(graph, { [graph.inputs[0].name]: images(2) });
    expect(ref[graph.outputs[0].name].dims).toEqual([2, 3]);
    await expect(quantize(withErf, calibration, { strict: true })).rejects.toMatchObject({ code: ErrorCode.UNSUPPORTED_OP, message: expect.stringMatching(/AveragePool|Erf/) });
  });

  it('a quantized value that reaches a graph output gets one DequantizeLinear', async () => {
    const features = new Sequential(new Conv2d(1, 4, 3), new ReLU(), new MaxPool2d(2), new Flatten());
    features.inputShape = Object.freeze([1, 12, 12]);
    const { graph } = await quantize(features, calibration);
    expect(ops(graph)).toEqual(['QuantizeLinear', 'QLinearConv', 'MaxPool', 'Flatten', 'DequantizeLinear']);
    expect(graph.nodes[4].outputs[0]).toBe(graph.outputs[0].name);
    const out = runInt8Reference(graph, { [graph.inputs[0].name]: images(1) })[graph.outputs[0].name];
    expect([out.type, out.dims]).toEqual(['float32', [1, 100]]);
  });

  it('the fp32 session returns values that later nodes also read, unchanged (what calibration relies on)', async () => {
    const prepared = prepareForQuantization(toGraph(model, SHAPE));
    const watched = valuesToCalibrate(prepared).filter((v) => v !== prepared.inputs[0].name && v !== prepared.outputs[0].name);
    const extra: Graph = { ...prepared, outputs: [...prepared.outputs, ...watched.map((name) => ({ name, dtype: 'float32' as const, shape: [] }))] };
    const x = images(4, 2);
    const plain = await InferenceSession.create(prepared, { graphOptimizationLevel: 'disabled' });
    const session = await InferenceSession.create(extra, { graphOptimizationLevel: 'disabled' });
    const feed = { [prepared.inputs[0].name]: x };
    const [a, b] = [await plain.run(feed), await session.run(feed)];
    const ref = runInt8Reference(prepared, feed, { values: watched });
    expect(Array.from(b[prepared.outputs[0].name].data)).toEqual(Array.from(a[prepared.outputs[0].name].data));
    for (const v of watched) {
      const got = b[v].data;
      const want = ref[v].data as Float32Array;
      expect(got.length).toBe(want.length);
      for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-4 * (1 + Math.abs(want[i])));
    }
  });
});

describe('convertToInt8', () => {
  const prepared = prepareForQuantization(toGraph(model, SHAPE));
  const ranges = new Map(valuesToCalibrate(prepared).map((v) => [v, { min: 0, max: 4 }]));

  it('takes ranges keyed by value name; a missing range is a KilnError naming the value', () => {
    const { graph, report } = convertToInt8(prepared, ranges);
    expect(report.calibration.method).toBe('ranges');
    expect(graph.nodes[0].attrs).toEqual({ scale: Math.fround(4 / 255), zero_point: 0, dtype: 'uint8' });
    const partial = new Map(ranges);
    partial.delete(prepared.inputs[0].name);
    expect(() => convertToInt8(prepared, partial)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARG, message: expect.stringContaining(`'${prepared.inputs[0].name}'`) }));
  });

  it('a layer output without a range is dequantized by its layer', () => {
    const partial = new Map(ranges);
    const lastConv = prepared.nodes.filter((n) => n.op === 'Conv')[1];
    partial.delete(lastConv.outputs[0]);
    const { graph, report } = convertToInt8(prepared, partial);
    expect(report.layers[1].outputDtype).toBe('float32');
    // The next layer quantizes the pooled, flattened float value again.
    expect(ops(graph)).toEqual(['QuantizeLinear', 'QLinearConv', 'MaxPool', 'QLinearConv', 'MaxPool', 'Flatten', 'QuantizeLinear', 'QLinearGemm', 'QLinearGemm']);
  });

  it('refuses bad arguments', () => {
    expect(() => convertToInt8(null as unknown as Graph, ranges)).toThrow(TypeError);
    expect(() => convertToInt8(prepared, {} as unknown as Map<string, { min: number; max: number }>)).toThrow(/ranges/);
    expect(() => convertToInt8(prepared, ranges, { activations: 'int4' as 'int8' })).toThrow(/options.activations/);
    expect(() => convertToInt8(prepared, ranges, { perChannel: 1 as unknown as boolean })).toThrow(/options.perChannel/);
    expect(() => convertToInt8(prepared, new Map([...ranges].map(([k]) => [k, { min: 0, max: NaN }])))).toThrow(RangeError);
  });
});

describe('quantize: bad input', () => {
  const expectArg = async (p: Promise<unknown>, type: typeof TypeError | typeof RangeError, name: string) => {
    const err = await p.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(type);
    expect([ErrorCode.INVALID_ARG, ErrorCode.SHAPE_MISMATCH]).toContain((err as KilnError).code);
    expect((err as Error).message).toContain(name);
  };

  it('no calibration data', async () => {
    await expectArg(quantize(model, new Tensor('float32', new Float32Array(0), [0, 1, 12, 12])), RangeError, 'calibrationData');
    await expectArg(quantize(model, []), RangeError, 'calibrationData');
    await expectArg(quantize(model, undefined as unknown as Tensor), TypeError, 'calibrationData');
  });

  it('data of the wrong shape or dtype', async () => {
    await expectArg(quantize(model, new Tensor('float32', new Float32Array(2 * 100), [2, 1, 10, 10])), RangeError, 'calibrationData');
    await expectArg(quantize(model, [images(2), new Tensor('float32', new Float32Array(200), [2, 1, 10, 10])]), RangeError, 'calibrationData[1]');
    await expectArg(quantize(model, new Tensor('uint8', new Uint8Array(144), [1, 1, 12, 12])), TypeError, 'calibrationData');
  });

  it('NaN or infinite images, and infinite activations', async () => {
    const nan = images(4);
    nan.data[300] = NaN;
    await expectArg(quantize(model, nan), RangeError, 'calibrationData');
    const inf = images(4);
    inf.data[5] = Infinity;
    await expectArg(quantize(model, inf), RangeError, 'calibrationData');
    // Finite images, but weights that overflow float32 inside the network.
    const huge = seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 5, widthMultiplier: 0.25, seed: 5 });
    huge.parameters()[0].value.data.fill(3e38);
    await expectArg(quantize(huge, images(4)), RangeError, 'activation');
  });

  it('out-of-range and unknown options', async () => {
    await expectArg(quantize(model, calibration, { method: 'kl' as 'entropy' }), RangeError, 'options.method');
    await expectArg(quantize(model, calibration, { method: 'percentile', percentile: 0 }), RangeError, 'options.percentile');
    await expectArg(quantize(model, calibration, { method: 'percentile', percentile: 100.5 }), RangeError, 'options.percentile');
    await expectArg(quantize(model, calibration, { percentile: 99 }), RangeError, 'options.percentile');
    await expectArg(quantize(model, calibration, { batches: 0 }), RangeError, 'options.batches');
    await expectArg(quantize(model, calibration, { batchSize: 1.5 }), TypeError, 'options.batchSize');
    await expectArg(quantize(model, calibration, { activations: 'int16' as 'int8' }), RangeError, 'options.activations');
    await expectArg(quantize(model, calibration, { perChannel: 'no' as unknown as boolean }), TypeError, 'options.perChannel');
    await expectArg(quantize(model, calibration, { strict: 1 as unknown as boolean }), TypeError, 'options.strict');
    await expectArg(quantize(model, calibration, { onProgress: 3 as unknown as () => void }), TypeError, 'options.onProgress');
    await expectArg(quantize(model, calibration, { batch: 3 } as unknown as object), RangeError, 'options');
    await expectArg(quantize({} as unknown as Graph, calibration), TypeError, 'modelOrGraph');
  });
});

// Keep the report type exported for QAT's use.
export type { QuantizationReport };

describe('quantize: fused Relu6', () => {
  it('runs int8: a Relu whose quantized range ends at 6, or a float Clip after a float output (MobileNet-style Clip 0..6)', async () => {
    const bytes = onnxModel({
      opset: 13,
      inputs: [valueInfo('x', ['N', 3, 8, 8])],
      outputs: [valueInfo('y')],
      initializers: [randomTensor('w1', [8, 3, 3, 3], 1), randomTensor('w2', [8, 8, 3, 3], 2), floatTensor('lo', [], [0]), floatTensor('hi', [], [6])],
      nodes: [
        onnxNode('Conv', ['x', 'w1'], ['c1'], [attr.ints('pads', [1, 1, 1, 1])]),
        onnxNode('Clip', ['c1', 'lo', 'hi'], ['r1']),
        onnxNode('Conv', ['r1', 'w2'], ['c2'], [attr.ints('pads', [1, 1, 1, 1])]),
        onnxNode('Clip', ['c2', 'lo', 'hi'], ['r2']),
        onnxNode('GlobalAveragePool', ['r2'], ['y']),
      ],
    });
    const float = await importModel(bytes);
    const x = (n: number, seed: number) => new Tensor('float32', randomData(n * 192, seed, 2).map((v) => Math.abs(v)), [n, 3, 8, 8]);
    const { graph, report } = await quantize(float, x(32, 3));
    // Both convs run int8: the first writes u8 (its range ends at 6), the second a float output and a Clip.
    expect(ops(graph)).toEqual(['QuantizeLinear', 'QLinearConv', 'QLinearConv', 'Clip', 'GlobalAveragePool']);
    expect(graph.nodes.filter((n) => n.op === 'QLinearConv').map((n) => n.attrs.kiln_activation)).toEqual(['Relu', 'Relu']);
    expect(report.layers.map((l) => l.activation)).toEqual(['Relu6', 'Relu6']);
    const q1 = graph.nodes[1];
    expect((q1.attrs.y_scale as number) * (255 - (q1.attrs.y_zero_point as number))).toBeLessThanOrEqual(6 * (1 + 1e-6));
    // The clip matters here (many pre-activations exceed 6), and int8 tracks the clipped fp32 model.
    const feeds = { x: x(4, 9) };
    const [fp, q] = [await InferenceSession.create(float), await InferenceSession.create(graph)];
    const want = (await fp.run(feeds))[fp.outputNames[0]].data;
    const got = (await q.run(feeds))[q.outputNames[0]].data;
    const rel = Math.hypot(...want.map((v, i) => v - got[i])) / Math.hypot(...want);
    expect(rel).toBeLessThan(0.05);
    expect(Math.max(...want)).toBeLessThanOrEqual(6);
    fp.release();
    q.release();
  });
});
