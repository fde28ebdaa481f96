/**
 * `kiln prune`: prunes a trained .kiln model (masks on its Conv2d/Linear weights) on a schedule while
 * fine-tuning on the train split of --dataset (progress bar), prints per-layer sparsity and held-out
 * accuracy before and after, and writes the pruned model (weights dense, zeros in place) with its
 * pruning settings and per-layer sparsity in the file's metadata.
 */
import { stat } from 'node:fs/promises';

import { METHODS } from '../prune/criteria.js';
import { prune } from '../prune/prune.js';
import { checkSparsity, Pruner } from '../prune/pruner.js';
import { SCHEDULES } from '../prune/schedule.js';
import type { ScheduleOptions } from '../prune/schedule.js';
import { save } from '../runtime/model-io.js';
import { checkOutputFile } from '../util/files.js';
import { oneOf, rangeError, typeError } from '../validate.js';
import { loadDatasets, splitSeed } from './datasets.js';
import { readModelSource } from './model-source.js';
import { Output, percent } from './output.js';

export interface PruneCommandOptions {
  sparsity?: string;
  schedule: string;
  rounds?: number;
  epochs: number;
  method: string;
  pattern?: string;
  layers?: string;
  dataset: string;
  dataDir?: string;
  /** Seed of the train/test split; default: the one recorded in the model file (else 1). */
  seed?: number;
  out: string;
  json?: boolean;
}

export async function pruneCommand(modelPath: string, opts: PruneCommandOptions): Promise<void> {
  const out = new Output(opts);
  // Before any work: a bad --out would otherwise fail only after the fine-tune.
  await checkOutputFile(opts.out, '--out');
  const sparsity = opts.sparsity === undefined ? undefined : checkSparsity('--sparsity', opts.sparsity.trim() === '' ? NaN : Number(opts.sparsity));
  const scheduleType = oneOf('--schedule', opts.schedule, SCHEDULES);
  if (opts.rounds !== undefined && scheduleType !== 'iterative') throw typeError('--rounds', "nothing unless --schedule is 'iterative'", opts.rounds);
  const method = oneOf('--method', opts.method, METHODS);
  const layers = opts.layers?.split(',').map((l) => l.trim());
  const source = await readModelSource(modelPath);
  if (source.kind !== 'kiln') throw typeError('<model>', 'a .kiln file holding a trained Module (a saved graph or an ONNX model has no layers to fine-tune)', modelPath);
  const model = source.module;
  // Layer names, pattern and method checked against the model before loading any data.
  const pruner = new Pruner(model, { method, ...(opts.pattern !== undefined ? { pattern: opts.pattern } : {}), ...(layers ? { layers } : {}) }, (o) => `--${o.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  if (sparsity === undefined && pruner.fixedSparsity === undefined) throw typeError('--sparsity', 'a number in [0, 1) (only an N:M --pattern implies one)', undefined);
  if (opts.epochs === 0 && scheduleType !== 'oneshot') throw rangeError('--epochs', `at least 1 with --schedule ${scheduleType}`, 0);

  const seed = splitSeed(opts.dataset, opts.seed, source.file.metadata, modelPath);
  const { train: trainSet, test } = await loadDatasets({ dataset: opts.dataset, dataDir: opts.dataDir, seed });
  const batchSize = 64;
  const perEpoch = Math.ceil(trainSet.length / batchSize);
  out.line(`pruning ${modelPath}: ${method} ${pruner.pattern.name} to ${sparsity ?? pruner.fixedSparsity}, ${scheduleType}, ${opts.epochs} epochs on ${trainSet.name} (${trainSet.length} images)`);
  const bar = out.progress(Math.max(1, opts.epochs * perEpoch), 'pruning epoch {epoch}/{epochs} |{bar}| {value}/{total} batches', { epoch: 1, epochs: opts.epochs });
  const schedule: ScheduleOptions = { type: scheduleType, ...(opts.rounds !== undefined ? { rounds: opts.rounds } : {}) };
  const started = performance.now();
  let result: Awaited<ReturnType<typeof prune>>;
  try {
    result = await prune(model, trainSet, {
      ...(sparsity !== undefined ? { sparsity } : {}),
      method,
      ...(opts.pattern !== undefined ? { pattern: opts.pattern } : {}),
      ...(layers ? { layers } : {}),
      schedule,
      epochs: opts.epochs,
      validation: test,
      train: {
        seed,
        batchSize,
        callbacks: {
          onBatchEnd: ({ epoch, batch }) => bar.update(epoch * perEpoch + batch + 1, { epoch: epoch + 1, epochs: opts.epochs }),
          onEpochEnd: (e) => {
            if (out.json) out.line(`epoch ${e.epoch + 1}/${opts.epochs}: loss ${e.trainLoss.toFixed(4)}, train ${percent(e.trainAccuracy)}`);
          },
        },
      },
    });
  } finally {
    bar.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  const { report } = result;
  const layerSparsity = Object.fromEntries(report.layers.map((l) => [l.name, l.sparsity]));
  const provenance = source.file.metadata?.dataset !== undefined && source.file.metadata?.seed !== undefined
    ? { dataset: source.file.metadata.dataset, seed: source.file.metadata.seed }
    : { dataset: trainSet.name, seed: String(seed) };
  await save(model, opts.out, {
    inputShape: source.inputShape,
    metadata: {
      ...provenance,
      source: modelPath,
      testAccuracy: String(report.accuracyAfter),
      pruning: { method: report.method, pattern: report.pattern, schedule: report.schedule, sparsity: report.targetSparsity, epochs: opts.epochs, layers: layerSparsity },
    },
  });
  const fileBytes = (await stat(opts.out)).size;
  const rows = report.layers.map((l) => `  ${l.name.padEnd(6)} ${l.type.padEnd(7)} [${l.dims.join(', ')}]`.padEnd(34) + ` ${(l.sparsity * 100).toFixed(2)}% zeros (${l.zeros}/${l.size})`);
  out.line(['per-layer sparsity:', ...rows].join('\n'));
  const before = report.accuracyBefore!;
  const after = report.accuracyAfter!;
  out.result(
    {
      model: modelPath,
      out: opts.out,
      fileBytes,
      method: report.method,
      pattern: report.pattern,
      schedule: report.schedule,
      epochs: opts.epochs,
      targetSparsity: report.targetSparsity,
      sparsity: report.sparsity,
      layers: report.layers.map((l) => ({ name: l.name, type: l.type, dims: l.dims, sparsity: l.sparsity, zeros: l.zeros, size: l.size })),
      evalImages: test.length,
      seconds,
      accuracyBefore: before,
      accuracyAfter: after,
      accuracyDelta: after - before,
    },
    () => `held-out accuracy on ${test.length} images: before ${percent(before)}, after ${percent(after)} (${((after - before) * 100).toFixed(2)} points); ${(report.sparsity * 100).toFixed(2)}% of the pruned layers' weights are zero; wrote ${opts.out} (${fileBytes} bytes)`,
  );
}
