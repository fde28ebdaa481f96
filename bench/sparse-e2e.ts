/**
 * Pruned SeedCNN end to end (issue 12): MNIST 1x28x28 and CIFAR 3x32x32 with conv2 and fc1 pruned
 * to 90% by Kiln's pruner (magnitude; unstructured, 1x4 and 4x1 blocks; seeded weights: the accuracy of
 * each recipe on real digits is bench/prune-accuracy.ts's job), run as fp32 and as int8 (PTQ) with
 * sparseKernels 'auto' (the default: each layer on whichever of sparse and dense measured faster
 * when the session was built). Baselines in the same run, interleaved, the same pruned model:
 * Kiln's dense kernels (sparseKernels 'never') in fp32 and int8, and onnxruntime-node fp32 and int8
 * on the dense ONNX export (ORT densifies sparse weights anyway), matched thread counts. Also the
 * file sizes of the fp32 model, its int8 form, and the pruned int8 form stored packed.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/sparse-e2e.js [minMs] [threads, e.g. 1,2]
 *
 * `npm run bench` runs it in its 'sparse' section.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import type * as Ort from 'onnxruntime-node';

import { Conv2d, Linear } from '../src/nn/index.js';
import { seedCNN } from '../src/nn/models.js';
import type { Sequential } from '../src/nn/layers/sequential.js';
import { benchmarkInput, exportModel } from '../src/onnx/index.js';
import { Pruner } from '../src/prune/pruner.js';
import { shrinkByImportance } from '../src/prune/shrink/index.js';
import { toGraph } from '../src/graph/from-module.js';
import { quantize } from '../src/quant/ptq.js';
import { save } from '../src/runtime/model-io.js';
import { InferenceSession } from '../src/runtime/session.js';
import { measureInterleaved } from '../src/util/timing.js';
import type { Report } from './report.js';

const MODELS = [
  { name: 'MNIST', shape: [1, 28, 28] },
  { name: 'CIFAR', shape: [3, 32, 32] },
];
// 1x4 blocks feed the int8 kernels (4 input channels: one vpdpbusd word), 4x1 blocks the fp32 ones
// (4 output channels share each input load).
const PATTERNS = ['unstructured', 'block1x4', 'block4x1'] as const;

/** SeedCNN with conv2 and fc1 pruned to `sparsity` in `pattern` (the first conv and last Linear stay dense, as by default). */
function prunedSeedCnn(shape: number[], pattern: string, sparsity: number): Sequential {
  const net = seedCNN({ inChannels: shape[0], height: shape[1], width: shape[2], numClasses: 10, seed: 1 });
  new Pruner(net, { pattern }).update(sparsity);
  return net.eval() as Sequential;
}

/** "conv2 <kernel>, fc1 <kernel>" from a session's step texts. */
function kernels(session: InferenceSession): string {
  const steps = session.info().steps;
  const pick = (re: RegExp, i: number) => {
    const s = steps.filter((l) => re.test(l))[i] ?? '';
    const at = s.search(/ (sparse|dense)\b/);
    return at < 0 ? 'dense' : s.slice(at + 1).replace(/,/g, ';');
  };
  return `conv2 ${pick(/^(Conv|QLinearConv)\b/, 1)}, fc1 ${pick(/^(Gemm|QLinearGemm)\b/, 0)}`;
}

export async function measureSparseEndToEnd(threadCounts: number[], minMs: number, print: boolean): Promise<{ rows: (string | number)[][]; sizes: (string | number)[][] }> {
  const ort: typeof Ort = await import('onnxruntime-node');
  const rows: (string | number)[][] = [];
  const sizes: (string | number)[][] = [];
  const dir = await mkdtemp(join(tmpdir(), 'kiln-sparse-e2e-'));
  try {
    for (const m of MODELS) {
      for (const pattern of PATTERNS) {
        const net = prunedSeedCnn(m.shape, pattern, 0.9);
        const { graph: int8 } = await quantize(net, benchmarkInput(64, m.shape, 3), { method: 'minmax', reportImages: 0 });
        const files = { fp32: join(dir, 'fp32.kiln'), int8: join(dir, 'int8.kiln'), packed: join(dir, 'int8-packed.kiln') };
        await save(net, files.fp32);
        await save(int8, files.int8);
        await save(int8, files.packed, { sparse: 'auto' });
        const [fp32Bytes, int8Bytes, packedBytes] = await Promise.all([files.fp32, files.int8, files.packed].map(async (p) => (await stat(p)).size));
        sizes.push([m.name, pattern, fp32Bytes, int8Bytes, packedBytes, fp32Bytes / packedBytes]);
        const fp32Onnx = exportModel(net, { inputShape: m.shape });
        const qdqOnnx = exportModel(int8);
        for (const threads of threadCounts) {
          const ortOptions: Ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3 };
          const kiln = (model: typeof net | typeof int8, sparseKernels: 'auto' | 'never') =>
            InferenceSession.create(model, { intraOpNumThreads: threads, sparseKernels, ...(model === net ? { inputShape: m.shape } : {}) });
          const sq = await kiln(int8, 'auto');
          const sf = await kiln(net, 'auto');
          const dq = await kiln(int8, 'never');
          const df = await kiln(net, 'never');
          const oq = await ort.InferenceSession.create(qdqOnnx, ortOptions);
          const of = await ort.InferenceSession.create(fp32Onnx, ortOptions);
          try {
            for (const batch of [64, 1]) {
              const x = benchmarkInput(batch, m.shape, 7 + batch);
              const ox = new ort.Tensor('float32', x.data, x.dims.slice());
              const run = (s: InferenceSession) => () => s.run({ input: x });
              const orun = (s: Ort.InferenceSession) => () => s.run({ [s.inputNames[0]!]: ox });
              const [tsq, tsf, tdq, tdf, toq, tof] = (await measureInterleaved([run(sq), run(sf), run(dq), run(df), orun(oq), orun(of)], { minMs })).map((t) => t!.medianMs);
              const row = [
                m.name, pattern, threads, batch,
                tsq, tsf, tdq, tdf, toq, tof,
                tdq / tsq, tof / tsq, toq / tsq, tdf / tsf, tof / tsf,
                kernels(sq), kernels(sf),
              ];
              rows.push(row);
              if (print) console.log(row.map((v) => (typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(3) : String(v))).join(' | '));
            }
          } finally {
            for (const s of [sq, sf, dq, df]) s.release();
            await oq.release();
            await of.release();
          }
        }
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (print) for (const s of sizes) console.log(`file sizes ${s.join(' | ')}`);
  return { rows, sizes };
}

/**
 * Structured pruning: SeedCNN with half of the filters of both convolutions removed by
 * shrinkByImportance (L1, kept counts rounded up to 16) is an ordinary smaller dense model, faster
 * on every runtime: Kiln and ORT on the original and on the shrunk model, fp32, 1 thread.
 */
export async function measureShrunk(minMs: number): Promise<(string | number)[][]> {
  const ort: typeof Ort = await import('onnxruntime-node');
  const rows: (string | number)[][] = [];
  for (const m of MODELS) {
    const net = seedCNN({ inChannels: m.shape[0], height: m.shape[1], width: m.shape[2], numClasses: 10, seed: 1 }).eval();
    const original = toGraph(net, m.shape);
    const { graph: shrunk, report } = shrinkByImportance(original, { fraction: 0.5, roundTo: 16 });
    const ortOptions: Ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3 };
    const ko = await InferenceSession.create(original, { intraOpNumThreads: 1 });
    const ks = await InferenceSession.create(shrunk, { intraOpNumThreads: 1 });
    const oo = await ort.InferenceSession.create(exportModel(original), ortOptions);
    const os = await ort.InferenceSession.create(exportModel(shrunk), ortOptions);
    try {
      for (const batch of [64, 1]) {
        const x = benchmarkInput(batch, m.shape, 11 + batch);
        const ox = new ort.Tensor('float32', x.data, x.dims.slice());
        const run = (s: InferenceSession) => () => s.run({ [s.inputNames[0]]: x });
        const orun = (s: Ort.InferenceSession) => () => s.run({ [s.inputNames[0]!]: ox });
        const [tko, tks, too, tos] = (await measureInterleaved([run(ko), run(ks), orun(oo), orun(os)], { minMs })).map((t) => t!.medianMs);
        rows.push([m.name, batch, report.before.parameters, report.after.parameters, report.before.macs, report.after.macs, tko, tks, tko / tks, too, tos, too / tos, too / tks]);
      }
    } finally {
      ko.release();
      ks.release();
      await oo.release();
      await os.release();
    }
  }
  return rows;
}

/** End-to-end and file-size tables of the 'sparse' section of `npm run bench`. */
export async function benchSparseEndToEnd(report: Report, threadCounts: number[], minMs = 500): Promise<void> {
  const { rows, sizes } = await measureSparseEndToEnd(threadCounts, minMs, false);
  report.add({
    title: 'Pruned SeedCNN end to end: conv2 and fc1 90% zero, fp32 and int8 on sparseKernels auto, against dense Kiln and ORT on the same model',
    baseline: "measured in this run, interleaved, same inputs and thread counts: Kiln dense kernels (sparseKernels 'never', fp32 and int8) and onnxruntime-node fp32 and int8 (QDQ) on the dense ONNX export; ORT graphOptimizationLevel all",
    columns: [
      'model', 'pattern', 'threads', 'batch',
      'Kiln pruned int8 ms', 'Kiln pruned fp32 ms', 'Kiln dense int8 ms', 'Kiln dense fp32 ms', 'ORT int8 ms', 'ORT fp32 ms',
      'pruned int8 vs Kiln dense int8 (target >= 2, MNIST batch 64, 1 thread)', 'pruned int8 vs ORT fp32 (target >= 7)', 'pruned int8 vs ORT int8',
      'pruned fp32 vs Kiln dense fp32 (target >= 2 on CIFAR)', 'pruned fp32 vs ORT fp32', 'int8 kernels chosen', 'fp32 kernels chosen',
    ],
    rows,
    notes: ['seeded SeedCNN weights pruned by magnitude (accuracy of the same recipes on MNIST: bench/results/prune-accuracy.txt); int8 by quantize() with min/max ranges over 64 inputs'],
  });
  report.add({
    title: 'File sizes: SeedCNN fp32, int8, and pruned (90%) + int8 stored packed',
    baseline: 'the fp32 .kiln file of the same model',
    columns: ['model', 'pattern', 'fp32 bytes', 'int8 bytes (dense)', 'pruned + int8 bytes (packed)', 'fp32 / pruned+int8 (target >= 12)'],
    rows: sizes,
  });
  report.add({
    title: 'Shrunk SeedCNN (half the filters of both convs removed, kept counts rounded to 16): an ordinary smaller dense model, fp32, 1 thread',
    baseline: 'the original model on the same runtime, in this run, interleaved (Kiln InferenceSession; onnxruntime-node on the ONNX export of each)',
    columns: ['model', 'batch', 'parameters before', 'parameters after', 'MACs per image before', 'MACs per image after', 'Kiln original ms', 'Kiln shrunk ms', 'Kiln speed-up', 'ORT original ms', 'ORT shrunk ms', 'ORT speed-up', 'Kiln shrunk vs ORT original'],
    rows: await measureShrunk(minMs),
    notes: ['seeded weights, filters chosen by L1 norm (shrinkByImportance); accuracy of the same shrink after fine-tuning on MNIST: README, Pruning'],
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await measureSparseEndToEnd((process.argv[3] ?? '1,2').split(',').map(Number), Number(process.argv[2] ?? 800), true);
}
