/**
 * Layer API: constructor and forward validation (codes and messages naming the argument), shapes,
 * lowering to ONNX-named nodes, config round trips through the registry, parameter naming, buffer
 * reuse, train/eval behaviour. Numerics of the gradients are in gradcheck.test.ts.
 */
import { describe, expect, it } from 'vitest';

import { GraphBuilder } from '../../src/graph/ir.js';
import { AvgPool2d } from '../../src/nn/layers/avg-pool2d.js';
import { BatchNorm2d } from '../../src/nn/layers/batch-norm2d.js';
import { Conv2d } from '../../src/nn/layers/conv2d.js';
import { Dropout } from '../../src/nn/layers/dropout.js';
import { Flatten } from '../../src/nn/layers/flatten.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { MaxPool2d } from '../../src/nn/layers/max-pool2d.js';
import { ReLU } from '../../src/nn/layers/relu.js';
import { Sequential, executionOrder } from '../../src/nn/layers/sequential.js';
import { CrossEntropyLoss, crossEntropy } from '../../src/nn/losses.js';
import type { Module } from '../../src/nn/module.js';
import { moduleFromConfig } from '../../src/nn/registry.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const INVALID = { code: 'ERR_KILN_INVALID_ARG' };
const SHAPE = { code: 'ERR_KILN_SHAPE_MISMATCH' };

function random(dims: number[], seed = 1): Tensor<'float32'> {
  const rng = new Rng(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  return new Tensor('float32', Float32Array.from({ length: n }, () => rng.uniform(-1, 1)), dims);
}

function expectThrow(fn: () => unknown, type: ErrorConstructor | RangeErrorConstructor | TypeErrorConstructor, code: string, text: RegExp): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(type);
  expect(error).toMatchObject({ code });
  expect((error as Error).message).toMatch(text);
}

async function expectReject(p: Promise<unknown>, type: ErrorConstructor | RangeErrorConstructor | TypeErrorConstructor, code: string, text: RegExp): Promise<void> {
  const error = await p.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(type);
  expect(error).toMatchObject({ code });
  expect((error as Error).message).toMatch(text);
}

describe('constructor validation', () => {
  it.each([
    ['Conv2d inChannels', () => new Conv2d(0, 4, 3), RangeError, /Conv2d inChannels.*received 0/],
    ['Conv2d outChannels NaN', () => new Conv2d(3, NaN, 3), TypeError, /Conv2d outChannels.*NaN/],
    ['Conv2d kernelSize fraction', () => new Conv2d(3, 4, 2.5), TypeError, /Conv2d kernelSize/],
    ['Conv2d kernelSize [h]', () => new Conv2d(3, 4, [3] as unknown as number), TypeError, /Conv2d kernelSize/],
    ['Conv2d stride 0', () => new Conv2d(3, 4, 3, { stride: 0 }), RangeError, /Conv2d options.stride/],
    ['Conv2d negative padding', () => new Conv2d(3, 4, 3, { padding: -1 }), RangeError, /Conv2d options.padding/],
    ['Conv2d padding string', () => new Conv2d(3, 4, 3, { padding: 'valid' as 'same' }), TypeError, /Conv2d options.padding/],
    ["Conv2d 'same' with stride 2", () => new Conv2d(3, 4, 3, { padding: 'same', stride: 2 }), RangeError, /stride 1/],
    ['Conv2d dilation 0', () => new Conv2d(3, 4, 3, { dilation: [1, 0] }), RangeError, /Conv2d options.dilation\[1\]/],
    ['Conv2d groups not dividing', () => new Conv2d(3, 4, 3, { groups: 2 }), RangeError, /divisor of inChannels \(3\) and outChannels \(4\) for Conv2d options.groups but received 2/],
    ['Conv2d unknown option', () => new Conv2d(3, 4, 3, { strides: 2 } as object), RangeError, /unknown option 'strides'/],
    ['Conv2d bias not boolean', () => new Conv2d(3, 4, 3, { bias: 1 as unknown as boolean }), TypeError, /Conv2d options.bias/],
    ['Conv2d init unknown', () => new Conv2d(3, 4, 3, { init: 'he' as 'kaiming-normal' }), RangeError, /Conv2d options.init/],
    ['Conv2d absurd size', () => new Conv2d(65536, 65536, 3), RangeError, /at most 268435456 elements for Conv2d weight/],
    ['Linear inFeatures', () => new Linear(-1, 3), RangeError, /Linear inFeatures/],
    ['Linear options not an object', () => new Linear(2, 3, 5 as unknown as object), TypeError, /Linear options/],
    ['MaxPool2d kernel 0', () => new MaxPool2d(0), RangeError, /MaxPool2d kernelSize/],
    ['MaxPool2d padding over half the window', () => new MaxPool2d(2, { padding: 2 }), RangeError, /MaxPool2d options.padding\[0\]/],
    ["MaxPool2d 'same'", () => new MaxPool2d(3, { padding: 'same' as unknown as number }), RangeError, /MaxPool2d options.padding/],
    ['AvgPool2d countIncludePad', () => new AvgPool2d(2, { countIncludePad: 'yes' as unknown as boolean }), TypeError, /AvgPool2d options.countIncludePad/],
    ['Dropout p 1', () => new Dropout(1), RangeError, /Dropout p/],
    ['Dropout p NaN', () => new Dropout(NaN), RangeError, /Dropout p.*NaN/],
    ['BatchNorm2d eps 0', () => new BatchNorm2d(3, { eps: 0 }), RangeError, /BatchNorm2d options.eps/],
    ['BatchNorm2d momentum 2', () => new BatchNorm2d(3, { momentum: 2 }), RangeError, /BatchNorm2d options.momentum/],
    ['Sequential non-module', () => new Sequential(new ReLU(), {} as Module), TypeError, /Sequential layers\[1\]/],
  ] as const)('%s', (_, fn, type, text) => {
    expectThrow(fn, type, 'ERR_KILN_INVALID_ARG', text);
  });

  it('refuses a layer that is already inside a container', () => {
    const relu = new ReLU();
    new Sequential(relu);
    expectThrow(() => new Sequential(relu), RangeError, 'ERR_KILN_INVALID_ARG', /layers\[0\].*already inside/);
  });
});

describe('forward validation', () => {
  it.each([
    ['Conv2d', () => new Conv2d(3, 4, 3), [2, 2, 5, 5], /Expected 3 input channels \(dimension 1\) for Conv2d input.*\[2, 2, 5, 5\]/],
    ['Conv2d rank', () => new Conv2d(3, 4, 3), [3, 5, 5], /rank-4 tensor \[N, C, H, W\] for Conv2d input but received \[3, 5, 5\]/],
    ['Conv2d plane too small', () => new Conv2d(1, 1, 5, { dilation: 2 }), [1, 1, 6, 6], /at least 9x9 for Conv2d input but received 6x6/],
    ['Linear features', () => new Linear(4, 2), [3, 5], /Expected 4 input features \(dimension 1\) for Linear input/],
    ['Linear rank', () => new Linear(4, 2), [3, 2, 2], /rank-2 tensor \[N, features\] for Linear input/],
    ['MaxPool2d rank', () => new MaxPool2d(2), [4, 4], /rank-4 tensor/],
    ['MaxPool2d plane too small', () => new MaxPool2d(3), [1, 1, 2, 2], /MaxPool2d input/],
    ['AvgPool2d rank', () => new AvgPool2d(2), [1, 2, 3, 4, 5], /rank-4/],
    ['BatchNorm2d channels', () => new BatchNorm2d(3), [2, 4, 2, 2], /Expected 3 channels/],
    ['empty batch', () => new ReLU(), [0, 3], /batch of at least 1 for ReLU input/],
  ] as const)('%s: shape error naming the input', async (_, make, dims, text) => {
    const n = dims.reduce((a: number, b: number) => a * b, 1);
    await expectReject(make().forward(new Tensor('float32', new Float32Array(n), dims)), RangeError, 'ERR_KILN_SHAPE_MISMATCH', text);
  });

  it('rejects a non-float32 tensor and a non-tensor with TypeError', async () => {
    await expectReject(new ReLU().forward(new Tensor('int32', new Int32Array(4), [2, 2]) as unknown as Tensor<'float32'>), TypeError, 'ERR_KILN_INVALID_ARG', /'float32' for ReLU input but received a tensor of type 'int32' \[2, 2\]/);
    await expectReject(new Linear(2, 2).forward(new Float32Array(4) as unknown as Tensor<'float32'>), TypeError, 'ERR_KILN_INVALID_ARG', /a Tensor for Linear input but received Float32Array\(4\)/);
  });

  it('backward before forward is a state error; a wrong gradient shape a shape error', async () => {
    const conv = new Conv2d(1, 2, 3);
    await expectReject(conv.backward(random([1, 2, 3, 3])), Error, 'ERR_KILN_INVALID_STATE', /before forward/);
    await conv.forward(random([1, 1, 5, 5]));
    await expectReject(conv.backward(random([1, 2, 3, 4])), RangeError, 'ERR_KILN_SHAPE_MISMATCH', /shape of the last output \[1, 2, 3, 3\] for Conv2d gradOutput but received \[1, 2, 3, 4\]/);
  });

  it('backward after an eval-mode forward is a state error (nothing was kept)', async () => {
    const linear = new Linear(3, 2).eval();
    await linear.forward(random([2, 3]));
    await expectReject(linear.backward(random([2, 2])), Error, 'ERR_KILN_INVALID_STATE', /before forward\(\) in training mode/);
  });
});

describe('shapes, MACs and parameters', () => {
  it('Conv2d output shape follows the window formula with asymmetric padding, stride and dilation', () => {
    const conv = new Conv2d(4, 6, [3, 2], { stride: [2, 1], padding: [1, 0, 2, 1], dilation: [1, 2], groups: 2 });
    // H: (9 + 1 + 2 - 2 - 1) / 2 + 1 = 5; W: (8 + 0 + 1 - 2 - 1) / 1 + 1 = 7
    expect(conv.outputShape([3, 4, 9, 8])).toEqual([3, 6, 5, 7]);
    expect(conv.macs([1, 4, 9, 8])).toBe(6 * 5 * 7 * 2 * 3 * 2);
    expect(conv.weight.value.dims).toEqual([6, 2, 3, 2]);
    expect(conv.parameters().map((p) => [p.name, p.decay])).toEqual([['weight', true], ['bias', false]]);
  });

  it("'same' padding keeps the plane (odd and even kernels, dilation)", () => {
    expect(new Conv2d(1, 1, 3, { padding: 'same' }).outputShape([1, 1, 7, 6])).toEqual([1, 1, 7, 6]);
    expect(new Conv2d(1, 1, [4, 2], { padding: 'same', dilation: 3 }).outputShape([1, 1, 11, 5])).toEqual([1, 1, 11, 5]);
    expect(new Conv2d(1, 1, 4, { padding: 'same' }).padding).toEqual([1, 1, 2, 2]);
  });

  it('pools default the stride to the kernel and floor the output', () => {
    expect(new MaxPool2d(2).outputShape([2, 3, 5, 7])).toEqual([2, 3, 2, 3]);
    expect(new AvgPool2d(3, { stride: 2, padding: 1 }).outputShape([1, 1, 7, 6])).toEqual([1, 1, 4, 3]);
  });

  it('Sequential chains shapes and MACs and names parameters by position', () => {
    const inner = new Sequential(new Conv2d(4, 4, 1), new ReLU());
    const net = new Sequential(new Conv2d(1, 4, 3), new BatchNorm2d(4), inner, new Flatten(), new Linear(4 * 4 * 4, 3, { bias: false }));
    expect(net.outputShape([2, 1, 6, 6])).toEqual([2, 3]);
    expect(net.macs([1, 1, 6, 6])).toBe(4 * 16 * 9 + 4 * 16 * 4 + 64 * 3);
    expect(net.parameters().map((p) => p.name)).toEqual(['0.weight', '0.bias', '1.weight', '1.bias', '2.0.weight', '2.0.bias', '4.weight']);
    expect(net.buffers().map((b) => b.name)).toEqual(['1.running_mean', '1.running_var']);
    expect(net.parameters().map((p) => p.decay)).toEqual([true, false, false, false, true, false, true]);
  });

  it('train()/eval() reach every child', () => {
    const bn = new BatchNorm2d(2);
    const net = new Sequential(new Sequential(bn));
    net.eval();
    expect(bn.training).toBe(false);
    net.train();
    expect(bn.training).toBe(true);
  });

  it('initialisation is seeded: same seed same weights, Kaiming bound respected, biases zero', () => {
    const a = new Conv2d(3, 8, 3, { seed: 7 });
    const b = new Conv2d(3, 8, 3, { seed: 7 });
    const c = new Conv2d(3, 8, 3, { seed: 8 });
    expect(a.weight.value.data).toEqual(b.weight.value.data);
    expect(a.weight.value.data).not.toEqual(c.weight.value.data);
    const bound = Math.sqrt(6 / 27);
    const w = a.weight.value.data;
    expect(Math.max(...w)).toBeLessThanOrEqual(bound);
    expect(Math.min(...w)).toBeGreaterThanOrEqual(-bound);
    // Uniform on [-b, b] has variance b^2 / 3 = 2 / fanIn; 216 samples land within 25%.
    const variance = w.reduce((s, v) => s + v * v, 0) / w.length;
    expect(variance).toBeGreaterThan(0.75 * (2 / 27));
    expect(variance).toBeLessThan(1.25 * (2 / 27));
    expect(Array.from(a.bias!.value.data)).toEqual(new Array(8).fill(0));
  });

  it('xavier-normal has the Glorot variance', () => {
    const lin = new Linear(200, 100, { init: 'xavier-normal', seed: 3 });
    const w = lin.weight.value.data;
    const variance = w.reduce((s, v) => s + v * v, 0) / w.length;
    expect(variance).toBeGreaterThan(0.95 * (2 / 300));
    expect(variance).toBeLessThan(1.05 * (2 / 300));
  });
});

describe('forward values and modes', () => {
  it('Linear forward equals x W^T + b (float64 reference)', async () => {
    const lin = new Linear(5, 3, { seed: 1 });
    lin.bias!.value.data.set([0.5, -1, 2]);
    const x = random([4, 5], 2);
    const y = await lin.forward(x);
    const w = lin.weight.value.data;
    for (let i = 0; i < 4; i++)
      for (let o = 0; o < 3; o++) {
        let s = lin.bias!.value.data[o];
        for (let k = 0; k < 5; k++) s += x.data[i * 5 + k] * w[o * 5 + k];
        expect(y.data[i * 3 + o]).toBeCloseTo(s, 5);
      }
  });

  it('Dropout: identity in eval mode; in training zeroes about p and scales the rest by 1/(1-p)', async () => {
    const d = new Dropout(0.25, { seed: 3 });
    const x = new Tensor('float32', new Float32Array(20000).fill(2), [100, 200]);
    const y = await d.forward(x);
    const zeros = y.data.filter((v) => v === 0).length;
    expect(zeros / 20000).toBeGreaterThan(0.23);
    expect(zeros / 20000).toBeLessThan(0.27);
    expect(y.data.every((v) => v === 0 || Math.abs(v - 2 / 0.75) < 1e-6)).toBe(true);
    d.eval();
    expect(await d.forward(x)).toBe(x);
    expect(await d.backward(x)).toBe(x);
  });

  it('Dropout masks repeat for the same seed and differ between calls', async () => {
    const x = new Tensor('float32', new Float32Array(64).fill(1), [4, 16]);
    const a = new Dropout(0.5, { seed: 9 });
    const b = new Dropout(0.5, { seed: 9 });
    const first = (await a.forward(x)).data.slice();
    expect((await b.forward(x)).data).toEqual(first);
    expect((await a.forward(x)).data).not.toEqual(first);
  });

  it('BatchNorm2d updates running statistics (unbiased variance, PyTorch momentum) and uses them in eval', async () => {
    const bn = new BatchNorm2d(2, { momentum: 0.3 });
    const x = random([3, 2, 2, 2], 5);
    await bn.forward(x);
    for (let c = 0; c < 2; c++) {
      const values: number[] = [];
      for (let n = 0; n < 3; n++) for (let s = 0; s < 4; s++) values.push(x.data[(n * 2 + c) * 4 + s]);
      const mean = values.reduce((a, b) => a + b, 0) / 12;
      const unbiased = values.reduce((a, v) => a + (v - mean) ** 2, 0) / 11;
      expect(bn.runningMean.value.data[c]).toBeCloseTo(0.3 * mean, 6);
      expect(bn.runningVar.value.data[c]).toBeCloseTo(0.7 + 0.3 * unbiased, 6);
    }
    bn.eval();
    bn.runningMean.value.data.set([1, -1]);
    bn.runningVar.value.data.set([4, 0.25]);
    bn.weight.value.data.set([2, 1]);
    bn.bias.value.data.set([0, 3]);
    const y = await bn.forward(x);
    const expected = (v: number, c: number): number => (c === 0 ? ((v - 1) / Math.sqrt(4 + 1e-5)) * 2 : (v + 1) / Math.sqrt(0.25 + 1e-5) + 3);
    for (let i = 0; i < x.size; i++) expect(y.data[i]).toBeCloseTo(expected(x.data[i], Math.floor(i / 4) % 2), 5);
  });

  it('Flatten returns a view with the batch kept', async () => {
    const x = random([2, 3, 4, 5]);
    const y = await new Flatten().forward(x);
    expect(y.dims).toEqual([2, 60]);
    expect(y.data).toBe(x.data);
  });
});

describe('Sequential execution order', () => {
  it('runs a ReLU followed by a MaxPool2d after it, elsewhere the declared order', () => {
    const order = executionOrder([new Conv2d(1, 1, 1), new ReLU(), new MaxPool2d(2), new ReLU(), new ReLU(), new MaxPool2d(2), new AvgPool2d(2), new ReLU()]);
    expect(order).toEqual([0, 2, 1, 3, 5, 4, 6, 7]);
  });

  it('gives bit-identical outputs and gradients to the declared order (ties and padding included)', async () => {
    const make = (): Module[] => [new Conv2d(2, 3, 3, { seed: 4, padding: 1 }), new ReLU(), new MaxPool2d(3, { stride: 2, padding: 1 }), new Flatten(), new Linear(3 * 4 * 3, 2, { seed: 5 })];
    const x = random([2, 2, 7, 6], 8);
    // Quantised inputs make exact ties in the windows likely.
    x.data.forEach((v, i, a) => (a[i] = Math.round(v * 2) / 2));
    const g = random([2, 2], 9);
    const net = new Sequential(...make());
    const y = await net.forward(x);
    const dx = await net.backward(g);
    const layers = make();
    let h = x;
    for (const l of layers) h = await l.forward(h);
    let d = g;
    for (let i = layers.length - 1; i >= 0; i--) d = await layers[i].backward(d);
    expect(y.data).toEqual(h.data);
    expect(dx.data).toEqual(d.data);
    expect(net.parameters().map((p) => p.grad)).toEqual(layers.flatMap((l) => l.parameters()).map((p) => p.grad));
  });
});

describe('Sequential Conv2d + MaxPool2d fusion', () => {
  it('gives bit-identical outputs, indices and gradients to running the layers one by one', async () => {
    // Unpadded pools fuse with the conv before them; the padded one runs on its own.
    const make = (): Module[] => [
      new Conv2d(1, 5, 3, { seed: 11 }), new ReLU(), new MaxPool2d(2),
      new Conv2d(5, 17, [2, 3], { seed: 12 }), new MaxPool2d([2, 1], { stride: [1, 2] }), new ReLU(),
      new Conv2d(17, 3, 1, { seed: 13, bias: false }), new MaxPool2d(2, { padding: 1 }),
      new Flatten(), new Linear(3 * 2 * 2, 4, { seed: 14 }),
    ];
    const x = random([3, 1, 12, 13], 15);
    x.data.forEach((v, i, a) => (a[i] = Math.round(v * 2) / 2));  // ties in the windows
    const g = random([3, 4], 16);
    for (const reuse of [false, true]) {
      const net = new Sequential(...make()).setBufferReuse(reuse);
      const layers = make();
      for (let step = 0; step < 2; step++) {
        const y = await net.forward(x);
        const dx = await net.backward(g);
        let h = x;
        for (const i of executionOrder(layers)) h = await layers[i].forward(h);
        let d = g;
        const order = executionOrder(layers);
        for (let k = order.length - 1; k >= 0; k--) d = await layers[order[k]].backward(d);
        expect(y.dims).toEqual(h.dims);
        expect(Array.from(y.data)).toEqual(Array.from(h.data));
        expect(Array.from(dx.data)).toEqual(Array.from(d.data));
        expect(net.parameters().map((p) => Array.from(p.grad!))).toEqual(layers.flatMap((l) => l.parameters()).map((p) => Array.from(p.grad!)));
      }
    }
  });
});

describe('buffer reuse', () => {
  it('off by default: every call returns a new buffer', async () => {
    const relu = new ReLU();
    const x = random([2, 8]);
    const a = await relu.forward(x);
    const b = await relu.forward(x);
    expect(a.data).not.toBe(b.data);
    expect(a.data).toEqual(b.data);
  });

  it('on: same-shape calls return the same buffer, never one aliasing the input', async () => {
    const relu = new ReLU().setBufferReuse(true);
    const x = random([2, 8]);
    const a = await relu.forward(x);
    const b = await relu.forward(x);
    expect(b.data).toBe(a.data);
    // Feeding the layer its own output must not make it write over its input.
    const c = await relu.forward(b);
    expect(c.data).not.toBe(b.data);
    expect(c.data).toEqual(b.data);
    const d = await relu.forward(random([3, 8]));
    expect(d.data).not.toBe(a.data);
  });

  it('setBufferReuse reaches every child', () => {
    const relu = new ReLU();
    new Sequential(new Sequential(relu)).setBufferReuse(true);
    expect(relu.reuseBuffers).toBe(true);
  });
});

describe('lowering to the graph IR', () => {
  it('emits ONNX-named nodes with ONNX attributes, weights as initializers (copies)', () => {
    const conv = new Conv2d(1, 2, 3, { stride: 2, padding: [1, 0, 1, 2], dilation: 1, seed: 1 });
    const net = new Sequential(
      conv, new BatchNorm2d(2, { eps: 1e-3, momentum: 0.2 }), new ReLU(), new MaxPool2d(2, { stride: 1 }), new AvgPool2d(2, { countIncludePad: false }),
      new Dropout(0.5), new Flatten(), new Linear(8, 3, { seed: 2 }),
    );
    const builder = new GraphBuilder();
    const input = builder.addInput('input', ['N', 1, 9, 9]);
    const out = net.lower(builder, input, [1, 1, 9, 9]);
    const graph = builder.build([{ name: out, dtype: 'float32', shape: ['N', 3] }]);
    expect(graph.nodes.map((n) => n.op)).toEqual(['Conv', 'BatchNormalization', 'Relu', 'MaxPool', 'AveragePool', 'Flatten', 'Gemm']);
    const [convNode, bnNode, , maxNode, avgNode, flatNode, gemmNode] = graph.nodes;
    expect(convNode.inputs).toEqual([input, '0.weight', '0.bias']);
    expect(convNode.attrs).toEqual({ kernel_shape: [3, 3], strides: [2, 2], pads: [1, 0, 1, 2], dilations: [1, 1], group: 1 });
    expect(bnNode.inputs.slice(1)).toEqual(['1.weight', '1.bias', '1.running_mean', '1.running_var']);
    expect(bnNode.attrs.epsilon).toBe(1e-3);
    expect(bnNode.attrs.momentum).toBeCloseTo(0.8, 12);
    expect(maxNode.attrs).toEqual({ kernel_shape: [2, 2], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1] });
    expect(avgNode.attrs).toEqual({ kernel_shape: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], count_include_pad: 0 });
    expect(flatNode.attrs).toEqual({ axis: 1 });
    expect(gemmNode.inputs.slice(1)).toEqual(['7.weight', '7.bias']);
    expect(gemmNode.attrs).toEqual({ alpha: 1, beta: 1, transA: 0, transB: 1 });
    // Dropout lowered to nothing: Flatten reads AveragePool's output directly.
    expect(flatNode.inputs).toEqual(avgNode.outputs);
    const w = graph.initializers.get('0.weight')!;
    expect(w.dims).toEqual([2, 1, 3, 3]);
    expect(w.data).toEqual(conv.weight.value.data);
    expect(w.data).not.toBe(conv.weight.value.data);
  });

  it('a layer without bias has no bias input', () => {
    const builder = new GraphBuilder();
    const x = builder.addInput('x', ['N', 4]);
    new Linear(4, 2, { bias: false }).lower(builder, x, [1, 4]);
    expect(builder.build([]).nodes[0].inputs).toEqual([x, 'weight']);
  });

  it('lowering checks the input shape', () => {
    const builder = new GraphBuilder();
    expectThrow(() => new Linear(4, 2).lower(builder, 'x', [1, 5]), RangeError, 'ERR_KILN_SHAPE_MISMATCH', /input features/);
  });
});

describe('configs and the registry', () => {
  const layers: [string, () => Module][] = [
    ['Conv2d', () => new Conv2d(4, 6, [3, 2], { stride: [2, 1], padding: [1, 0, 2, 1], dilation: [1, 2], groups: 2, bias: false, init: 'xavier-uniform' })],
    ['Linear', () => new Linear(7, 3, { init: 'kaiming-normal' })],
    ['ReLU', () => new ReLU()],
    ['Flatten', () => new Flatten()],
    ['MaxPool2d', () => new MaxPool2d([3, 2], { stride: [1, 2], padding: [1, 1, 0, 1], dilation: [1, 2] })],
    ['AvgPool2d', () => new AvgPool2d(3, { stride: 2, padding: 1, countIncludePad: false })],
    ['Dropout', () => new Dropout(0.2, { seed: 4 })],
    ['BatchNorm2d', () => new BatchNorm2d(5, { eps: 1e-3, momentum: 0.05 })],
    ['Sequential', () => new Sequential(new Conv2d(1, 2, 3), new Sequential(new ReLU(), new BatchNorm2d(2)), new Flatten())],
  ];

  it.each(layers)('%s: moduleFromConfig(config()) rebuilds the same layer', (_, make) => {
    const layer = make();
    const rebuilt = moduleFromConfig(JSON.parse(JSON.stringify(layer.config())));
    expect(rebuilt.constructor).toBe(layer.constructor);
    expect(rebuilt.config()).toEqual(layer.config());
    expect(rebuilt.parameters().map((p) => [p.name, p.value.dims])).toEqual(layer.parameters().map((p) => [p.name, p.value.dims]));
    expect(rebuilt.buffers().map((b) => b.name)).toEqual(layer.buffers().map((b) => b.name));
  });

  it.each([
    ['not an object', 42, TypeError, 'ERR_KILN_INVALID_ARG', /layer config object for config but received 42/],
    ['no type', {}, TypeError, 'ERR_KILN_INVALID_ARG', /layer type name for config.type/],
    ['unknown type', { type: 'LSTM' }, Error, 'ERR_KILN_UNSUPPORTED_OP', /layer types .*Conv2d.* for config.type but received "LSTM"/],
    ['prototype key as type', { type: 'constructor' }, Error, 'ERR_KILN_UNSUPPORTED_OP', /config.type/],
    ['unknown field', { type: 'ReLU', inplace: true }, RangeError, 'ERR_KILN_INVALID_ARG', /unknown option 'inplace'/],
    ['layers not an array', { type: 'Sequential', layers: 'x' }, TypeError, 'ERR_KILN_INVALID_ARG', /config.layers/],
    ['bad nested field', { type: 'Sequential', layers: [{ type: 'ReLU' }, { type: 'Linear', inFeatures: 3, outFeatures: -2 }] }, RangeError, 'ERR_KILN_INVALID_ARG', /config.layers\[1\] \(Linear\): .*Linear outFeatures/],
    ['absurd size', { type: 'Linear', inFeatures: 2 ** 20, outFeatures: 2 ** 20 }, RangeError, 'ERR_KILN_INVALID_ARG', /at most/],
    ['string size', { type: 'Conv2d', inChannels: '3', outChannels: 4, kernelSize: 3 }, TypeError, 'ERR_KILN_INVALID_ARG', /Conv2d inChannels/],
  ] as const)('rejects a corrupt config: %s', (_, config, type, code, text) => {
    expectThrow(() => moduleFromConfig(config as never), type, code, text);
  });

  it('rejects nesting deeper than 64 containers without exhausting the stack', () => {
    let config: object = { type: 'ReLU' };
    for (let i = 0; i < 100_000; i++) config = { type: 'Sequential', layers: [config] };
    expectThrow(() => moduleFromConfig(config as never), RangeError, 'ERR_KILN_INVALID_ARG', /at most 64 nested containers/);
  });
});

describe('cross-entropy loss', () => {
  it('mean loss and gradient (softmax - onehot) / N', async () => {
    const logits = new Tensor('float32', Float32Array.of(1, 2, 3, 0, 0, 0), [2, 3]);
    const { loss, grad, losses } = await crossEntropy(logits, Int32Array.of(2, 0));
    const lse = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
    expect(losses[0]).toBeCloseTo(lse - 3, 5);
    expect(losses[1]).toBeCloseTo(Math.log(3), 5);
    expect(loss).toBeCloseTo((lse - 3 + Math.log(3)) / 2, 5);
    expect(grad!.data[2]).toBeCloseTo((Math.exp(3 - lse) - 1) / 2, 6);
    expect(grad!.data[4]).toBeCloseTo(1 / 6, 6);
  });

  it('validates labels and logits', async () => {
    const logits = new Tensor('float32', new Float32Array(6), [2, 3]);
    await expect(crossEntropy(logits, Int32Array.of(0, 3))).rejects.toMatchObject({ ...INVALID, name: 'RangeError', message: expect.stringMatching(/class index in \[0, 2\] for labels\[1\] but received 3/) });
    await expect(crossEntropy(logits, Int32Array.of(-1, 0))).rejects.toMatchObject(INVALID);
    await expect(crossEntropy(logits, Int32Array.of(0))).rejects.toMatchObject(SHAPE);
    await expect(crossEntropy(logits, [0, 1] as unknown as Int32Array)).rejects.toMatchObject({ ...INVALID, name: 'TypeError' });
    await expect(crossEntropy(new Tensor('float32', new Float32Array(6), [6]), Int32Array.of(0))).rejects.toMatchObject(SHAPE);
    expectThrow(() => new CrossEntropyLoss({ labelSmoothing: 1 }), RangeError, 'ERR_KILN_INVALID_ARG', /labelSmoothing/);
    expectThrow(() => new CrossEntropyLoss({ labelSmoothing: NaN }), RangeError, 'ERR_KILN_INVALID_ARG', /labelSmoothing/);
  });
});
