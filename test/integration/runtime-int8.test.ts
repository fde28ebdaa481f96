/**
 * The int8 runtime on real quantized graphs: SeedCNN (MNIST and CIFAR shapes) through Kiln's PTQ
 * (`quantize`, uint8 and int8 activations) runs on InferenceSession, from the Graph and from a
 * `.kiln` file holding it, with outputs bit-equal to the reference interpreter.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { seedCNN } from '../../src/nn/models.js';
import { benchmarkInput } from '../../src/onnx/index.js';
import { quantize } from '../../src/quant/ptq.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import { loadGraph, save } from '../../src/runtime/model-io.js';
import { InferenceSession } from '../../src/runtime/session.js';

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
