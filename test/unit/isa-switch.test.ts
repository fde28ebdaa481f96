/**
 * setIsa() while an InferenceSession runs on another thread: the run started on one ISA and the
 * switch lands somewhere inside it. Each native step reads the dispatch table once and runs every
 * path on that table, falling back to the GEMM / staged pool where the plan chose a kernel the
 * table lacks (Winograd, the direct and small-patch convolutions), so the run neither crashes nor
 * drifts from the reference. SeedCNN MNIST and CIFAR at the default level (Winograd on AVX-512),
 * batch 256, for every ordered pair of ISAs this CPU has; and an int8 SeedCNN conv1 + pool (the
 * direct VNNI kernel on AVX-512 VNNI, the GEMM elsewhere), whose results are the same bits on
 * every ISA.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { GraphBuilder, type Graph } from '../../src/graph/ir.js';
import { seedCNN } from '../../src/nn/models.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { cpuInfo, setIsa, type Isa } from '../../src/system.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { relDiff, uniformImages } from '../support/tensors.js';

const ORIGINAL_ISA = cpuInfo().isa;
const ISAS = cpuInfo().supportedIsas;
const BATCH = 256;

afterAll(() => setIsa(ORIGINAL_ISA));

const rng = new Rng(41);
const images = (shape: number[]): Tensor<'float32'> => uniformImages(rng, BATCH, shape);

const pairs: [Isa, Isa][] = ISAS.flatMap((from) => ISAS.filter((to) => to !== from).map((to) => [from, to] as [Isa, Isa]));

describe('setIsa during session.run', () => {
  for (const [name, shape] of [['MNIST', [1, 28, 28]], ['CIFAR', [3, 32, 32]]] as const) {
    it.skipIf(pairs.length === 0)(`SeedCNN ${name}: a run started on one ISA and switched at once gives the reference's logits, every ISA pair`, async () => {
      setIsa(ORIGINAL_ISA);
      const model = seedCNN({ inChannels: shape[0], height: shape[1], width: shape[2], numClasses: 10, seed: 3 }).eval();
      const session = await InferenceSession.create(model, { inputShape: [...shape] });
      try {
        const x = images([...shape]);
        const want = await model.forward(x);
        const t0 = performance.now();
        await session.run({ input: x });
        const runMs = Math.min(200, performance.now() - t0);
        for (const [from, to] of pairs) {
          setIsa(from);
          const pending = session.run({ input: x });
          setIsa(to);
          const { logits } = await pending;
          expect(relDiff(logits, want), `${from} -> ${to}`).toBeLessThanOrEqual(1e-5);
          // And a run started on `to` after the switch.
          expect(relDiff((await session.run({ input: x })).logits, want), `on ${to}`).toBeLessThanOrEqual(1e-5);
          // A storm: flipping between the two for as long as a run takes, so that switches land
          // inside steps (between a path's check and its kernel call, where a step re-reading the
          // table would find a null entry), then ending on `to`.
          setIsa(from);
          const started = performance.now();
          const stormy = session.run({ input: x });
          let flips = 0;
          while (performance.now() - started < runMs) setIsa(flips++ % 2 === 0 ? to : from);
          setIsa(to);
          expect(relDiff((await stormy).logits, want), `${from} <-> ${to}, ${flips} flips`).toBeLessThanOrEqual(1e-5);
        }
      } finally {
        setIsa(ORIGINAL_ISA);
        session.release();
      }
    });
  }

  /** x -> Q -> QLinearConv 1 -> 32, 3x3, ReLU -> MaxPool 2x2/2 -> DQ (SeedCNN MNIST conv1, int8). */
  function int8Conv1(): Graph {
    const g = new GraphBuilder('int8-conv1');
    const x = g.addInput('input', ['N', 1, 28, 28]);
    const xq = { scale: Math.fround(1 / 100), zero_point: 0 };
    const yq = { scale: Math.fround(0.05), zero_point: 0 };
    const q = g.addNode('QuantizeLinear', [x], { ...xq, dtype: 'uint8' });
    const w = g.addInitializer('w', new Tensor('int8', Int8Array.from({ length: 32 * 9 }, () => rng.int(255) - 127), [32, 1, 3, 3]));
    const ws = g.addInitializer('ws', new Tensor('float32', Float32Array.from({ length: 32 }, () => Math.fround(rng.uniform(0.002, 0.02))), [32]));
    const b = g.addInitializer('b', new Tensor('int32', Int32Array.from({ length: 32 }, () => rng.int(6000) - 3000), [32]));
    const conv = g.addNode('QLinearConv', [q, w, ws, b], {
      kernel_shape: [3, 3], x_scale: xq.scale, x_zero_point: 0, y_scale: yq.scale, y_zero_point: 0, y_dtype: 'uint8', kiln_activation: 'Relu',
    });
    const p = g.addNode('MaxPool', [conv], { kernel_shape: [2, 2], strides: [2, 2] });
    const y = g.addNode('DequantizeLinear', [p], { ...yq });
    return g.build([{ name: y, dtype: 'float32', shape: ['N', 32, 13, 13] }]);
  }

  it.skipIf(pairs.length === 0)('int8 SeedCNN conv1 + pool: a run switched at once, or in a storm of switches, gives the same bits as an unswitched run', async () => {
    setIsa(ORIGINAL_ISA);
    const session = await InferenceSession.create(int8Conv1());
    try {
      const x = images([1, 28, 28]);
      const name = session.outputNames[0]!;
      const want = (await session.run({ input: x }))[name]!.data as Float32Array;
      // Bytes, not toEqual: a deep comparison of 1.4M floats takes seconds.
      const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      const same = (got: Tensor) => Buffer.compare(bytes(got.data as Float32Array), bytes(want)) === 0;
      expect(new Set(want.subarray(0, 4096)).size, 'outputs not all one value').toBeGreaterThan(4);
      for (const [from, to] of pairs) {
        setIsa(from);
        const pending = session.run({ input: x });
        setIsa(to);
        expect(same((await pending)[name]!), `${from} -> ${to}`).toBe(true);
        setIsa(from);
        const stormy = session.run({ input: x });
        const started = performance.now();
        let flips = 0;
        while (performance.now() - started < 20) setIsa(flips++ % 2 === 0 ? to : from);
        setIsa(to);
        expect(same((await stormy)[name]!), `${from} <-> ${to}`).toBe(true);
      }
    } finally {
      setIsa(ORIGINAL_ISA);
      session.release();
    }
  });
});
