/**
 * Sparse int8 kernels in the plan: a quantized SeedCNN (MNIST 1x28x28 and CIFAR 3x32x32) with
 * conv2 and fc1 90% zero (1x4 blocks: 4 input channels at one kernel position / of one pooled
 * pixel; or unstructured), InferenceSession at batch 64 and 1 on one thread, sparseKernels
 * 'always' and 'auto' against 'never' (interleaved blocks of runs, median latency), with the conv2
 * and fc1 step texts of the 'always' and 'auto' sessions.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/s8-sparse-session.js [minMs]
 */
import { pathToFileURL } from 'node:url';

import { Conv2d, Linear } from '../src/nn/index.js';
import type { Sequential } from '../src/nn/layers/sequential.js';
import { seedCNN } from '../src/nn/models.js';
import { quantize } from '../src/quant/ptq.js';
import { InferenceSession } from '../src/runtime/session.js';
import { Tensor } from '../src/tensor.js';
import { Rng } from '../src/util/rng.js';
import { measureInterleaved } from '../src/util/timing.js';

/** Zeros `fraction` of conv2's and fc1's weights in 1x4 blocks of the int8 reduction order, or single weights. */
function prune(net: Sequential, fraction: number, unstructured: boolean, rng: Rng): void {
  const conv2 = net.layers.filter((m): m is Conv2d => m instanceof Conv2d)[1];
  const fc1 = net.layers.filter((m): m is Linear => m instanceof Linear)[0];
  const step = unstructured ? 1 : 4;
  const w = conv2.weight.value.data;
  const [o, c, kh, kw] = conv2.weight.value.dims;
  for (let oc = 0; oc < o; oc++) for (let t = 0; t < kh * kw; t++) for (let c0 = 0; c0 < c; c0 += step) {
    if (rng.uniform(0, 1) < fraction) for (let ci = c0; ci < Math.min(c, c0 + step); ci++) w[(oc * c + ci) * kh * kw + t] = 0;
  }
  const f = fc1.weight.value.data;
  const [n, k] = fc1.weight.value.dims;
  const channels = o, plane = k / channels;
  for (let j = 0; j < n; j++) for (let p = 0; p < plane; p++) for (let c0 = 0; c0 < channels; c0 += step) {
    if (rng.uniform(0, 1) < fraction) for (let ci = c0; ci < Math.min(channels, c0 + step); ci++) f[j * k + ci * plane + p] = 0;
  }
}

async function main(minMs: number): Promise<void> {
  const rng = new Rng(7);
  console.log('model  zeros         batch  never ms  always ms  auto ms  never/always  never/auto  | conv2; fc1 (always) | (auto)');
  for (const { name, shape } of [{ name: 'MNIST', shape: [1, 28, 28] }, { name: 'CIFAR', shape: [3, 32, 32] }]) {
    for (const unstructured of [false, true]) {
      const net = seedCNN({ inChannels: shape[0], height: shape[1], width: shape[2], numClasses: 10, seed: 1 }).eval();
      prune(net, 0.9, unstructured, rng);
      const calib = new Tensor('float32', Float32Array.from({ length: 64 * shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(0, 1)), [64, ...shape]);
      const { graph } = await quantize(net, calib);
      const make = (sparseKernels: 'always' | 'never' | 'auto') => InferenceSession.create(graph, { intraOpNumThreads: 1, sparseKernels });
      const [never, always, auto] = [await make('never'), await make('always'), await make('auto')];
      const text = (s: InferenceSession) => {
        const steps = s.info().steps;
        const c = steps.filter((l) => l.startsWith('QLinearConv'))[1].replace(/^.*?(sparse|dense,)/, '$1');
        const g = steps.filter((l) => l.startsWith('QLinearGemm'))[0].replace(/^.*?(sparse|dense,|$)/, '$1');
        return `${c}; ${g || 'dense'}`;
      };
      for (const batch of [64, 1]) {
        const x = new Tensor('float32', Float32Array.from({ length: batch * shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(0, 1)), [batch, ...shape]);
        const input = never.inputNames[0];
        const [tn, ta, tu] = await measureInterleaved([() => never.run({ [input]: x }), () => always.run({ [input]: x }), () => auto.run({ [input]: x })], { minMs });
        const ms = (t: { medianMs: number }, w: number) => t.medianMs.toFixed(3).padStart(w);
        console.log(
          `${name.padEnd(6)} ${(unstructured ? '90% unstr.' : '90% 1x4').padEnd(12)} ${String(batch).padStart(5)}  ${ms(tn!, 8)}  ${ms(ta!, 9)}  ${ms(tu!, 7)}  ${(tn!.medianMs / ta!.medianMs).toFixed(2).padStart(12)}  ${(tn!.medianMs / tu!.medianMs).toFixed(2).padStart(10)}  | ${text(always)} | ${text(auto)}`,
        );
      }
      never.release();
      always.release();
      auto.release();
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(Number(process.argv[2] ?? 1500));
}
