/**
 * Sparse kernels in the plan: SeedCNN (MNIST 1x28x28 and CIFAR 3x32x32) with conv2 and fc1 masked
 * at 90% (unstructured, random), InferenceSession at batch 64 and 1 on one thread,
 * sparseKernels 'always' and 'auto' against 'never' (interleaved blocks of runs, median latency).
 * The last columns are the conv2 and fc1 step texts of the 'always' and 'auto' sessions.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/sparse-session.js [minMs]
 *
 * `npm run bench` runs it as its 'sparse' section (benchSparseSessions).
 */
import { pathToFileURL } from 'node:url';

import { Conv2d, Linear } from '../src/nn/index.js';
import { seedCNN } from '../src/nn/models.js';
import { InferenceSession } from '../src/runtime/session.js';
import { Tensor } from '../src/tensor.js';
import { Rng } from '../src/util/rng.js';
import { measureInterleaved } from '../src/util/timing.js';
import type { Report } from './report.js';

function mask(data: Float32Array, fraction: number, rng: Rng): void {
  for (let i = 0; i < data.length; i++) if (rng.uniform(0, 1) < fraction) data[i] = 0;
}

/** One row per model, level and batch: the three medians, the two ratios, and what each session chose. */
async function measureSparseSessions(minMs: number, print: boolean): Promise<(string | number)[][]> {
  const rows: (string | number)[][] = [];
  const rng = new Rng(7);
  const nets = [
    { name: 'MNIST', shape: [1, 28, 28] },
    { name: 'CIFAR', shape: [3, 32, 32] },
  ];
  if (print) console.log('model  level     batch  never ms  always ms  auto ms  never/always  never/auto  conv2, fc1 (always) | conv2, fc1 (auto)');
  for (const { name, shape } of nets) {
    const net = seedCNN({ inChannels: shape[0], height: shape[1], width: shape[2], numClasses: 10, seed: 1 }).eval();
    mask(net.layers.filter((m): m is Conv2d => m instanceof Conv2d)[1].weight.value.data, 0.9, rng);
    mask(net.layers.filter((m): m is Linear => m instanceof Linear)[0].weight.value.data, 0.9, rng);
    for (const level of ['all', 'extended'] as const) {
      const make = (sparseKernels: 'always' | 'never' | 'auto') =>
        InferenceSession.create(net, { inputShape: shape, intraOpNumThreads: 1, graphOptimizationLevel: level, sparseKernels });
      const [never, always, auto] = [await make('never'), await make('always'), await make('auto')];
      const conv2 = (s: InferenceSession) => {
        const steps = s.info().steps;
        const c = steps.filter((l) => l.startsWith('Conv'))[1].replace(/^.*\+ pool \S+ \S+ ?/, '');
        const f = steps.filter((l) => l.startsWith('Gemm'))[0].replace(/^Gemm \S+: \S+ ?(relu ?)?/, '');
        return `${c}, ${f || 'dense'}`;
      };
      for (const batch of [64, 1]) {
        const n = batch * shape.reduce((a, b) => a * b, 1);
        const x = new Tensor('float32', Float32Array.from({ length: n }, () => rng.uniform(0, 1)), [batch, ...shape]);
        const [tn, ta, tu] = await measureInterleaved([() => never.run({ input: x }), () => always.run({ input: x }), () => auto.run({ input: x })], { minMs });
        const ms = (t: { medianMs: number }, w: number) => t.medianMs.toFixed(3).padStart(w);
        rows.push([name, level, batch, tn!.medianMs, ta!.medianMs, tu!.medianMs, tn!.medianMs / ta!.medianMs, tn!.medianMs / tu!.medianMs, conv2(always), conv2(auto)]);
        if (print) console.log(
          `${name.padEnd(6)} ${level.padEnd(9)} ${String(batch).padStart(5)}  ${ms(tn!, 8)}  ${ms(ta!, 9)}  ${ms(tu!, 7)}  ${(tn!.medianMs / ta!.medianMs).toFixed(2).padStart(12)}  ${(tn!.medianMs / tu!.medianMs).toFixed(2).padStart(10)}  ${conv2(always)} | ${conv2(auto)}`,
        );
      }
      never.release();
      always.release();
      auto.release();
    }
  }
  return rows;
}

/** The 'sparse' section of `npm run bench`. */
export async function benchSparseSessions(report: Report, minMs = 600): Promise<void> {
  report.add({
    title: 'Sparse kernels in InferenceSession: SeedCNN with conv2 and fc1 90% zero (unstructured), 1 thread',
    baseline: "the same model with sparseKernels 'never' (dense kernels), timed interleaved with 'always' and 'auto'",
    columns: ['model', 'graphOptimizationLevel', 'batch', 'never median ms', 'always median ms', 'auto median ms', 'speed-up always', 'speed-up auto', "conv2, fc1 ('always')", "conv2, fc1 ('auto')"],
    rows: await measureSparseSessions(minMs, false),
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await measureSparseSessions(Number(process.argv[2] ?? 1500), true);
}
