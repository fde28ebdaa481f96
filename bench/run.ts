/**
 * `npm run bench`: every figure is a ratio against a baseline measured in the same run
 * (the CPU's FMA peak, Kiln's own fp32 path, or onnxruntime-node). Writes bench/results/latest.{json,md}
 * (some sections only: latest-<sections>.{json,md}).
 *
 *   npm run bench                       # everything
 *   npm run bench -- gemm forward       # only some sections: gemm (fp32 and int8), s8gemm, forward, train, ort, int8, sparse, compress
 *   npm run bench -- ort --model x.onnx # also benchmark an ONNX model of your own against ORT
 */
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { cpuInfo } from '../src/system.js';
import { benchCompress } from './compress.js';
import { benchGemm, benchS8Gemm, measureF32Peak } from './gemm.js';
import { benchInt8 } from './int8.js';
import { Report } from './report.js';
import { benchForward, benchTraining, benchVsOrt } from './seedcnn.js';
import { benchSparseEndToEnd } from './sparse-e2e.js';
import { benchSparseKernels } from './sparse-kernels.js';
import { benchSparseLayers } from './sparse-layers.js';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const models: string[] = [];
  const sections = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--model') models.push(args[++i]);
    else sections.add(args[i]);
  }
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
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  if (all || sections.has('sparse')) {
    await benchSparseKernels(report, root);
    await benchSparseLayers(report);
    await benchSparseEndToEnd(report, threadCounts);
  }
  if (all || sections.has('compress')) await benchCompress(report, root);
  // A run of some sections writes latest-<sections>.*, so it never replaces the full run's tables.
  const name = all ? 'latest' : `latest-${[...sections].sort().join('-')}`;
  const { json, markdown } = await report.write(join(root, 'bench', 'results'), name);
  process.stdout.write(`\nwrote ${json} and ${markdown}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exitCode = 1;
});
