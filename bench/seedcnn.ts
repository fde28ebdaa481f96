/**
 * SeedCNN: inference throughput against the FMA peak, training throughput, and Kiln vs
 * onnxruntime-node on the same ONNX file (interleaved blocks of back-to-back runs, same inputs, matched threads).
 */
import { readFile } from 'node:fs/promises';

import { mnist } from '../src/data/mnist.js';
import { seedCNN } from '../src/nn/models.js';
import { benchmarkAgainstOrt, benchmarkInput, exportModel } from '../src/onnx/index.js';
import { InferenceSession } from '../src/runtime/session.js';
import { setNumThreads } from '../src/system.js';
import { train } from '../src/train/index.js';
import type { Report } from './report.js';
import { measureInterleaved } from '../src/util/timing.js';

const BATCHES = [1, 8, 64];

export async function benchForward(report: Report, peakGflops: number, threadCounts: number[]): Promise<void> {
  const shape = [1, 28, 28] as const;
  const net = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 1 }).eval();
  const macs = net.macs([1, ...shape]);
  const rows: (string | number)[][] = [];
  // Level 'all' runs conv_1 as Winograd; 'extended' keeps the direct kernels (the MAC count is
  // theirs). Every session is timed interleaved with the others (blocks of each in turn), so the
  // speed-up column compares runs from the same stretch of machine time.
  const levels = ['all', 'extended'] as const;
  const configs = levels.flatMap((level) => threadCounts.map((threads) => ({ level, threads })));
  const sessions = await Promise.all(
    configs.map((c) => InferenceSession.create(net, { intraOpNumThreads: c.threads, inputShape: [...shape], graphOptimizationLevel: c.level })),
  );
  const perBatch = new Map<number, { medianMs: number; p99Ms: number }[]>();
  try {
    for (const batch of BATCHES) {
      const input = benchmarkInput(batch, shape, batch);
      perBatch.set(batch, await measureInterleaved(sessions.map((s) => () => s.run({ input })), { minMs: 3000 }));
    }
  } finally {
    for (const s of sessions) s.release();
  }
  configs.forEach(({ level, threads }, i) => {
    for (const batch of BATCHES) {
      const t = perBatch.get(batch)![i]!;
      const imagesPerSecond = (batch * 1000) / t.medianMs;
      const gmacs = (imagesPerSecond * macs) / 1e9;
      const one = configs.findIndex((c) => c.level === level && c.threads === 1);
      const speedup = threads > 1 && one >= 0 ? perBatch.get(batch)![one]!.medianMs / t.medianMs : '';
      const path = level === 'all' ? "Winograd conv_1 ('all')" : "direct ('extended')";
      rows.push([path, threads, batch, t.medianMs, t.p99Ms, imagesPerSecond, gmacs / ((peakGflops / 2) * threads), speedup]);
    }
  });
  report.add({
    title: 'SeedCNN MNIST forward (fp32, InferenceSession)',
    baseline: `measured FMA peak: ${(peakGflops / 2).toFixed(1)} GMAC/s per core; ${macs.toLocaleString('en-US')} MACs per image (the direct sum's count: with Winograd, conv_1 does 2.25x fewer real multiplies, so its fraction can pass 1); all four sessions timed interleaved in ~20 ms blocks`,
    columns: ['conv path (graphOptimizationLevel)', 'threads', 'batch', 'median ms', 'p99 ms', 'images/s', 'fraction of peak (MAC/s)', 'speed-up vs 1 thread'],
    rows,
  });
}

export async function benchTraining(report: Report, cores: number): Promise<void> {
  const { train: trainSet } = mnist({ seed: 1 });
  const rows: (string | number)[][] = [];
  for (const threads of [1, Math.min(2, cores)].filter((t, i, a) => a.indexOf(t) === i)) {
    setNumThreads(threads);
    const net = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 1 });
    let imagesPerSecond = 0;
    await train(net, trainSet, {
      epochs: 1,
      batchSize: 64,
      optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 },
      seed: 1,
      callbacks: { onEpochEnd: (e) => void (imagesPerSecond = e.imagesPerSecond) },
    });
    rows.push([threads, 64, imagesPerSecond, imagesPerSecond / 200]);
  }
  setNumThreads(0);
  report.add({
    title: 'SeedCNN MNIST training (one epoch of 8,000 images, SGD momentum)',
    baseline: 'TensorFlow.js on this machine class: ~200 images/s (reference figure from the issue, not re-measured here)',
    columns: ['threads', 'batch', 'images/s', 'x TensorFlow.js figure'],
    rows,
  });
}

export async function benchVsOrt(report: Report, threadCounts: number[], extraModels: string[] = []): Promise<void> {
  const rows: (string | number)[][] = [];
  const models: { name: string; bytes: Uint8Array }[] = [
    { name: 'SeedCNN MNIST 1x28x28', bytes: exportModel(seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 1 }), { inputShape: [1, 28, 28] }) },
    { name: 'SeedCNN CIFAR 3x32x32', bytes: exportModel(seedCNN({ inChannels: 3, height: 32, width: 32, numClasses: 10, seed: 1 }), { inputShape: [3, 32, 32] }) },
  ];
  for (const path of extraModels) models.push({ name: path, bytes: new Uint8Array(await readFile(path)) });
  for (const model of models) {
    for (const r of await benchmarkAgainstOrt(model.bytes, { threads: threadCounts, batches: BATCHES })) {
      rows.push([model.name, r.threads, r.batch, r.kiln.medianMs, r.kiln.p99Ms, r.ort.medianMs, r.ort.p99Ms, r.kilnImagesPerSecond, r.ortImagesPerSecond, r.speedup]);
    }
  }
  report.add({
    title: 'Kiln fp32 vs onnxruntime-node fp32 (same ONNX file, same inputs, interleaved ~20 ms blocks of back-to-back runs, each started once the previous block\'s threads went idle)',
    baseline: 'onnxruntime-node in the same process, intraOpNumThreads matched, graphOptimizationLevel all',
    columns: ['model', 'threads', 'batch', 'Kiln median ms', 'Kiln p99 ms', 'ORT median ms', 'ORT p99 ms', 'Kiln images/s', 'ORT images/s', 'speed-up (ORT time / Kiln time)'],
    rows,
  });
}
