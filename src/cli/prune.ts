/**
 * `kiln prune`: prunes a trained .kiln model (masks on its Conv2d/Linear weights) on a schedule while
 * fine-tuning on the train split of --dataset (progress bar), prints per-layer sparsity and held-out
 * accuracy before and after, and writes the pruned model (weights dense, zeros in place) with its
 * pruning settings and per-layer sparsity in the file's metadata. With --shrink the filter-pruned
 * model is rewritten into a smaller dense one (prune-shrink.ts); --no-finetune shrinks without data.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';

import { ErrorCode, KilnError } from '../errors.js';

import { toGraph } from '../graph/from-module.js';
import { METHODS } from '../prune/criteria.js';
import { planZeroFilters } from '../prune/shrink/index.js';
import { prune } from '../prune/prune.js';
import { checkSparsity, Pruner } from '../prune/pruner.js';
import { prunableLayers, selectLayers, type PrunableLayer } from '../prune/layers.js';
import { SCHEDULES } from '../prune/schedule.js';
import { analyzeSensitivity } from '../prune/sensitivity.js';
import type { ScheduleOptions } from '../prune/schedule.js';
import { save } from '../runtime/model-io.js';
import { checkOutputFile } from '../util/files.js';
import { oneOf, rangeError, typeError } from '../validate.js';
import { loadDatasets, splitSeed } from './datasets.js';
import { readModelSource } from './model-source.js';
import { checkShrinkOptions, convNodesOf, moduleLayersOf, reportShrink, shrinkLayers, shrinkPlanned, shrinkWithoutData } from './prune-shrink.js';
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
  analyze?: boolean;
  maxDrop?: number;
  sparsityFrom?: string;
  /** Shrink the filter-pruned model into a smaller dense one (see prune-shrink.ts). */
  shrink?: boolean;
  /** false with --no-finetune (--shrink only): shrink by filter L1 norm, no data set. */
  finetune?: boolean;
  /** --round-to: kept channel counts rounded up to a multiple of it (--shrink only). */
  roundTo?: string;
  out?: string;
  json?: boolean;
}

const flagOf = (option: string): string => `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** The per-layer sparsities of a --analyze result (its last JSON line, or a file it wrote): `suggestion`. */
async function readSuggestion(path: string): Promise<Record<string, number>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new KilnError(ErrorCode.FILE_NOT_FOUND, `Expected a readable JSON file for --sparsity-from but received '${path}': ${(err as Error).message}`, { cause: err });
  }
  const lines = text.trim().split('\n');
  let parsed: unknown;
  try {
    parsed = JSON.parse(lines[lines.length - 1]);
  } catch {
    throw typeError('--sparsity-from', 'the JSON kiln prune --analyze --json printed (a "suggestion" object)', path);
  }
  const suggestion = (parsed as { suggestion?: unknown } | null)?.suggestion;
  if (suggestion === null || typeof suggestion !== 'object' || Array.isArray(suggestion)) {
    throw typeError('--sparsity-from', 'a JSON object with a "suggestion" of layer name -> sparsity', path);
  }
  return Object.fromEntries(Object.entries(suggestion).map(([k, v]) => [k, checkSparsity(`--sparsity-from suggestion '${k}'`, v)]));
}

/**
 * Per-layer sparsities whose kept filter counts are multiples of `roundTo` (rounded up from the
 * asked sparsity: the pruner removes round(s * filters) of them).
 * @throws KilnError ERR_KILN_CANNOT_SHRINK when the rounding keeps every filter of every layer
 */
function roundedTargets(layers: readonly PrunableLayer[], perLayer: Record<string, number> | undefined, sparsity: number | undefined, roundTo: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of layers) {
    const s = perLayer?.[l.name] ?? sparsity ?? 0;
    const kept = l.outputs - Math.round(s * l.outputs);
    const rounded = Math.min(l.outputs, Math.ceil(Math.max(1, kept) / roundTo) * roundTo);
    out[l.name] = (l.outputs - rounded) / l.outputs;
  }
  if (Object.values(out).every((s) => s === 0)) {
    const sizes = layers.map((l) => `'${l.name}' ${l.outputs}`).join(', ');
    throw new KilnError(ErrorCode.CANNOT_SHRINK, `Cannot shrink: with --round-to ${roundTo} every layer keeps all its filters (filters: ${sizes})`);
  }
  return out;
}

/**
 * @param command commander's Command of `kiln prune` (it passes it): says which options the user
 *   typed, so --no-finetune can refuse fine-tuning options that only have their defaults otherwise
 */
export async function pruneCommand(modelPath: string, opts: PruneCommandOptions, command?: { getOptionValueSource(key: string): string | undefined }): Promise<void> {
  if (opts.analyze) return analyzeCommand(modelPath, opts);
  const roundTo = checkShrinkOptions(opts);
  if (roundTo !== undefined && opts.finetune === false) {
    for (const key of ['schedule', 'rounds', 'epochs', 'dataset', 'dataDir', 'seed', 'maxDrop'] as const) {
      const typed = command ? command.getOptionValueSource(key) === 'cli' : key !== 'schedule' && key !== 'epochs' && key !== 'dataset' && opts[key] !== undefined;
      if (typed) throw typeError(flagOf(key), 'nothing with --no-finetune (no data set, no fine-tuning)', opts[key]);
    }
    return shrinkWithoutData(modelPath, opts, roundTo);
  }
  const shrink = roundTo !== undefined;
  const out = new Output(opts);
  if (opts.out === undefined) throw typeError('--out', `the ${shrink ? '.kiln or .onnx' : '.kiln'} file to write`, undefined);
  if (opts.maxDrop !== undefined) throw typeError('--max-drop', 'nothing without --analyze', opts.maxDrop);
  // Before any work: a bad --out would otherwise fail only after the fine-tune.
  await checkOutputFile(opts.out, '--out');
  if (opts.sparsityFrom !== undefined && (opts.sparsity !== undefined || opts.layers !== undefined)) {
    throw typeError(opts.sparsity !== undefined ? '--sparsity' : '--layers', 'nothing with --sparsity-from (its suggestion sets each layer)', opts.sparsity ?? opts.layers);
  }
  let perLayer = opts.sparsityFrom === undefined ? undefined : await readSuggestion(opts.sparsityFrom);
  const sparsity = opts.sparsity === undefined ? undefined : checkSparsity('--sparsity', opts.sparsity.trim() === '' ? NaN : Number(opts.sparsity));
  const scheduleType = oneOf('--schedule', opts.schedule, SCHEDULES);
  if (opts.rounds !== undefined && scheduleType !== 'iterative') throw typeError('--rounds', "nothing unless --schedule is 'iterative'", opts.rounds);
  const method = oneOf('--method', opts.method, METHODS);
  let layers = perLayer ? Object.entries(perLayer).filter(([, v]) => v > 0).map(([k]) => k) : opts.layers?.split(',').map((l) => l.trim());
  if (layers?.length === 0) throw rangeError('--sparsity-from', 'a suggestion with at least one layer above 0', opts.sparsityFrom);
  const source = await readModelSource(modelPath);
  if (source.kind !== 'kiln') {
    throw typeError('<model>', `a .kiln file holding a trained Module (a saved graph or an ONNX model has no layers to fine-tune${shrink ? '; add --no-finetune to shrink it by filter L1 norm without data' : ''})`, modelPath);
  }
  const model = source.module;
  // --shrink prunes whole filters of convolutions only: a Linear's zeroed rows could not be removed.
  if (shrink && perLayer) {
    // A suggestion covers every layer; shrinking removes conv filters only, so its Linear layers
    // are left dense rather than masked with rows that would stay as zeros.
    selectLayers(model, layers, '--sparsity-from');
    const convs = new Set(prunableLayers(model).filter((l) => l.type === 'Conv2d').map((l) => l.name));
    const linear = layers!.filter((name) => !convs.has(name));
    perLayer = Object.fromEntries(Object.entries(perLayer).filter(([name]) => convs.has(name)));
    layers = layers!.filter((name) => convs.has(name));
    if (layers.length === 0) throw rangeError('--sparsity-from', 'a suggestion with at least one Conv2d layer above 0 with --shrink', opts.sparsityFrom);
    if (linear.length > 0) out.line(`--shrink: the suggestion's Linear layers ${linear.map((n) => `'${n}'`).join(', ')} stay dense (shrinking removes convolution filters)`);
  } else if (shrink) {
    layers = shrinkLayers(model, layers);
  }
  const pattern = shrink ? 'filter' : opts.pattern;
  // Layer names, pattern and method checked against the model before loading any data.
  const pruner = new Pruner(model, { method, ...(pattern !== undefined ? { pattern } : {}), ...(layers ? { layers } : {}) }, flagOf);
  if (perLayer && (method === 'global' || pruner.fixedSparsity !== undefined)) throw typeError('--sparsity-from', 'nothing with --method global or an N:M --pattern', opts.sparsityFrom);
  if (sparsity === undefined && !perLayer && pruner.fixedSparsity === undefined) throw typeError('--sparsity', 'a number in [0, 1) (only an N:M --pattern implies one)', undefined);
  if (opts.epochs === 0 && scheduleType !== 'oneshot') throw rangeError('--epochs', `at least 1 with --schedule ${scheduleType}`, 0);
  // --round-to: each conv is pruned to a kept filter count that is a multiple of it, so no zeroed
  // filter has to stay behind in the shrunk model (method 'global' sets one threshold: there the
  // shrink keeps zeroed channels up to the multiple instead).
  const targets = shrink && roundTo > 1 && method !== 'global' ? roundedTargets(pruner.layers, perLayer, sparsity, roundTo) : perLayer;

  const seed = splitSeed(opts.dataset, opts.seed, source.file.metadata, modelPath);
  const { train: trainSet, test } = await loadDatasets({ dataset: opts.dataset, dataDir: opts.dataDir, seed });
  const batchSize = 64;
  const perEpoch = Math.ceil(trainSet.length / batchSize);
  const target = perLayer ? JSON.stringify(perLayer) : sparsity ?? pruner.fixedSparsity;
  out.line(`pruning ${modelPath}: ${method} ${pruner.pattern.name} to ${target}, ${scheduleType}, ${opts.epochs} epochs on ${trainSet.name} (${trainSet.length} images)`);
  const format = 'pruning epoch {epoch}/{epochs} |{bar}| {value}/{total} batches, sparsity {sparsity}';
  // One bar per epoch (as kiln train), so the epoch summary lines never cut through a bar.
  let bar = out.progress(perEpoch, format, { epoch: 1, epochs: opts.epochs, sparsity: '0.0%' });
  let barEpoch = 0;
  const zerosNow = (): string => {
    let zeros = 0;
    for (const l of pruner.layers) for (const w of l.weight.value.data) zeros += w === 0 ? 1 : 0;
    return `${((100 * zeros) / pruner.layers.reduce((s, l) => s + l.weight.value.data.length, 0)).toFixed(1)}%`;
  };
  const schedule: ScheduleOptions = { type: scheduleType, ...(opts.rounds !== undefined ? { rounds: opts.rounds } : {}) };
  const started = performance.now();
  let result: Awaited<ReturnType<typeof prune>>;
  try {
    result = await prune(model, trainSet, {
      ...(targets ? { sparsity: targets } : sparsity !== undefined ? { sparsity } : {}),
      method,
      ...(pattern !== undefined ? { pattern } : {}),
      ...(layers && !targets ? { layers } : {}),
      schedule,
      epochs: opts.epochs,
      validation: test,
      train: {
        seed,
        batchSize,
        callbacks: {
          onBatchEnd: ({ epoch, batch }) => {
            if (epoch !== barEpoch) {
              bar = out.progress(perEpoch, format, { epoch: epoch + 1, epochs: opts.epochs, sparsity: '-' });
              barEpoch = epoch;
            }
            if (batch % 8 === 7 || batch + 1 === perEpoch) bar.update(batch + 1, { epoch: epoch + 1, epochs: opts.epochs, sparsity: zerosNow() });
          },
          onEpochEnd: (e) => {
            bar.stop();
            out.line(`epoch ${e.epoch + 1}/${opts.epochs}: loss ${e.trainLoss.toFixed(4)}, train ${percent(e.trainAccuracy)}, sparsity ${zerosNow()}`);
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
  if (shrink) {
    const graph = toGraph(model, source.inputShape);
    const plan = planZeroFilters(graph, { roundTo, layers: convNodesOf(graph, pruner.layers.map((l) => l.name)) });
    const shrunk = shrinkPlanned(graph, plan, undefined, `no pruned filter can be removed (none is zero${roundTo > 1 ? `, or --round-to ${roundTo} keeps every channel` : ''})`);
    await reportShrink(
      out,
      { method: report.method, pattern: report.pattern, schedule: report.schedule, epochs: opts.epochs, finetune: true, targetSparsity: report.targetSparsity, roundTo, seconds },
      plan,
      shrunk,
      {
        model: modelPath,
        out: opts.out,
        metadata: {
          ...provenance,
          source: modelPath,
          pruning: { method: report.method, pattern: report.pattern, schedule: report.schedule, sparsity: report.targetSparsity, epochs: opts.epochs, layers: layerSparsity, shrink: { roundTo, finetune: true } },
        },
      },
      { before: report.accuracyBefore!, pruned: report.accuracyAfter!, test },
      moduleLayersOf(graph),
    );
    return;
  }
  // Pruned weights are stored packed where that is smaller (values + indices, exact); a reader
  // older than the sparse layouts cannot open the file, which a pruned model never had anyway.
  await save(model, opts.out, {
    inputShape: source.inputShape,
    sparse: 'auto',
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

/** `kiln prune --analyze`: per-layer accuracy at each sparsity, a table, and the suggested sparsities. */
async function analyzeCommand(modelPath: string, opts: PruneCommandOptions): Promise<void> {
  const out = new Output(opts);
  if (opts.out !== undefined) await checkOutputFile(opts.out, '--out');
  for (const key of ['sparsity', 'sparsityFrom', 'rounds', 'shrink', 'roundTo'] as const) {
    if (opts[key] !== undefined) throw typeError(flagOf(key), 'nothing with --analyze', opts[key]);
  }
  if (opts.finetune === false) throw typeError('--no-finetune', 'nothing with --analyze (it never fine-tunes)', '--no-finetune');
  const method = oneOf('--method', opts.method, METHODS);
  if (method === 'global') throw typeError('--method', "a per-layer method with --analyze (one layer is pruned at a time)", method);
  const source = await readModelSource(modelPath);
  if (source.kind !== 'kiln') throw typeError('<model>', 'a .kiln file holding a trained Module', modelPath);
  const layers = opts.layers?.split(',').map((l) => l.trim());
  // Checks layer names, pattern and method before loading data.
  const count = new Pruner(source.module, { method, ...(opts.pattern !== undefined ? { pattern: opts.pattern } : {}), layers: layers ?? (() => true) }, flagOf).layers.length;
  const seed = splitSeed(opts.dataset, opts.seed, source.file.metadata, modelPath);
  const { test } = await loadDatasets({ dataset: opts.dataset, dataDir: opts.dataDir, seed });
  const bar = out.progress(Math.max(1, count), 'analysing layer {value}/{total} |{bar}|', {});
  let report: Awaited<ReturnType<typeof analyzeSensitivity>>;
  try {
    report = await analyzeSensitivity(source.module, test, {
      method,
      ...(opts.pattern !== undefined ? { pattern: opts.pattern } : {}),
      ...(layers ? { layers } : {}),
      ...(opts.maxDrop !== undefined ? { maxDrop: opts.maxDrop } : {}),
      onLayer: (_, done) => bar.update(done),
    });
  } finally {
    bar.stop();
  }
  const header = ['layer', ...report.sparsities.map((s) => s.toFixed(2)), 'suggested'];
  const rows = report.layers.map((l) => [l.name, ...l.points.map((p) => (p.accuracy * 100).toFixed(2)), l.suggested.toFixed(2)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const table = [header, ...rows].map((r) => r.map((c, i) => c.padStart(widths[i])).join('  '));
  out.line([`held-out accuracy (%) with one layer pruned (${report.method}, ${report.pattern}, no fine-tune); dense ${percent(report.baseline)}, accepted drop ${(report.maxDrop * 100).toFixed(2)} points:`, ...table].join('\n'));
  const result = { model: modelPath, evalImages: test.length, ...report };
  if (opts.out !== undefined) await writeFile(opts.out, `${JSON.stringify(result)}\n`);
  out.result(result, () => `suggested sparsity per layer: ${JSON.stringify(report.suggestion)}${opts.out !== undefined ? `; wrote ${opts.out} (kiln prune --sparsity-from ${opts.out})` : ''}`);
}
