/** seedCNN: architecture, derived sizes, width multiplier, seeding, validation. */
import { describe, expect, it } from 'vitest';

import { GraphBuilder } from '../../src/graph/ir.js';
import { Conv2d } from '../../src/nn/layers/conv2d.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { seedCNN } from '../../src/nn/models.js';
import { moduleFromConfig } from '../../src/nn/registry.js';
import { Tensor } from '../../src/tensor.js';

const mnist = { inChannels: 1, height: 28, width: 28, numClasses: 10 };

describe('seedCNN', () => {
  it('is conv-relu-pool x2, flatten, linear-relu-linear with the flattened size derived from 28x28', () => {
    const net = seedCNN({ ...mnist, seed: 1 });
    expect(net.layers.map((l) => l.config().type)).toEqual(['Conv2d', 'ReLU', 'MaxPool2d', 'Conv2d', 'ReLU', 'MaxPool2d', 'Flatten', 'Linear', 'ReLU', 'Linear']);
    const fc1 = net.layers[7] as Linear;
    expect(fc1.inFeatures).toBe(64 * 5 * 5);
    expect(fc1.outFeatures).toBe(128);
    expect((net.layers[9] as Linear).outFeatures).toBe(10);
    expect(net.outputShape([3, 1, 28, 28])).toEqual([3, 10]);
    expect(net.parameters().map((p) => p.name)).toEqual(['0.weight', '0.bias', '3.weight', '3.bias', '7.weight', '7.bias', '9.weight', '9.bias']);
    // conv1 26*26*32*9 + conv2 11*11*64*288 + fc 1600*128 + 128*10
    expect(net.macs([1, 1, 28, 28])).toBe(26 * 26 * 32 * 9 + 11 * 11 * 64 * 288 + 1600 * 128 + 1280);
  });

  it('derives 64*6*6 for 3x32x32 (CIFAR-10) and odd sizes too', () => {
    const cifar = seedCNN({ inChannels: 3, height: 32, width: 32, numClasses: 10 });
    expect((cifar.layers[7] as Linear).inFeatures).toBe(64 * 6 * 6);
    expect((cifar.layers[0] as Conv2d).inChannels).toBe(3);
    const odd = seedCNN({ inChannels: 2, height: 19, width: 23, numClasses: 7 });
    // 19 -> 17 -> 8 -> 6 -> 3; 23 -> 21 -> 10 -> 8 -> 4
    expect((odd.layers[7] as Linear).inFeatures).toBe(64 * 3 * 4);
    expect(odd.outputShape([1, 2, 19, 23])).toEqual([1, 7]);
  });

  it("padding: 1 gives the article's 'same' 3x3 convolutions: 64*7*7 = 3136 (MNIST) and 64*8*8 = 4096 (CIFAR)", async () => {
    const padded = seedCNN({ ...mnist, padding: 1, seed: 1 });
    expect((padded.layers[0] as Conv2d).padding).toEqual([1, 1, 1, 1]);
    expect((padded.layers[3] as Conv2d).padding).toEqual([1, 1, 1, 1]);
    expect((padded.layers[7] as Linear).inFeatures).toBe(3136);
    expect(padded.outputShape([2, 1, 28, 28])).toEqual([2, 10]);
    // conv1 28*28*32*9 + conv2 14*14*64*288 + fc 3136*128 + 128*10
    expect(padded.macs([1, 1, 28, 28])).toBe(28 * 28 * 32 * 9 + 14 * 14 * 64 * 288 + 3136 * 128 + 1280);
    const cifar = seedCNN({ inChannels: 3, height: 32, width: 32, numClasses: 10, padding: 1 });
    expect((cifar.layers[7] as Linear).inFeatures).toBe(4096);
    expect((seedCNN({ ...mnist, padding: 0 }).layers[7] as Linear).inFeatures).toBe(64 * 5 * 5);
    // Rebuilds from its config with the padding kept, and runs.
    expect(((moduleFromConfig(padded.config()) as typeof padded).layers[7] as Linear).inFeatures).toBe(3136);
    const y = await padded.eval().forward(new Tensor('float32', new Float32Array(784).map((_, i) => (i % 13) / 13), [1, 1, 28, 28]));
    expect(y.dims).toEqual([1, 10]);
    expect(y.data.every(Number.isFinite)).toBe(true);
  });

  it('widthMultiplier scales and rounds every hidden width, at least 1', () => {
    const half = seedCNN({ ...mnist, widthMultiplier: 0.5 });
    expect((half.layers[0] as Conv2d).outChannels).toBe(16);
    expect((half.layers[3] as Conv2d).outChannels).toBe(32);
    expect((half.layers[7] as Linear).inFeatures).toBe(32 * 25);
    expect((half.layers[7] as Linear).outFeatures).toBe(64);
    const odd = seedCNN({ ...mnist, widthMultiplier: 0.3 });
    expect([(odd.layers[0] as Conv2d).outChannels, (odd.layers[3] as Conv2d).outChannels, (odd.layers[7] as Linear).outFeatures]).toEqual([10, 19, 38]);
    const tiny = seedCNN({ ...mnist, widthMultiplier: 0.001 });
    expect([(tiny.layers[0] as Conv2d).outChannels, (tiny.layers[3] as Conv2d).outChannels, (tiny.layers[7] as Linear).outFeatures]).toEqual([1, 1, 1]);
  });

  it('same seed gives the same weights, another seed others', () => {
    const a = seedCNN({ ...mnist, seed: 5 }).parameters();
    const b = seedCNN({ ...mnist, seed: 5 }).parameters();
    const c = seedCNN({ ...mnist, seed: 6 }).parameters();
    a.forEach((p, i) => expect(p.value.data).toEqual(b[i].value.data));
    expect(a[0].value.data).not.toEqual(c[0].value.data);
    // Layers draw from one stream: the two convs do not start alike.
    expect(a[2].value.data.slice(0, 9)).not.toEqual(a[0].value.data.slice(0, 9));
  });

  it('rebuilds from its config and lowers to Conv/Relu/MaxPool/Flatten/Gemm', () => {
    const net = seedCNN({ ...mnist, seed: 1 });
    const again = moduleFromConfig(net.config());
    expect(again.parameters().map((p) => p.value.dims)).toEqual(net.parameters().map((p) => p.value.dims));
    const builder = new GraphBuilder();
    net.lower(builder, builder.addInput('input', ['N', 1, 28, 28]), [1, 1, 28, 28]);
    expect(builder.build([]).nodes.map((n) => n.op)).toEqual(['Conv', 'Relu', 'MaxPool', 'Conv', 'Relu', 'MaxPool', 'Flatten', 'Gemm', 'Relu', 'Gemm']);
  });

  it('forward gives finite logits of the right shape', async () => {
    const net = seedCNN({ ...mnist, seed: 1 }).eval();
    const x = new Tensor('float32', new Float32Array(2 * 784).map((_, i) => (i % 29) / 29), [2, 1, 28, 28]);
    const y = await net.forward(x);
    expect(y.dims).toEqual([2, 10]);
    expect(y.data.every(Number.isFinite)).toBe(true);
  });

  it.each([
    ['missing options', undefined, TypeError, /seedCNN options/],
    ['numClasses 0', { ...mnist, numClasses: 0 }, RangeError, /seedCNN options.numClasses/],
    ['height missing', { inChannels: 1, width: 28, numClasses: 10 }, TypeError, /seedCNN options.height/],
    ['widthMultiplier 0', { ...mnist, widthMultiplier: 0 }, RangeError, /seedCNN options.widthMultiplier/],
    ['widthMultiplier NaN', { ...mnist, widthMultiplier: NaN }, RangeError, /seedCNN options.widthMultiplier/],
    ['seed negative', { ...mnist, seed: -1 }, RangeError, /seedCNN options.seed/],
    ['padding 2', { ...mnist, padding: 2 }, RangeError, /seedCNN options.padding/],
    ['padding 0.5', { ...mnist, padding: 0.5 }, TypeError, /seedCNN options.padding/],
    ["padding 'same'", { ...mnist, padding: 'same' }, TypeError, /seedCNN options.padding/],
    ['unknown option', { ...mnist, depth: 3 }, RangeError, /unknown option 'depth'/],
  ] as const)('rejects %s', (_, options, type, text) => {
    let error: unknown;
    try {
      seedCNN(options as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(type);
    expect(error).toMatchObject({ code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(text) });
  });

  it('rejects images too small for two conv+pool stages with a shape error', () => {
    expect(() => seedCNN({ inChannels: 1, height: 8, width: 8, numClasses: 2 })).toThrow(expect.objectContaining({ code: 'ERR_KILN_SHAPE_MISMATCH' }));
  });
});
