/**
 * setIsa() while an InferenceSession runs on another thread: the run started on one ISA and the
 * switch lands somewhere inside it. Each native step reads the dispatch table once and runs every
 * path on that table, falling back to the GEMM / staged pool where the plan chose a kernel the
 * table lacks (Winograd, the direct and small-patch convolutions), so the run neither crashes nor
 * drifts from the reference. SeedCNN MNIST and CIFAR at the default level (Winograd on AVX-512),
 * batch 256, for every ordered pair of ISAs this CPU has.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { seedCNN } from '../../src/nn/models.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { cpuInfo, setIsa, type Isa } from '../../src/system.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const ORIGINAL_ISA = cpuInfo().isa;
const ISAS = cpuInfo().supportedIsas;
const BATCH = 256;

afterAll(() => setIsa(ORIGINAL_ISA));

const rng = new Rng(41);
function images(shape: number[]): Tensor<'float32'> {
  const n = BATCH * shape.reduce((a, b) => a * b, 1);
  return new Tensor('float32', Float32Array.from({ length: n }, () => rng.uniform(0, 1)), [BATCH, ...shape]);
}

/** max |a - b| / max |b| */
function relDiff(a: Tensor, b: Tensor): number {
  expect(a.dims).toEqual(b.dims);
  let diff = 0, scale = 0;
  for (let i = 0; i < a.data.length; i++) {
    diff = Math.max(diff, Math.abs(a.data[i] - b.data[i]));
    scale = Math.max(scale, Math.abs(b.data[i]));
  }
  return diff / scale;
}

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
});
