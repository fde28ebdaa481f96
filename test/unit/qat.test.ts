/**
 * quantizeAwareTrain / convertQat: the converted int8 graph (run by the reference interpreter of
 * the int8 IR) agrees with the QAT model's simulated forward; the graph has the form PTQ gives the
 * same model; bad arguments are refused with the argument named.
 */
import { describe, expect, it } from 'vitest';

import { synthetic } from '../../src/data/synthetic.js';
import type { Dataset } from '../../src/data/dataset.js';
import { BatchNorm2d } from '../../src/nn/layers/batch-norm2d.js';
import { Conv2d } from '../../src/nn/layers/conv2d.js';
import { Flatten } from '../../src/nn/layers/flatten.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { MaxPool2d } from '../../src/nn/layers/max-pool2d.js';
import { ReLU } from '../../src/nn/layers/relu.js';
import { Sequential } from '../../src/nn/layers/sequential.js';
import { seedCNN } from '../../src/nn/models.js';
import { quantizeAwareTrain, convertQat, prepareQat } from '../../src/quant/qat.js';
import { quantize } from '../../src/quant/ptq.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import type { Graph } from '../../src/graph/ir.js';
import { Tensor } from '../../src/tensor.js';
import { train } from '../../src/train/trainer.js';

const shape = [1, 12, 12] as const;
const data = synthetic({ count: 192, imageShape: shape, numClasses: 4, seed: 3, signal: 0.5 });
const held = synthetic({ count: 64, imageShape: shape, numClasses: 4, seed: 4, signal: 0.5 });

async function trainedModel() {
  const model = seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 4, widthMultiplier: 0.25, seed: 5 });
  await train(model, data, { epochs: 2, batchSize: 32, optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 } });
  return model;
}

function batchOf(d: Dataset): Tensor<'float32'> {
  return new Tensor('float32', d.images, [d.length, ...d.imageShape]);
}

const argmax = (row: ArrayLike<number>): number => {
  let best = 0;
  for (let k = 1; k < row.length; k++) if (row[k] > row[best]) best = k;
  return best;
};

function top1(logits: Float32Array, classes: number): number[] {
  return Array.from({ length: logits.length / classes }, (_, i) => argmax(logits.subarray(i * classes, (i + 1) * classes)));
}

describe('quantizeAwareTrain', () => {
  it.each([
    ['uint8 activations, per-channel weights', {}],
    ['int8 activations, per-tensor weights', { activations: 'int8', perChannel: false }],
  ] as [string, { activations?: 'int8'; perChannel?: boolean }][])('converts to an int8 graph whose reference run agrees with the simulated forward (%s)', async (_, scheme) => {
    const model = await trainedModel();
    const before = model.parameters().map((p) => p.value.data.slice());
    const { graph, report, model: qat, history } = await quantizeAwareTrain(model, data, { epochs: 1, train: { batchSize: 32 }, ...scheme });
    expect(report.activations).toBe(scheme.activations ?? 'uint8');
    // The measured half of the report, as PTQ's: every layer has an SQNR, every quantized output a clipping fraction.
    for (const layer of report.layers) {
      expect(layer.sqnrDb).toBeGreaterThan(15);
      if (layer.outputScale !== undefined) expect(layer.clippingFraction).toBeGreaterThanOrEqual(0);
    }
    expect(report.measuredWith).toMatch(/first 64 training images/);
    expect(JSON.parse(graph.metadata!.kiln_quantization).layers[0].sqnrDb).toBe(report.layers[0].sqnrDb);
    expect(report.weights.perChannel).toBe(scheme.perChannel ?? true);
    expect(history.epochs).toHaveLength(1);
    model.parameters().forEach((p, i) => expect(p.value.data).toEqual(before[i]));
    expect(report.calibration.method).toBe('qat');
    expect(report.layers.map((l) => l.int8Op)).toEqual(['QLinearConv', 'QLinearConv', 'QLinearGemm', 'QLinearGemm']);
    expect(graph.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'QLinearConv', 'MaxPool', 'QLinearConv', 'MaxPool', 'Flatten', 'QLinearGemm', 'QLinearGemm']);

    // The int8 weights of the graph, dequantized, are bit for bit the weights the QAT forward used.
    const int8Nodes = graph.nodes.filter((n) => n.op === 'QLinearConv' || n.op === 'QLinearGemm');
    qat.weighted.forEach((layer, i) => {
      const [, wName, sName] = int8Nodes[i].inputs;
      const w = graph.initializers.get(wName)!.data as Int8Array;
      const scales = graph.initializers.get(sName)!.data as Float32Array;
      const per = w.length / layer.layer.weight.value.dims[0];
      const dequantized = Float32Array.from(w, (q, k) => q * scales[scales.length === 1 ? 0 : Math.floor(k / per)]);
      expect(new Uint32Array(dequantized.buffer)).toEqual(new Uint32Array(layer.fakeQuantizedWeights().buffer));
    });
    const x = batchOf(held);
    const int8 = runInt8Reference(graph, { [graph.inputs[0].name]: x })[graph.outputs[0].name];
    const simulated = await qat.forward(x);
    const [a, b] = [top1(int8.data as Float32Array, 4), top1(simulated.data, 4)];
    const agree = a.filter((p, i) => p === b[i]).length;
    expect(agree).toBe(held.length);
    // Logits within a few output quantization steps' worth: the two differ only in rounding.
    let maxDiff = 0;
    simulated.data.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - (int8.data as Float32Array)[i]))));
    const spread = Math.max(...simulated.data) - Math.min(...simulated.data);
    expect(maxDiff).toBeLessThan(0.05 * spread);
    // The input quantization is exactly the first quantizer's.
    const quantizeNode = graph.nodes[0];
    const inputParams = qat.quantizers[0].qparams();
    expect(quantizeNode.attrs.scale).toBe(inputParams.scale);
    expect(quantizeNode.attrs.zero_point).toBe(inputParams.zeroPoint);
  });

  it('folds BatchNorm2d before fine-tuning: the int8 graph of a Conv+BN model agrees with its simulation', async () => {
    const model = new Sequential(
      new Conv2d(1, 6, 3, { seed: 1 }), new BatchNorm2d(6), new ReLU(), new MaxPool2d(2), new Flatten(), new Linear(6 * 5 * 5, 4, { seed: 2 }),
    );
    model.inputShape = shape;
    await train(model, data, { epochs: 2, batchSize: 32, optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 } });
    const { graph, model: qat } = await quantizeAwareTrain(model, data, { epochs: 1, train: { batchSize: 32 }, reportImages: 0 });
    expect(graph.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'QLinearConv', 'MaxPool', 'Flatten', 'QLinearGemm']);
    const x = batchOf(held);
    const int8 = runInt8Reference(graph, { [graph.inputs[0].name]: x })[graph.outputs[0].name];
    const simulated = await qat.forward(x);
    const [a, b] = [top1(int8.data as Float32Array, 4), top1(simulated.data, 4)];
    expect(a.filter((p, i) => p === b[i]).length).toBe(held.length);
  });

  it('keeps a pruned model pruned: weights zero before QAT are zero int8 codes after it, the others move', async () => {
    const model = await trainedModel();
    const conv2 = model.layers[3] as Conv2d;
    const w = conv2.weight.value.data;
    // Every other weight pruned; an optimizer with momentum would revive them without the mask.
    for (let i = 0; i < w.length; i += 2) w[i] = 0;
    const before = Float32Array.from(w);
    const { graph } = await quantizeAwareTrain(model, data, { epochs: 1, train: { batchSize: 32, optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 } }, reportImages: 0 });
    const conv = graph.nodes.filter((n) => n.op === 'QLinearConv')[1];
    const weight = conv.inputs.map((name) => graph.initializers.get(name)).find((t) => t?.type === 'int8' && t.dims.join() === conv2.weight.value.dims.join());
    const q = weight!.data as Int8Array;
    let movedKept = 0;
    for (let i = 0; i < q.length; i++) {
      if (before[i] === 0) expect(q[i]).toBe(0);
      else movedKept += q[i] !== 0 ? 1 : 0;
    }
    expect(movedKept).toBeGreaterThan(q.length / 4);
  });

  it('gives the same graph as PTQ of the same model: nodes, value names, attributes, initializer types', async () => {
    const model = await trainedModel();
    const ptq = await quantize(model, data, { reportImages: 0, batches: 2 });
    const qat = await quantizeAwareTrain(model, data, { epochs: 1, train: { batchSize: 32 }, reportImages: 0 });
    const form = (g: Graph) => ({
      inputs: g.inputs,
      outputs: g.outputs,
      nodes: g.nodes.map((n) => ({ name: n.name, op: n.op, inputs: n.inputs, outputs: n.outputs, attrs: Object.keys(n.attrs).sort() })),
      initializers: [...g.initializers].map(([name, t]) => [name, t.type, t.dims]),
    });
    expect(form(qat.graph)).toEqual(form(ptq.graph));
    expect(ptq.report.layers.map((l) => [l.node, l.outputDtype])).toEqual(qat.report.layers.map((l) => [l.node, l.outputDtype]));
  });

  it('takes a prepared QatModel and freezes its observers after observerEpochs', async () => {
    const qat = prepareQat(await trainedModel());
    const maxima: number[] = [];
    const result = await quantizeAwareTrain(qat, data, {
      epochs: 2,
      observerEpochs: 1,
      train: { batchSize: 32, callbacks: { onBatchEnd: () => void maxima.push(qat.quantizers[2].range().max) } },
    });
    expect(result.model).toBe(qat);
    // 192 images in batches of 32: 6 steps per epoch; the range moves in the first, not the second.
    expect(maxima).toHaveLength(12);
    expect(new Set(maxima.slice(0, 6)).size).toBeGreaterThan(1);
    expect(new Set(maxima.slice(5)).size).toBe(1);
  });

  it('refuses bad arguments with the argument named', async () => {
    const model = await trainedModel();
    await expect(quantizeAwareTrain({} as never, data)).rejects.toThrow(/Expected a Module for module/);
    await expect(quantizeAwareTrain(model, data, { epochs: 0 })).rejects.toThrow(/options.epochs/);
    await expect(quantizeAwareTrain(model, data, { epoch: 2 } as never)).rejects.toThrow(/unknown option 'epoch'/);
    await expect(quantizeAwareTrain(model, data, { epochs: 2, observerEpochs: 3 })).rejects.toThrow(/options.observerEpochs/);
    await expect(quantizeAwareTrain(model, data, { train: { epochs: 3 } as never })).rejects.toThrow(/options.train.epochs/);
    await expect(quantizeAwareTrain(new Linear(3, 2), data)).rejects.toThrow(/module.inputShape/);
    await expect(quantizeAwareTrain(prepareQat(model), data, { perChannel: false })).rejects.toThrow(/options.perChannel/);
    await expect(quantizeAwareTrain(model, data, { activations: 'int4' as never })).rejects.toThrow(/options.activations/);
    await expect(quantizeAwareTrain(model, data, { reportImages: -1 })).rejects.toThrow(/options.reportImages/);
    const wrong = synthetic({ count: 8, imageShape: [3, 12, 12], numClasses: 4 });
    await expect(quantizeAwareTrain(model, wrong)).rejects.toThrow(/Expected 1 input channels/);
    // An observer that never saw data cannot be converted.
    expect(() => convertQat(prepareQat(model))).toThrow(/Expected calibration data for input/);
  });
});
