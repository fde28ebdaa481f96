/**
 * `kiln quantize`: int8 quantization of a .kiln or .onnx model. Static PTQ calibrated on the train
 * split of --calibrate (progress bar), or --dynamic; prints the per-layer report and fp32 vs int8
 * held-out accuracy, and writes the int8 graph as a .kiln file.
 */
import { stat } from 'node:fs/promises';

import { ErrorCode, KilnError } from '../errors.js';
import { imageBatches } from '../data/batches.js';
import type { Dataset } from '../data/dataset.js';
import type { Graph } from '../graph/ir.js';
import type { Module } from '../nn/module.js';
import { quantizeDynamic } from '../quant/dynamic.js';
import { CALIBRATION_METHODS } from '../quant/observers/index.js';
import { quantize, type QuantizationReport } from '../quant/ptq.js';
import { quantizeAwareTrain } from '../quant/qat.js';
import { runInt8Reference } from '../quant/reference.js';
import { graphFromAnyKilnFile, save } from '../runtime/model-io.js';
import { InferenceSession } from '../runtime/session.js';
import { countCorrect } from '../train/metrics.js';
import { oneOf, rangeError, typeError } from '../validate.js';
import { checkOutputFile } from '../util/files.js';
import { loadDatasets, splitSeed } from './datasets.js';
import { readModelSource } from './model-source.js';
import { Output, percent } from './output.js';

export interface QuantizeCommandOptions {
  calibrate?: string;
  dataDir?: string;
  /** Seed of the split; default: the one recorded in the model file (else 1). */
  seed?: number;
  method: string;
  percentile?: number;
  batches: number;
  batchSize: number;
  perTensor?: boolean;
  activations: string;
  strict?: boolean;
  dynamic?: boolean;
  /** Quantization-aware training for `epochs` (default 2) on the --calibrate train split instead of PTQ. */
  qat?: boolean;
  epochs?: number;
  evalImages?: number;
  out: string;
  json?: boolean;
}

/** The model argument: its float graph, the Module when the file holds one (for QAT), and its metadata. */
interface SourceModel {
  graph: Graph;
  module?: Module;
  metadata?: Record<string, unknown>;
}

async function readSource(path: string): Promise<SourceModel> {
  const source = await readModelSource(path);
  if (source.kind === 'onnx') return { graph: source.graph };
  if (source.kind === 'graph') return { graph: source.graph, metadata: source.file.metadata };
  return { graph: graphFromAnyKilnFile(source.file, path), module: source.module, metadata: source.file.metadata };
}

/** Images reference-evaluated when the runtime cannot run the int8 graph yet. */
const REFERENCE_EVAL_IMAGES = 500;

interface Accuracy {
  accuracy: number;
  images: number;
  /** 'runtime' (InferenceSession) or 'reference' (the int8 reference interpreter). */
  engine: 'runtime' | 'reference';
}

async function accuracyOf(graph: Graph, test: Dataset, limit: number | undefined, allowReference: boolean): Promise<Accuracy> {
  const inputName = graph.inputs[0].name;
  const outputName = graph.outputs[0].name;
  let session: InferenceSession | undefined;
  try {
    session = await InferenceSession.create(graph);
  } catch (err) {
    if (!allowReference || !(err instanceof KilnError) || err.code !== ErrorCode.UNSUPPORTED_OP) throw err;
  }
  const images = Math.min(test.length, limit ?? (session ? test.length : REFERENCE_EVAL_IMAGES));
  const batch = session ? 256 : 16;
  let correct = 0;
  try {
    for (const { n, images: input, labels } of imageBatches(test, batch, images)) {
      const logits = session ? (await session.run({ [inputName]: input }))[outputName] : runInt8Reference(graph, { [inputName]: input })[outputName];
      correct += countCorrect(logits.data as Float32Array, labels, n, logits.dims[1]);
      if (!session) await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    session?.release();
  }
  return { accuracy: correct / images, images, engine: session ? 'runtime' : 'reference' };
}

function fmt(x: number | undefined, digits = 4): string {
  if (x === undefined) return '-';
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 0.01 || x === 0 ? x.toFixed(digits) : x.toExponential(2);
}

/** The per-layer report as a plain-text table. */
export function reportTable(report: QuantizationReport): string {
  const rows = [['layer', 'op', 'in scale', 'in zp', 'out scale', 'out zp', 'w scale min..max', 'clip %', 'SQNR dB']];
  for (const l of report.layers) {
    rows.push([
      l.node,
      `${l.op}->${l.int8Op}${l.activation ? `+${l.activation}` : ''}`,
      fmt(l.inputScale, 5),
      l.inputZeroPoint === undefined ? '-' : String(l.inputZeroPoint),
      l.outputScale === undefined ? l.outputDtype : fmt(l.outputScale, 5),
      l.outputZeroPoint === undefined ? '-' : String(l.outputZeroPoint),
      `${fmt(l.weightScaleMin)}..${fmt(l.weightScaleMax)}`,
      l.clippingFraction === undefined ? '-' : (l.clippingFraction * 100).toFixed(3),
      l.sqnrDb === undefined ? '-' : Number.isFinite(l.sqnrDb) ? l.sqnrDb.toFixed(1) : String(l.sqnrDb),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd());
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  for (const n of report.fp32Nodes) lines.push(`fp32: ${n.op} '${n.node}' (${n.reason})`);
  return lines.join('\n');
}

export async function quantizeCommand(modelPath: string, opts: QuantizeCommandOptions): Promise<void> {
  const out = new Output(opts);
  if (opts.epochs !== undefined && !opts.qat) throw typeError('--epochs', 'nothing without --qat', opts.epochs);
  if (opts.qat && opts.dynamic) throw typeError('--qat', 'nothing with --dynamic (QAT is static quantization)', true);
  if (!opts.dynamic && !opts.calibrate) throw typeError('--calibrate', 'a data set (mnist | cifar10 | synthetic), or --dynamic', undefined);
  // Checked here too so that errors name the flag rather than the API option.
  oneOf('--method', opts.method, CALIBRATION_METHODS);
  oneOf('--activations', opts.activations, ['uint8', 'int8']);
  if (opts.percentile !== undefined && opts.method !== 'percentile') throw rangeError('--percentile', 'nothing unless --method percentile', opts.percentile);
  // Before any work: a bad --out would otherwise fail only after calibration or training.
  await checkOutputFile(opts.out, '--out');
  const source = await readSource(modelPath);
  const seed = opts.calibrate ? splitSeed(opts.calibrate, opts.seed, source.metadata, modelPath) : (opts.seed ?? 1);
  const data = opts.calibrate ? await loadDatasets({ dataset: opts.calibrate, dataDir: opts.dataDir, seed }) : undefined;

  let graph: Graph;
  let report: QuantizationReport;
  if (opts.dynamic) {
    ({ graph, report } = quantizeDynamic(source.graph, { perChannel: !opts.perTensor, allowFp32: !opts.strict }));
  } else if (opts.qat) {
    if (!source.module) throw typeError('model', 'a .kiln file holding a trained Module (--qat fine-tunes its layers)', modelPath);
    const epochs = opts.epochs ?? 2;
    // The bar moves per batch (an epoch of MNIST is ~125 batches of 64).
    const batchSize = 64;
    const perEpoch = Math.ceil(data!.train.length / batchSize);
    const bar = out.progress(epochs * perEpoch, 'QAT fine-tuning epoch {epoch}/{epochs} |{bar}| {value}/{total} batches', { epoch: 1, epochs });
    try {
      ({ graph, report } = await quantizeAwareTrain(source.module, data!.train, {
        epochs,
        perChannel: !opts.perTensor,
        activations: opts.activations as 'uint8',
        strict: Boolean(opts.strict),
        train: {
          seed,
          batchSize,
          callbacks: { onBatchEnd: ({ epoch, batch }) => bar.update(epoch * perEpoch + batch + 1, { epoch: epoch + 1, epochs }) },
        },
      }));
    } finally {
      bar.stop();
    }
  } else {
    const bar = out.progress(opts.batches, 'calibrating |{bar}| {value}/{total} batches', {});
    let phase = 'calibrate';
    try {
      ({ graph, report } = await quantize(source.graph, data!.train, {
        method: opts.method as 'minmax',
        ...(opts.percentile !== undefined ? { percentile: opts.percentile } : {}),
        batches: opts.batches,
        batchSize: opts.batchSize,
        perChannel: !opts.perTensor,
        activations: opts.activations as 'uint8',
        strict: Boolean(opts.strict),
        onProgress: (p) => {
          if (p.phase !== phase) {
            phase = p.phase;
            bar.update(p.total);
          }
          if (p.phase === 'calibrate') bar.update(p.done);
        },
      }));
    } finally {
      bar.stop();
    }
  }
  // The training split travels with the model, so eval/quantize of the int8 file check --seed too.
  const provenance = source.metadata && source.metadata.seed !== undefined && source.metadata.dataset !== undefined
    ? { dataset: source.metadata.dataset, seed: source.metadata.seed } : {};
  // 'auto': a pruned model's int8 weights are stored packed (values + indices) where that is smaller.
  await save(graph, opts.out, { sparse: 'auto', metadata: { source: modelPath, quantization: report.mode, ...provenance } });
  const fileBytes = (await stat(opts.out)).size;
  out.line(reportTable(report));

  let accuracy: { fp32: Accuracy; int8: Accuracy } | undefined;
  if (data) {
    const int8 = await accuracyOf(graph, data.test, opts.evalImages, true);
    // fp32 on the same images, so the two figures compare.
    const fp32 = await accuracyOf(source.graph, data.test, int8.images, false);
    accuracy = { fp32, int8 };
  }
  out.result(
    {
      model: modelPath,
      out: opts.out,
      fileBytes,
      mode: report.mode,
      method: report.calibration.method,
      ...(report.calibration.percentile !== undefined ? { percentile: report.calibration.percentile } : {}),
      calibrationBatches: report.calibration.batches,
      calibrationImages: report.calibration.images,
      perChannel: report.weights.perChannel,
      activations: report.activations,
      layers: report.layers,
      fp32Nodes: report.fp32Nodes,
      ...(accuracy
        ? {
            fp32Accuracy: accuracy.fp32.accuracy,
            int8Accuracy: accuracy.int8.accuracy,
            evalImages: accuracy.int8.images,
            int8EvaluatedWith: accuracy.int8.engine,
          }
        : {}),
    },
    () =>
      accuracy
        ? `held-out accuracy on ${accuracy.int8.images} images: fp32 ${percent(accuracy.fp32.accuracy)}, int8 ${percent(accuracy.int8.accuracy)} ` +
          `(int8 run on the ${accuracy.int8.engine === 'runtime' ? 'native runtime' : 'reference interpreter: the runtime cannot run this int8 graph yet'}); wrote ${opts.out} (${fileBytes} bytes)`
        : `wrote ${opts.out} (${fileBytes} bytes)`,
  );
}
