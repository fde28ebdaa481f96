/**
 * `npm run bench`: every figure is a ratio against a baseline measured in the same run
 * (the CPU's FMA peak, Kiln's own fp32 path, or onnxruntime-node). Writes bench/results/latest.{json,md}
 * (some sections only: latest-<sections>.{json,md}; with --filter: latest-<sections>-filtered.*).
 *
 *   npm run bench                       # everything
 *   npm run bench -- gemm forward       # only some sections: gemm (fp32 and int8), s8gemm, forward, train, ort, int8, models, profile, sparse, compress
 *   npm run bench -- ort --model x.onnx # also benchmark an ONNX model of your own against ORT
 *   npm run bench -- models --real-models /work/torchvision-onnx   # issue 15's table (below)
 *   npm run bench -- profile --real-models /work/torchvision-onnx  # where each model's fp32 / int8 time goes (bench/models-profile.ts)
 *   npm run bench -- serve --serve-seconds 5    # HTTP load test of kiln serve (bench/serve.ts; default 20 s per row;
 *                                               # with --real-models also ResNet-50 and MobileNetV2)
 *
 * Section `models` (bench/real-models-speed.ts): Kiln fp32 and int8 against onnxruntime-node fp32 and
 * int8 (the QDQ file Kiln's quantizer exports) on the padded SeedCNN (MNIST and CIFAR, batch 1 and 64)
 * and, given the folder of bench/models/export_torchvision.py's exports (`--real-models <dir>` or env
 * KILN_REAL_MODELS), on each architecture's dynamo opset-21 file (batch 1 and 16); threads 1 and 2,
 * with geometric means and the issue's target checks. `--filter <regex>` (env KILN_BENCH_FILTER) keeps
 * the models whose name matches (seedcnn-mnist-padded, seedcnn-cifar-padded, resnet18, ...);
 * `--min-ms <ms>` (env KILN_BENCH_MIN_MS, default 500) is the least time per timed row.
 */
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { cpuInfo } from '../src/system.js';
import { benchCompress } from './compress.js';
import { benchGemm, benchS8Gemm, measureF32Peak } from './gemm.js';
import { benchInt8 } from './int8.js';
import { benchProfile } from './models-profile.js';
import { benchModels } from './real-models-speed.js';
import { benchServe } from './serve.js';
import { Report } from './report.js';
import { benchForward, benchTraining, benchVsOrt } from './seedcnn.js';
import { benchSparseEndToEnd } from './sparse-e2e.js';
import { benchSparseKernels } from './sparse-kernels.js';
import { benchSparseLayers } from './sparse-layers.js';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const models: string[] = [];
  const sections = new Set<string>();
  let realModels = process.env.KILN_REAL_MODELS || undefined;
  let filter = process.env.KILN_BENCH_FILTER || undefined;
  let minMs = process.env.KILN_BENCH_MIN_MS || undefined;
  let serveSeconds = process.env.KILN_SERVE_SECONDS || undefined;
  const value = (i: number): string => {
    const v = args[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${args[i]} needs a value`);
    return v;
  };
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--model') models.push(value(i++));
    else if (args[i] === '--real-models') realModels = value(i++);
    else if (args[i] === '--filter') filter = value(i++);
    else if (args[i] === '--min-ms') minMs = value(i++);
    else if (args[i] === '--serve-seconds') serveSeconds = value(i++);
    else if (args[i]!.startsWith('--')) throw new Error(`unknown option ${args[i]} (--model, --real-models, --filter, --min-ms, --serve-seconds)`);
    else sections.add(args[i]!);
  }
  const modelsMinMs = minMs === undefined ? 500 : Number(minMs);
  if (!(modelsMinMs > 0)) throw new Error(`--min-ms / KILN_BENCH_MIN_MS: expected a positive number of ms, got '${minMs}'`);
  const seconds = serveSeconds === undefined ? 20 : Number(serveSeconds);
  if (!Number.isInteger(seconds) || seconds < 1) throw new Error(`--serve-seconds / KILN_SERVE_SECONDS: expected a whole number of seconds >= 1, got '${serveSeconds}'`);
  const all = sections.size === 0;
  const cores = availableParallelism();
  const threadCounts = cores >= 2 ? [1, 2] : [1];
  const info = cpuInfo();
  const peak = measureF32Peak();
  const report = new Report({
    date: new Date().toISOString(),
    cpu: info.brand,
    isa: info.isa,
    cores,
    l2CacheKiB: info.l2CacheBytes / 1024,
    node: process.version,
    singleCoreF32PeakGflops: Number(peak.toFixed(1)),
  });
  process.stdout.write(`Kiln benchmarks on ${info.brand} (${info.isa}, ${cores} cores); fp32 FMA peak ${peak.toFixed(1)} GFLOP/s per core\n`);
  if (all || sections.has('gemm')) await benchGemm(report, peak, cores);
  if (all || sections.has('gemm') || sections.has('s8gemm')) await benchS8Gemm(report, cores);
  if (all || sections.has('forward')) await benchForward(report, peak, threadCounts);
  if (all || sections.has('train')) await benchTraining(report, cores);
  if (all || sections.has('ort')) await benchVsOrt(report, threadCounts, models);
  if (all || sections.has('int8')) await benchInt8(report, threadCounts);
  if (all || sections.has('models')) {
    await benchModels(report, { dir: realModels, filter: filter === undefined ? undefined : new RegExp(filter), minMs: modelsMinMs, threadCounts });
  }
  if (all || sections.has('profile')) {
    await benchProfile(report, { dir: realModels, filter: filter === undefined ? undefined : new RegExp(filter), minMs: modelsMinMs });
  }
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  if (all || sections.has('sparse')) {
    await benchSparseKernels(report, root);
    await benchSparseLayers(report);
    await benchSparseEndToEnd(report, threadCounts);
  }
  if (all || sections.has('compress')) await benchCompress(report, root);
  if (all || sections.has('serve')) await benchServe(report, { root, seconds, ...(realModels === undefined ? {} : { realModels }) });
  // A run of some sections writes latest-<sections>.*, so it never replaces the full run's tables;
  // one with --filter (some models only) writes latest-<sections>-filtered.*, so it never replaces
  // the whole models table either.
  const base = all ? 'latest' : `latest-${[...sections].sort().join('-')}`;
  const name = filter === undefined ? base : `${base}-filtered`;
  const { json, markdown } = await report.write(join(root, 'bench', 'results'), name);
  process.stdout.write(`\nwrote ${json} and ${markdown}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exitCode = 1;
});
