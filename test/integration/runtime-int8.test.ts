/**
 * The int8 runtime on real quantized graphs: SeedCNN (MNIST and CIFAR shapes) through Kiln's PTQ
 * (`quantize`, uint8 and int8 activations) runs on InferenceSession, from the Graph and from a
 * `.kiln` file holding it, with outputs bit-equal to the reference interpreter.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { native } from '../../src/binding.js';
import type { Graph } from '../../src/graph/ir.js';
import { seedCNN } from '../../src/nn/models.js';
import { benchmarkInput } from '../../src/onnx/index.js';
import { quantize } from '../../src/quant/ptq.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import { loadGraph, save } from '../../src/runtime/model-io.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function expectBitEqual(a: Float32Array, b: Float32Array): void {
  expect(a.length).toBe(b.length);
  let bad = -1;
  for (let i = 0; i < a.length && bad < 0; i++) if (a[i] !== b[i]) bad = i;
  expect(bad < 0 ? 'equal' : `[${bad}] ${a[bad]} vs ${b[bad]}`).toBe('equal');
}

describe('PTQ SeedCNN on the int8 runtime', () => {
  const cases = [
    { label: 'MNIST, uint8 activations', shape: [1, 28, 28], activations: 'uint8' as const },
    { label: 'CIFAR, int8 activations', shape: [3, 32, 32], activations: 'int8' as const },
  ];
  for (const c of cases) {
    it(`${c.label}: Graph and .kiln file, bit-equal to runInt8Reference`, async () => {
      const net = seedCNN({ inChannels: c.shape[0], height: c.shape[1], width: c.shape[2], numClasses: 10, seed: 5 }).eval();
      const { graph } = await quantize(net, benchmarkInput(32, c.shape, 11), { method: 'minmax', reportImages: 0, activations: c.activations });
      const session = await InferenceSession.create(graph, { intraOpNumThreads: 2 });
      const ops = session.info().steps.map((s) => s.split(' ')[0]);
      expect(ops[0]).toBe('QuantizeLinear');
      expect(ops).toContain('QLinearConv');
      // int8 from the first quantize to the last (float-output) int8 op: no dequantize in between
      expect(ops.filter((o) => o === 'DequantizeLinear' || o === 'QuantizeLinear').length).toBe(1);

      const x = benchmarkInput(9, c.shape, 23);
      const want = runInt8Reference(graph, { input: x }).logits.data as Float32Array;
      const got = (await session.run({ input: x })).logits.data;
      expectBitEqual(got, want);
      expect(new Set(want).size).toBeGreaterThan(40);

      const dir = await mkdtemp(join(tmpdir(), 'kiln-int8-'));
      dirs.push(dir);
      const path = join(dir, 'q.kiln');
      await save(graph, path);
      const loaded = await loadGraph(path);
      expect(loaded.nodes.map((n) => [n.op, n.attrs])).toEqual(graph.nodes.map((n) => [n.op, n.attrs]));
      for (const [name, t] of graph.initializers) {
        expect(loaded.initializers.get(name)?.type, name).toBe(t.type);
        expect(Array.from(loaded.initializers.get(name)!.data as ArrayLike<number>), name).toEqual(Array.from(t.data as ArrayLike<number>));
      }
      const fromFile = await InferenceSession.create(path, { intraOpNumThreads: 1 });
      expectBitEqual((await fromFile.run({ input: x })).logits.data, want);
      fromFile.release();
      session.release();
    });
  }
});

describe('QLinearConv with a float output on the int8 runtime', () => {
  // The step stages NHWC floats and writes them NCHW in 4 x 4 blocks, the channels and pixels past
  // the last block one by one: channel and pixel counts on and off multiples of 4, with and
  // without the fused ReLU, against the reference interpreter bit for bit. A 1x1 convolution
  // writes the planes directly on AVX-512 VNNI (s8-pointwise-planes.h): DetHead's head (32 -> 39),
  // ragged input quads (5 and 7 channels), pixel counts off the 16-pixel blocks; on every ISA.
  const cases = [
    { out: 39, h: 5, w: 7, relu: true, k: 3, inChannels: 5 },
    { out: 39, h: 5, w: 7, relu: false, k: 3, inChannels: 5 },
    { out: 8, h: 4, w: 4, relu: true, k: 3, inChannels: 5 },
    { out: 3, h: 9, w: 2, relu: true, k: 3, inChannels: 5 },
    { out: 39, h: 14, w: 14, relu: false, k: 1, inChannels: 32 },
    { out: 39, h: 14, w: 14, relu: true, k: 1, inChannels: 32 },
    { out: 17, h: 5, w: 7, relu: false, k: 1, inChannels: 5 },
    { out: 9, h: 3, w: 11, relu: true, k: 1, inChannels: 7 },
  ];
  for (const c of cases) {
    it(`${c.k}x${c.k}, ${c.inChannels} -> ${c.out} channels of ${c.h}x${c.w}${c.relu ? ', ReLU' : ''}: bit-equal to runInt8Reference on every ISA`, async () => {
      const { inChannels, k } = c;
      const pad = (k - 1) / 2;
      const rng = (i: number): number => Math.sin(i * 12.9898 + c.out) * 43758.5453 % 1;
      const w = new Int8Array(c.out * inChannels * k * k).map((_, i) => Math.round(rng(i) * 127));
      const scales = new Float32Array(c.out).map((_, i) => 0.002 + 0.001 * (i % 7));
      const bias = new Int32Array(c.out).map((_, i) => Math.round(rng(1000 + i) * 3000));
      const graph: Graph = {
        name: 'float-output',
        inputs: [{ name: 'x', dtype: 'float32', shape: ['N', inChannels, c.h, c.w] }],
        outputs: [{ name: 'y', dtype: 'float32', shape: [] }],
        nodes: [
          { name: 'q', op: 'QuantizeLinear', inputs: ['x'], outputs: ['q'], attrs: { scale: Math.fround(0.02), zero_point: 128, dtype: 'uint8' } },
          {
            name: 'conv',
            op: 'QLinearConv',
            inputs: ['q', 'w', 's', 'b'],
            outputs: ['y'],
            attrs: { kernel_shape: [k, k], strides: [1, 1], dilations: [1, 1], pads: [pad, pad, pad, pad], group: 1, x_scale: Math.fround(0.02), x_zero_point: 128, ...(c.relu ? { kiln_activation: 'Relu' } : {}) },
          },
        ],
        initializers: new Map<string, Tensor>([
          ['w', new Tensor('int8', w, [c.out, inChannels, k, k])],
          ['s', new Tensor('float32', scales, [c.out])],
          ['b', new Tensor('int32', bias, [c.out])],
        ]),
      };
      const x = new Tensor('float32', new Float32Array(2 * inChannels * c.h * c.w).map((_, i) => rng(5000 + i) * 2), [2, inChannels, c.h, c.w]);
      const session = await InferenceSession.create(graph, { intraOpNumThreads: 2 });
      const step = session.info().steps.find((s) => s.includes('-> f32 NCHW'));
      expect(step).toBeDefined();
      expect(step!.includes('direct into the planes')).toBe(k === 1);
      const want = runInt8Reference(graph, { x }).y.data as Float32Array;
      const initial = native.cpuInfo().isa;
      try {
        for (const isa of native.cpuInfo().supportedIsas) {
          native.setIsa(isa);
          const got = (await session.run({ x })).y.data;
          expectBitEqual(got, want);
        }
      } finally {
        native.setIsa(initial);
      }
      expect(new Set(want).size).toBeGreaterThan(c.out * 4);
      if (c.relu) expect(Math.min(...want)).toBe(0);
      else expect(Math.min(...want)).toBeLessThan(0);
      session.release();
    });
  }
});
