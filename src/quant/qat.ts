/**
 * Quantization-aware training: `prepareQat` (fake-quantized copy of a trained model), a short
 * fine-tune with `train()`, and conversion to the same int8 graph PTQ builds (through
 * `prepareForQuantization` and `convertToInt8` of ptq.ts, with the QAT observers' ranges in place of
 * calibrated ones).
 */
import type { Dataset } from '../data/dataset.js';
import { toGraph } from '../graph/from-module.js';
import type { Graph } from '../graph/ir.js';
import { checkKeys } from '../nn/layers/checks.js';
import { Module } from '../nn/module.js';
import { reapplyZeroMasks, zeroMasks } from '../prune/keep-zeros.js';
import type { TrainHistory, TrainOptions } from '../train/trainer.js';
import { train } from '../train/trainer.js';
import { fineTuneRecipe } from '../train/recipes.js';
import { boolean, integer, number, optional, options as checkOptions, typeError } from '../validate.js';
import { InferenceSession } from '../runtime/session.js';
import { calibrationImages, type CalibrationImages } from './calibration-data.js';
import { measureLayers } from './ptq-measure.js';
import { reportJson } from './ptq-report.js';
import { convertToInt8, prepareForQuantization, type ConvertOptions, type QuantizationReport } from './ptq.js';
import { QatModel } from './qat-model.js';
import { prepareQat } from './qat-prepare.js';
import { qatRanges } from './qat-ranges.js';
import type { QuantKind } from './qparams.js';

export { prepareQat, type PrepareQatOptions } from './qat-prepare.js';
export { QatModel, type QatScheme } from './qat-model.js';
export { qatRanges } from './qat-ranges.js';

export interface QuantizeAwareTrainOptions {
  /** Fine-tuning epochs (default 2). */
  epochs?: number;
  /** Epochs during which the activation observers follow the data, then freeze (default epochs / 2; fractions allowed). */
  observerEpochs?: number;
  /** Weight of each batch in the moving-average activation ranges, in (0, 1] (default 0.01). */
  observerMomentum?: number;
  /**
   * Options of the fine-tune, over the defaults: the MNIST recipe's regularisation (random shifts
   * of up to 2 pixels, label smoothing 0.05, weight decay 5e-4), batch 64, SGD with Nesterov
   * momentum 0.9 at lr 0.01 (a tenth of the recipe's) with cosine decay, seed 0. Measured on MNIST
   * (SeedCNN trained 3 epochs, seeds 1-5): int8-simulated held-out accuracy -0.00 to +0.15 points
   * against fp32; without the shifts and smoothing (seeds 1-3) -0.15 to +0.10.
   * `epochs` is the option above; `callbacks` are chained after the observer freeze.
   */
  train?: Partial<Omit<TrainOptions, 'epochs'>>;
  /** Weight scales per output channel (default true) or one per tensor. */
  perChannel?: boolean;
  /** Activations 'uint8' asymmetric (default) or 'int8' symmetric. */
  activations?: QuantKind;
  /** Refuse (ERR_KILN_UNSUPPORTED_OP) a graph where some node would stay fp32. */
  strict?: boolean;
  /**
   * Training images the report's clipping fractions and SQNR are measured on (int8 graph on the
   * reference interpreter against the fine-tuned float graph, as PTQ's report; default 64, 0 = none).
   */
  reportImages?: number;
}

/** Options of `convertQat` (the scheme itself comes from the QatModel). */
export interface ConvertQatOptions {
  /** Refuse (ERR_KILN_UNSUPPORTED_OP) a graph where some node would stay fp32. */
  strict?: boolean;
}

/** What `quantizeAwareTrain` returns. */
export interface QatResult {
  /** The int8 graph (the same form PTQ produces). */
  graph: Graph;
  report: QuantizationReport;
  /** The fine-tuned fake-quantized model (its `forward` simulates `graph`). */
  model: QatModel;
  history: TrainHistory;
}

/** Fine-tuning defaults: the shared fine-tuning recipe (src/train/recipes.ts). */
export const QAT_TRAIN_DEFAULTS: Readonly<Omit<TrainOptions, 'epochs'>> = fineTuneRecipe;

const OPTION_KEYS = ['epochs', 'observerEpochs', 'observerMomentum', 'train', 'perChannel', 'activations', 'strict', 'reportImages'] as const;

/**
 * prepareQat + fine-tune + convert. The fp32 `module` is not modified. Weights that are exactly zero
 * when the fine-tune starts (a pruned model's) stay zero through it, so the int8 graph keeps the
 * pattern and runs on the sparse kernels.
 * @param module a trained fp32 model (Sequential of Conv2d/BatchNorm2d/Linear/ReLU/MaxPool2d/Flatten/Dropout)
 *   with `inputShape`, or a QatModel from `prepareQat` (fine-tuned further in place; its scheme and observer
 *   momentum are then the ones prepareQat was given)
 * @param trainData the fine-tuning images
 * @example
 * const { graph, report } = await quantizeAwareTrain(model, mnistTrain, { epochs: 2 });
 */
export async function quantizeAwareTrain(module: Module, trainData: Dataset, options?: QuantizeAwareTrainOptions): Promise<QatResult> {
  if (!(module instanceof Module)) throw typeError('module', 'a Module', module);
  const opts = checkOptions<QuantizeAwareTrainOptions>('options', options);
  checkKeys('options', opts, OPTION_KEYS);
  const epochs = optional(opts.epochs, 2, (v) => integer('options.epochs', v, 1, 1e6));
  const observerEpochs = optional(opts.observerEpochs, epochs / 2, (v) => number('options.observerEpochs', v, 0, epochs));
  const trainOverrides = checkOptions<Partial<TrainOptions>>('options.train', opts.train);
  if ('epochs' in trainOverrides) throw typeError('options.train.epochs', 'nothing (use options.epochs)', trainOverrides.epochs);
  if (module.inputShape === undefined) {
    throw typeError('module.inputShape', 'the [C, H, W] shape the model was built for (models.* and load() set it)', undefined);
  }
  const strict = optional(opts.strict, false, (v) => boolean('options.strict', v));
  const reportImages = optional(opts.reportImages, 64, (v) => integer('options.reportImages', v, 0, 1 << 20));
  const { observerMomentum, perChannel, activations } = opts;
  if (module instanceof QatModel) {
    // A prepared model already fixed these; silently ignoring a different choice would mislead.
    for (const key of ['observerMomentum', 'perChannel', 'activations'] as const) {
      if (opts[key] !== undefined) throw typeError(`options.${key}`, 'nothing for a QatModel (prepareQat fixed it)', opts[key]);
    }
  }
  const model = module instanceof QatModel ? module : prepareQat(module, { observerMomentum, perChannel, activations });

  const trainOptions: TrainOptions = { ...QAT_TRAIN_DEFAULTS, ...trainOverrides, epochs };
  const batchSize = trainOptions.batchSize;
  const images = trainData?.length ?? 0;
  const stepsPerEpoch = trainOptions.dropLast ? Math.floor(images / batchSize) : Math.ceil(images / batchSize);
  const freezeAt = Math.round(observerEpochs * stepsPerEpoch);
  let step = 0;
  if (freezeAt === 0) model.freezeObservers();
  const user = trainOverrides.callbacks;
  // The master weights holding exact zeros when QAT starts (a pruned model's).
  const zeros = zeroMasks(model.weighted.map((w) => w.layer.weight));
  trainOptions.callbacks = {
    ...user,
    onStepEnd: async (info) => {
      // A pruned model stays pruned: its zeros stay exact through the fine-tune (and their
      // optimizer state with them, or momentum would revive them), so the int8 graph keeps them.
      reapplyZeroMasks(zeros, info);
      await user?.onStepEnd?.(info);
    },
    onBatchEnd: (info) => {
      if (++step === freezeAt) model.freezeObservers();
      user?.onBatchEnd?.(info);
    },
  };
  // With frozen observers from the start, the first batch still initialises each range.
  const history = await train(model, trainData, trainOptions);
  model.eval();
  const { graph, report } = convertQat(model, { strict });
  if (reportImages > 0) await measureReport(model, graph, report, calibrationImages(trainData), reportImages);
  return { graph, report, model, history };
}

/**
 * Converts a (fine-tuned) QatModel to the int8 graph: its float weights lowered, BN-folded and fused
 * by `prepareForQuantization`, each activation quantized with the range of its observer, weights and
 * activations in the scheme the model simulated.
 * @throws KilnError ERR_KILN_INVALID_STATE when an observer has seen no data (run a forward first)
 */
export function convertQat(model: QatModel, options?: ConvertQatOptions): { graph: Graph; report: QuantizationReport } {
  if (!(model instanceof QatModel)) throw typeError('model', 'a QatModel (from prepareQat)', model);
  const opts = checkOptions<ConvertQatOptions>('options', options);
  checkKeys('options', opts, ['strict']);
  const strict = optional(opts.strict, false, (v) => boolean('options.strict', v));
  if (model.inputShape === undefined) throw typeError('model.inputShape', 'the [C, H, W] input shape', undefined);
  const graph = prepareForQuantization(toGraph(model, model.inputShape));
  const convert: ConvertOptions = { ...model.scheme, strict };
  return convertToInt8(graph, qatRanges(model, graph), convert, { calibration: { method: 'qat' } });
}

/**
 * Fills the report's clipping fractions and SQNR like PTQ's (ptq-measure.ts): the fine-tuned float
 * graph's layer outputs on `count` images against the int8 graph's (reference interpreter).
 */
async function measureReport(model: QatModel, graph: Graph, report: QuantizationReport, images: CalibrationImages, count: number): Promise<void> {
  const prepared = prepareForQuantization(toGraph(model, model.inputShape!));
  const inputName = prepared.inputs[0].name;
  const outputs = new Set(prepared.outputs.map((o) => o.name));
  const extra = [...new Set(report.layers.map((l) => l.output))].filter((v) => !outputs.has(v));
  const observed: Graph = { ...prepared, outputs: [...prepared.outputs, ...extra.map((name) => ({ name, dtype: 'float32' as const, shape: [] }))] };
  const session = await InferenceSession.create(observed, { graphOptimizationLevel: 'disabled', inputShape: images.imageShape });
  const batchSize = 64;
  const total = Math.min(count, images.count);
  try {
    await measureLayers(graph, report, {
      inputName,
      batches: Math.ceil(total / batchSize),
      reportImages: total,
      images,
      runBatch: async (b) => {
        const feed = images.slice(b * batchSize, Math.min(batchSize, total - b * batchSize));
        return { ...(await session.run({ [inputName]: feed })), [inputName]: feed };
      },
    });
  } finally {
    session.release();
  }
  report.measuredWith =
    `clippingFraction: the fine-tuned float graph's outputs on the first ${total} training images against the QAT ranges; ` +
    `sqnrDb: the int8 graph on the reference interpreter (src/quant/reference.ts) against that float graph on the same images, errors of earlier layers included`;
  graph.metadata = { ...graph.metadata, kiln_quantization: reportJson(report) };
}
