/** `kiln bench model.onnx --vs-ort`: latency and throughput of Kiln and onnxruntime-node on one file. */
import { readFile } from 'node:fs/promises';

import { benchmarkAgainstOrt } from '../onnx/index.js';
import { exportModel } from '../onnx/index.js';
import { readModelSource } from './model-source.js';
import { Output } from './output.js';

export interface BenchCommandOptions {
  vsOrt?: boolean;
  batches: number[];
  threadCounts: number[];
  minMs: number;
  json?: boolean;
}

export async function benchCommand(modelPath: string, opts: BenchCommandOptions): Promise<void> {
  const out = new Output(opts);
  if (!opts.vsOrt) throw new TypeError('Expected --vs-ort for kiln bench (the only comparison it runs today) but received none');
  const source = await readModelSource(modelPath);
  // An int8 graph goes to both runtimes as its QDQ export (Kiln imports it back into int8 ops).
  const bytes = source.kind === 'kiln' ? exportModel(source.module, { inputShape: source.inputShape })
    : source.kind === 'graph' ? exportModel(source.graph) : new Uint8Array(await readFile(modelPath));
  const rows = await benchmarkAgainstOrt(bytes, { batches: opts.batches, threads: opts.threadCounts, minMs: opts.minMs });
  out.result(
    { model: modelPath, rows },
    () =>
      [
        `${'threads'.padStart(7)} ${'batch'.padStart(6)} ${'Kiln ms'.padStart(10)} ${'ORT ms'.padStart(10)} ${'Kiln img/s'.padStart(11)} ${'ORT img/s'.padStart(11)} ${'speed-up'.padStart(9)}`,
        ...rows.map(
          (r) =>
            `${String(r.threads).padStart(7)} ${String(r.batch).padStart(6)} ${r.kiln.medianMs.toFixed(3).padStart(10)} ${r.ort.medianMs.toFixed(3).padStart(10)} ` +
            `${Math.round(r.kilnImagesPerSecond).toString().padStart(11)} ${Math.round(r.ortImagesPerSecond).toString().padStart(11)} ${r.speedup.toFixed(2).padStart(8)}x`,
        ),
        'speed-up = ORT median time / Kiln median time (same inputs, interleaved blocks of back-to-back runs, matched threads)',
      ].join('\n'),
  );
}
