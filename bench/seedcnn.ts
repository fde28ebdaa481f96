/**
 * SeedCNN: inference throughput against the FMA peak, training throughput, and Kiln vs
 * onnxruntime-node on the same ONNX file (alternating runs, same inputs, matched threads).
 */
import * as ort from 'onnxruntime-node';

import { mnist } from '../src/data/mnist.js';
import { seedCNN } from '../src/nn/models.js';
import { exportModel } from '../src/onnx/index.js';
import { InferenceSession } from '../src/runtime/session.js';
import { setNumThreads } from '../src/system.js';
import { Tensor } from '../src/tensor.js';
import { train } from '../src/train/index.js';
import type { Report } from './report.js';
import { measure, measurePair } from './timing.js';

const BATCHES = [1, 8, 64];

function randomInput(batch: number, shape: readonly number[], seed: number): Tensor<'float32'> {
  const n = batch * shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 4294967296;
  }
  return new Tensor('float32', data, [batch, ...shape]);
}

export async function benchForward(report: Report, peakGflops: number, threadCounts: number[]): Promise<void> {
  const shape = [1, 28, 28] as const;
  const net = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 1 }).eval();
  const macs = net.macs([1, ...shape]);
  const rows: (string | number)[][] = [];
  const single: Record<number, number> = {};
  for (const threads of threadCounts) {
    const session = await InferenceSession.create(net, { intraOpNumThreads: threads, inputShape: [...shape] });
    for (const batch of BATCHES) {
      const input = randomInput(batch, shape, batch);
      const t = await measure(() => session.run({ input }), { minMs: 1000 });
      const imagesPerSecond = (batch * 1000) / t.medianMs;
      const gmacs = (imagesPerSecond * macs) / 1e9;
      if (threads === 1) single[batch] = imagesPerSecond;
      rows.push([
        threads, batch, t.medianMs, t.p99Ms, imagesPerSecond,
        gmacs / ((peakGflops / 2) * threads),
        threads > 1 && single[batch] ? imagesPerSecond / single[batch] : '',
      ]);
    }
    session.release();
  }
  report.add({
    title: 'SeedCNN MNIST forward (fp32, InferenceSession)',
    baseline: `measured FMA peak: ${(peakGflops / 2).toFixed(1)} GMAC/s per core; ${macs.toLocaleString('en-US')} MACs per image`,
    columns: ['threads', 'batch', 'median ms', 'p99 ms', 'images/s', 'fraction of peak (MAC/s)', 'speed-up vs 1 thread'],
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
  const models: { name: string; bytes: Uint8Array; inputShape: number[] }[] = [
    { name: 'SeedCNN MNIST 1x28x28', bytes: exportModel(seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 1 }), { inputShape: [1, 28, 28] }), inputShape: [1, 28, 28] },
    { name: 'SeedCNN CIFAR 3x32x32', bytes: exportModel(seedCNN({ inChannels: 3, height: 32, width: 32, numClasses: 10, seed: 1 }), { inputShape: [3, 32, 32] }), inputShape: [3, 32, 32] },
  ];
  for (const path of extraModels) {
    const { readFile } = await import('node:fs/promises');
    const bytes = new Uint8Array(await readFile(path));
    const probe = await InferenceSession.create(bytes);
    const dims = probe.inputShapes?.[0]?.slice(1).map(Number) ?? [];
    probe.release();
    models.push({ name: path, bytes, inputShape: dims });
  }
  for (const model of models) {
    for (const threads of threadCounts) {
      const kiln = await InferenceSession.create(model.bytes, { intraOpNumThreads: threads });
      const ortSession = await ort.InferenceSession.create(model.bytes, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
      const inName = kiln.inputNames[0];
      const ortIn = ortSession.inputNames[0];
      for (const batch of BATCHES) {
        const x = randomInput(batch, model.inputShape, 7 + batch);
        const ortX = new ort.Tensor('float32', x.data, x.dims);
        const [tk, to] = await measurePair(
          () => kiln.run({ [inName]: x }),
          () => ortSession.run({ [ortIn]: ortX }),
          { minMs: 1500 },
        );
        rows.push([model.name, threads, batch, tk.medianMs, tk.p99Ms, to.medianMs, to.p99Ms, (batch * 1000) / tk.medianMs, (batch * 1000) / to.medianMs, to.medianMs / tk.medianMs]);
      }
      kiln.release();
      await ortSession.release();
    }
  }
  report.add({
    title: 'Kiln fp32 vs onnxruntime-node fp32 (same ONNX file, same inputs, alternating runs)',
    baseline: 'onnxruntime-node in the same process, intraOpNumThreads matched, graphOptimizationLevel all',
    columns: ['model', 'threads', 'batch', 'Kiln median ms', 'Kiln p99 ms', 'ORT median ms', 'ORT p99 ms', 'Kiln images/s', 'ORT images/s', 'speed-up (ORT time / Kiln time)'],
    rows,
  });
}
