/**
 * prepareQat: where the QatModel fake-quantizes, parameter names and copies, BatchNorm folding,
 * refusals; a gradient check of a whole QatModel's backward (STE) against central finite
 * differences of a float64 reference; and train() running on a QatModel unchanged.
 */
import { describe, expect, it } from 'vitest';

import { synthetic } from '../../src/data/synthetic.js';
import { AvgPool2d } from '../../src/nn/layers/avg-pool2d.js';
import { BatchNorm2d } from '../../src/nn/layers/batch-norm2d.js';
import { Conv2d } from '../../src/nn/layers/conv2d.js';
import { Flatten } from '../../src/nn/layers/flatten.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { MaxPool2d } from '../../src/nn/layers/max-pool2d.js';
import { ReLU } from '../../src/nn/layers/relu.js';
import { Sequential } from '../../src/nn/layers/sequential.js';
import { seedCNN } from '../../src/nn/models.js';
import { fakeQuantizePerChannel } from '../../src/quant/fake-quant.js';
import { ActivationFakeQuant } from '../../src/quant/qat-activation.js';
import { prepareQat } from '../../src/quant/qat-prepare.js';
import { qatRanges } from '../../src/quant/qat-ranges.js';
import { toGraph } from '../../src/graph/from-module.js';
import { optimizeGraph } from '../../src/graph/passes/index.js';
import { QatWeighted } from '../../src/quant/qat-weighted.js';
import { perChannelQuantParams, quantParams } from '../../src/quant/qparams.js';
import { Tensor } from '../../src/tensor.js';
import { train } from '../../src/train/trainer.js';
import { Rng } from '../../src/util/rng.js';

const randomTensor = (rng: Rng, dims: number[], scale = 1): Tensor<'float32'> =>
  new Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.normal() * scale), dims);

const kinds = (stages: readonly unknown[]): string[] =>
  stages.map((s) => (s instanceof ActivationFakeQuant ? 'FQ' : s instanceof QatWeighted ? `Q${s.layer.constructor.name}` : (s as object).constructor.name));

describe('prepareQat', () => {
  it('fake-quantizes the input and each Conv2d/Linear(+ReLU) output but the last, under the fp32 names', () => {
    const model = seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 4, widthMultiplier: 0.25, seed: 3 });
    const qat = prepareQat(model);
    expect(kinds(qat.stages)).toEqual([
      'FQ', 'QConv2d', 'ReLU', 'MaxPool2d', 'FQ', 'QConv2d', 'ReLU', 'MaxPool2d', 'FQ', 'Flatten', 'QLinear', 'ReLU', 'FQ', 'QLinear',
    ]);
    expect(qat.quantizers.map((q) => q.observer.name)).toEqual(['input', '0.output', '3.output', '7.output']);
    expect(qat.parameters().map((p) => p.name)).toEqual(model.parameters().map((p) => p.name));
    // Copies: equal values, separate memory.
    qat.parameters().forEach((p, i) => {
      const original = model.parameters()[i];
      expect(p.value.data).toEqual(original.value.data);
      expect(p.value.data.buffer).not.toBe(original.value.data.buffer);
    });
    expect(qat.inputShape).toEqual([1, 12, 12]);
    expect(qat.outputShape([2, 1, 12, 12])).toEqual([2, 4]);
  });

  it('folds a BatchNorm2d that follows a Conv2d (eval statistics)', async () => {
    const rng = new Rng(5);
    const conv = new Conv2d(2, 3, 3, { seed: 1, bias: false });
    const bn = new BatchNorm2d(3);
    bn.weight.value.data.set([1.5, -0.5, 2]);
    bn.bias.value.data.set([0.1, 0.2, -0.3]);
    bn.runningMean.value.data.set([0.3, -0.2, 0.05]);
    bn.runningVar.value.data.set([0.5, 2, 1.2]);
    const model = new Sequential(conv, bn, new ReLU(), new Flatten(), new Linear(3 * 4 * 4, 2, { seed: 2 }));
    model.eval();
    const qat = prepareQat(model);
    expect(kinds(qat.stages)).toEqual(['FQ', 'QConv2d', 'ReLU', 'FQ', 'Flatten', 'QLinear']);
    expect(qat.parameters().map((p) => p.name)).toEqual(['0.weight', '0.bias', '4.weight', '4.bias']);
    const folded = qat.weighted[0].layer;
    folded.eval();
    const x = randomTensor(rng, [2, 2, 6, 6]);
    const expected = await bn.forward(await conv.forward(x));
    const actual = await folded.forward(x);
    actual.data.forEach((v, i) => expect(v).toBeCloseTo(expected.data[i], 5));
  });

  it('refuses layers without an int8 form, non-modules and unknown options', () => {
    const pooled = new Sequential(new Conv2d(1, 2, 3), new AvgPool2d(2), new Flatten(), new Linear(2, 2));
    expect(() => prepareQat(pooled)).toThrow(expect.objectContaining({ code: 'ERR_KILN_UNSUPPORTED_OP' }));
    expect(() => prepareQat(pooled)).toThrow(/received a AvgPool2d \(layer 1\)/);
    expect(() => prepareQat(new Sequential(new ReLU(), new Flatten()))).toThrow(/at least one Conv2d or Linear/);
    expect(() => prepareQat({} as never)).toThrow(/Expected a Module for module/);
    expect(() => prepareQat(new Linear(2, 2), { momentum: 0.1 } as never)).toThrow(/unknown option 'momentum'/);
    expect(() => prepareQat(new Linear(2, 2), { observerMomentum: 0 })).toThrow(/options.observerMomentum/);
  });
});

describe('QatModel backward (straight-through estimator)', () => {
  it('matches central finite differences of a float64 reference, saturated activations included', async () => {
    const rng = new Rng(21);
    const model = new Sequential(new Linear(6, 5, { seed: 4 }), new ReLU(), new Linear(5, 3, { seed: 5 }));
    for (const p of model.parameters()) if (p.name.endsWith('bias')) p.value.data.forEach((_, i, a) => (a[i] = rng.normal() * 0.2));
    const qat = prepareQat(model);
    qat.train(true);
    const x = randomTensor(rng, [4, 6]);
    // Calibrate on a narrower batch and freeze, so the real batch's extremes saturate (zero gradient).
    await qat.forward(new Tensor('float32', x.data.map((v) => v * 0.7), x.dims));
    qat.freezeObservers();
    const [inFq, lin1, , hidFq, lin2] = qat.stages as [ActivationFakeQuant, QatWeighted, unknown, ActivationFakeQuant, QatWeighted];
    // The native forward, stage by stage, to read the fake-quantized activations.
    const acts: Tensor<'float32'>[] = [];
    let h = x;
    for (const s of qat.stages) acts.push((h = await s.forward(h)));
    const upstream = randomTensor(rng, h.dims as number[]);
    const gradInput = await qat.backward(upstream, true);
    const analytic = [gradInput.data, ...qat.parameters().map((p) => p.grad)].map((a) => Float64Array.from(a));

    // Reference: each fake-quant is clamp(v) + (its quantization error at the base point, held
    // constant), each weight w + (fq(w0) - w0): the function whose exact gradient the STE computes.
    const inRange = quantParams(inFq.range());
    const hidRange = quantParams(hidFq.range());
    const edges = (p: typeof inRange): [number, number] => [(0 - p.zeroPoint) * p.scale, (255 - p.zeroPoint) * p.scale];
    const [inLo, inHi] = edges(inRange);
    const [hidLo, hidHi] = edges(hidRange);
    const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
    const noiseIn = Float64Array.from(acts[0].data, (q, i) => q - clamp(x.data[i], inLo, inHi));
    const preHidden = acts[2].data; // after Linear and ReLU, before the hidden fake-quant
    const noiseHid = Float64Array.from(acts[3].data, (q, i) => q - clamp(preHidden[i], hidLo, hidHi));
    const weightNoise = [lin1, lin2].map((l) => {
      const w = l.layer.weight.value.data;
      return Float64Array.from(l.fakeQuantizedWeights(), (q, i) => q - w[i]);
    });
    const base = [x.data, ...qat.parameters().map((p) => p.value.data)].map((a) => Float64Array.from(a));
    const reference = (v: Float64Array[]): number => {
      const [xin, w1, b1, w2, b2] = v;
      const [n, k1, m1, m2] = [4, 6, 5, 3];
      let loss = 0;
      for (let r = 0; r < n; r++) {
        const a0 = Array.from({ length: k1 }, (_, j) => clamp(xin[r * k1 + j], inLo, inHi) + noiseIn[r * k1 + j]);
        const a1 = Array.from({ length: m1 }, (_, o) => {
          let s = b1[o];
          for (let j = 0; j < k1; j++) s += (w1[o * k1 + j] + weightNoise[0][o * k1 + j]) * a0[j];
          return clamp(Math.max(0, s), hidLo, hidHi) + noiseHid[r * m1 + o];
        });
        for (let o = 0; o < m2; o++) {
          let s = b2[o];
          for (let j = 0; j < m1; j++) s += (w2[o * m1 + j] + weightNoise[1][o * m1 + j]) * a1[j];
          loss += upstream.data[r * m2 + o] * s;
        }
      }
      return loss;
    };
    let saturated = 0;
    for (let t = 0; t < base.length; t++) {
      for (let i = 0; i < base[t].length; i++) {
        const eps = 1e-6;
        const plus = base.map((b) => b.slice());
        const minus = base.map((b) => b.slice());
        plus[t][i] += eps;
        minus[t][i] -= eps;
        const numeric = (reference(plus) - reference(minus)) / (2 * eps);
        expect(Math.abs(analytic[t][i] - numeric)).toBeLessThan(1e-4 * (1 + Math.abs(numeric)));
        if (t === 0 && (x.data[i] < inLo || x.data[i] > inHi)) {
          expect(analytic[t][i]).toBe(0);
          saturated++;
        }
      }
    }
    expect(saturated).toBeGreaterThan(0);
  });

  it('a QatWeighted layer computes with the fake-quantized weights and hands back the float ones', async () => {
    const rng = new Rng(8);
    const conv = new Conv2d(3, 4, 3, { seed: 9, padding: 1 });
    const qat = prepareQat(new Sequential(conv, new ReLU()));
    const weighted = qat.weighted[0];
    weighted.train(true);
    const master = weighted.layer.weight.value;
    const reference = new Conv2d(3, 4, 3, { padding: 1 });
    const params = perChannelQuantParams(master.data, master.dims, 'int8');
    fakeQuantizePerChannel(master.data, params, reference.weight.value.data);
    reference.bias!.value.data.set(conv.bias!.value.data);
    const x = randomTensor(rng, [2, 3, 5, 5]);
    const y = await weighted.forward(x);
    const yRef = await reference.forward(x);
    expect(y.data).toEqual(yRef.data);
    const g = randomTensor(rng, y.dims as number[]);
    const gx = await weighted.backward(g, true);
    const gxRef = await reference.backward(g, true);
    expect(gx.data).toEqual(gxRef.data);
    expect(weighted.layer.weight.grad).toEqual(reference.weight.grad);
    expect(weighted.layer.weight.value).toBe(master);
    // The quantization is not the identity here (so the checks above could fail).
    expect(reference.weight.value.data).not.toEqual(master.data);
  });
});

describe('train() on a QatModel', () => {
  it('fine-tunes the copies, leaves the fp32 model alone and moves the observers until frozen', async () => {
    const data = synthetic({ count: 96, imageShape: [1, 10, 10], numClasses: 3, seed: 2, signal: 0.6 });
    const model = seedCNN({ inChannels: 1, height: 10, width: 10, numClasses: 3, widthMultiplier: 0.25, seed: 4 });
    const before = model.parameters().map((p) => p.value.data.slice());
    const qat = prepareQat(model);
    const ranges: number[] = [];
    let step = 0;
    const history = await train(qat, data, {
      epochs: 2,
      batchSize: 16,
      optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 },
      callbacks: {
        onBatchEnd: () => {
          ranges.push(qat.quantizers[1].range().max);
          if (++step === 6) qat.freezeObservers();
        },
      },
    });
    expect(history.epochs.every((e) => Number.isFinite(e.trainLoss))).toBe(true);
    model.parameters().forEach((p, i) => expect(p.value.data).toEqual(before[i]));
    expect(qat.parameters()[0].value.data).not.toEqual(before[0]);
    // Moving until step 6, fixed after.
    expect(new Set(ranges.slice(0, 6)).size).toBeGreaterThan(1);
    expect(new Set(ranges.slice(5)).size).toBe(1);
  });
});

describe('qatRanges', () => {
  it('gives every int8 op input its quantizer range, through MaxPool/Flatten, in the fused graph', async () => {
    const model = seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 4, widthMultiplier: 0.25, seed: 3 });
    const qat = prepareQat(model);
    const rng = new Rng(4);
    await qat.forward(randomTensor(rng, [3, 1, 12, 12]));
    // optimizeGraph fuses Relu into Conv/Gemm as prepareForQuantization does.
    const graph = optimizeGraph(toGraph(qat, qat.inputShape!));
    expect(graph.nodes.map((n) => n.op)).toEqual(['Conv', 'MaxPool', 'Conv', 'MaxPool', 'Flatten', 'Gemm', 'Gemm']);
    const ranges = qatRanges(qat, graph);
    const [input, q1, q2, q3] = qat.quantizers.map((q) => q.range());
    const [conv1, pool1, conv2, pool2, flatten, gemm1] = graph.nodes;
    expect(ranges.get(graph.inputs[0].name)).toEqual(input);
    for (const v of [conv1.outputs[0], pool1.outputs[0]]) expect(ranges.get(v)).toEqual(q1);
    for (const v of [conv2.outputs[0], pool2.outputs[0], flatten.outputs[0]]) expect(ranges.get(v)).toEqual(q2);
    expect(ranges.get(gemm1.outputs[0])).toEqual(q3);
    // The logits stay float: no range.
    expect(ranges.size).toBe(7);
    expect(ranges.has(graph.outputs[0].name)).toBe(false);
    expect(new Set([input, q1, q2, q3]).size).toBe(4);
  });

  it('refuses a model whose quantizers were not lowered into that graph', () => {
    const qat = prepareQat(new Linear(2, 2));
    const other = toGraph(new Linear(2, 2), [2]);
    expect(() => qatRanges(qat, other)).toThrow(/The quantizer input was not lowered/);
  });
});
