/**
 * `distill(teacher, student, data, options)`: trains `student` with the Trainer on Hinton's loss
 * against the teacher's logits. The teacher runs on an InferenceSession; without augmentation its
 * logits for the whole training set are computed once before the first epoch and looked up by
 * image index afterwards (the same image always gets the same teacher answer), with augmentation
 * they are computed for each batch as the student sees it. With `hint`, an intermediate activation
 * of the student is also matched to one of the teacher's through a learned 1x1 adapter (hint.ts).
 */
import type { Batch, Dataset } from '../data/dataset.js';
import { ErrorCode, KilnError, KilnRangeError } from '../errors.js';
import { distillationLoss } from '../nn/distillation-loss.js';
import { checkKeys } from '../nn/layers/checks.js';
import { Module } from '../nn/module.js';
import { checkModelFits, evaluate } from '../train/evaluate.js';
import { defaultMnistRecipe } from '../train/recipes.js';
import { Trainer } from '../train/trainer.js';
import type { TrainHistory, TrainLoss, TrainOptions } from '../train/trainer.js';
import { integer, number, optional, options as checkOptions, rangeError, typeError } from '../validate.js';
import { checkFeatureShapes, HintedStudent, planHint } from './hint.js';
import type { HintOptions } from './hint.js';
import { scheduledValue } from './schedule.js';
import type { Scheduled } from './schedule.js';
import { Teacher } from './teacher.js';
import type { TeacherSource } from './teacher.js';

export interface DistillOptions {
  /** Training epochs (default 4). */
  epochs?: number;
  /** Softmax temperature T > 0, constant or scheduled (default 4). */
  temperature?: Scheduled;
  /** Weight of the soft term in [0, 1], constant or scheduled (default 0.9). */
  alpha?: Scheduled;
  /**
   * Trainer options over the defaults (the MNIST recipe's batch 64, SGD with Nesterov momentum 0.9
   * at lr 0.1, weight decay 5e-4, half an epoch of warm-up into a cosine decay; seed 0; no
   * augmentation, so the teacher's logits are cached).
   * Not `epochs`, `loss`, `labelSmoothing` or `validation` (those are distillation's own options).
   */
  train?: Partial<Omit<TrainOptions, 'epochs' | 'loss' | 'labelSmoothing' | 'validation'>>;
  /** Held-out set: the teacher's and the student's accuracy are measured on it. */
  validation?: Dataset;
  /**
   * Feature (hint) distillation as well: the student layer's output, through a learned 1x1
   * convolution to the teacher's channels, is pulled towards the teacher's value by
   * `weight * mean squared error`, added to the loss (the adapter is discarded after training).
   * Both activations must have the same height and width.
   */
  hint?: HintOptions;
}

export interface DistillResult {
  /** The same student, trained in place. */
  student: Module;
  history: TrainHistory;
  /** Held-out accuracy of the teacher and of the trained student (with `validation`). */
  teacherAccuracy?: number;
  studentAccuracy?: number;
  /** Whether the teacher's training-set logits were computed once and reused every epoch. */
  cachedTeacherLogits: boolean;
  /** Teacher forwards (`session.run` calls) for training, the shape probe included. */
  teacherRuns: number;
  /** With `hint`: whether the teacher's training-set features were computed once (see `HintOptions.maxCacheBytes`). */
  cachedTeacherFeatures?: boolean;
  /**
   * With `hint`: per epoch, the mean over images of the hint's mean squared error (adapter output
   * vs teacher feature, before the weight). `history`'s training loss includes the weighted term.
   */
  hintLoss?: number[];
}

// The MNIST recipe's optimizer and schedule: with lr 0.05 and no warm-up a half-width SeedCNN
// student reached 97.8% on the MNIST held-out split against 98.2-98.5% with these (8 epochs, one
// teacher, three seeds). No augmentation, so the teacher's logits can be cached.
const defaults: Omit<TrainOptions, 'epochs'> = {
  batchSize: defaultMnistRecipe.batchSize,
  optimizer: defaultMnistRecipe.optimizer,
  schedule: defaultMnistRecipe.schedule!,
  seed: 0,
};

/** The student's trainer defaults (see `DistillOptions.train`). */
export const DISTILL_TRAIN_DEFAULTS: Readonly<Omit<TrainOptions, 'epochs'>> = Object.freeze(defaults);

const OPTION_KEYS = ['epochs', 'temperature', 'alpha', 'train', 'validation', 'hint'] as const;
const RESERVED_TRAIN_KEYS = ['epochs', 'loss', 'labelSmoothing', 'validation'] as const;

const checkAlpha = (name: string, v: unknown): number => number(name, v, 0, 1);

function positive(name: string, v: unknown): number {
  const t = number(name, v, 0, Infinity);
  if (t === 0) throw rangeError(name, 'a number > 0', t);
  return t;
}

/**
 * Distils `teacher` into `student` on `data`.
 * @param teacher a Module, Graph, `.kiln`/`.onnx` path or bytes (fp32 or int8), or an open InferenceSession (left open)
 * @param student a Module with the teacher's input shape and number of classes, e.g. `models.seedCNN({ ..., widthMultiplier: 0.5 })`
 * @param data the training images
 * @returns the trained student, its history and (with `validation`) both held-out accuracies
 * @throws before any training: RangeError ERR_KILN_SHAPE_MISMATCH when teacher and student differ in
 *   classes or input shape, or the hint's activations in height and width; RangeError
 *   ERR_KILN_INVALID_ARG for T <= 0, alpha outside [0, 1], a hint weight < 0, an unknown teacher
 *   value or student layer for the hint, or an unknown option; TypeError ERR_KILN_INVALID_ARG for
 *   wrong types; KilnError ERR_KILN_CORRUPT_MODEL for an unreadable teacher file
 * @example
 * const { studentAccuracy } = await distill('teacher.kiln', models.seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, widthMultiplier: 0.5 }), train, { epochs: 8, validation: test });
 * // Plus a feature hint: the student's layer 4 (second ReLU) through a 1x1 adapter to the teacher's 'relu_1_out'.
 * const { hintLoss } = await distill('teacher.kiln', student, train, { hint: { teacher: 'relu_1_out', student: 4, weight: 1 } });
 */
export async function distill(teacher: TeacherSource, student: Module, data: Dataset, options: DistillOptions = {}): Promise<DistillResult> {
  if (!(student instanceof Module)) throw typeError('student', 'a Module', student);
  const opts = checkOptions<DistillOptions>('options', options);
  checkKeys('options', opts, OPTION_KEYS);
  const epochs = optional(opts.epochs, 4, (v) => integer('options.epochs', v, 1, 1e6));
  const overrides = checkOptions<Partial<TrainOptions>>('options.train', opts.train);
  for (const key of RESERVED_TRAIN_KEYS) {
    if (key in overrides) throw typeError(`options.train.${key}`, `nothing (${key === 'loss' || key === 'labelSmoothing' ? 'distillation sets the loss' : `use options.${key}`})`, overrides[key]);
  }
  const trainOptions: TrainOptions = { ...DISTILL_TRAIN_DEFAULTS, ...overrides, epochs };
  const batchSize = integer('options.train.batchSize', trainOptions.batchSize, 1, 2 ** 20);
  const { numClasses } = checkModelFits(student, data, 'data');
  if (opts.validation !== undefined) checkModelFits(student, opts.validation, 'options.validation');
  if (data.length === 0) throw rangeError('data', 'at least one image', 'an empty data set');
  const perEpoch = trainOptions.dropLast ? Math.floor(data.length / batchSize) : Math.ceil(data.length / batchSize);
  const temperatureAt = scheduledValue('options.temperature', opts.temperature ?? 4, positive, Math.max(1, perEpoch));
  const alphaAt = scheduledValue('options.alpha', opts.alpha ?? 0.9, checkAlpha, Math.max(1, perEpoch));
  const hint = opts.hint === undefined ? undefined : planHint(opts.hint, student, data.imageShape, Math.max(1, perEpoch));
  // Checks every trainer option before the teacher does any work (the model is swapped for the
  // hinted wrapper below, once the teacher's channel count is known).
  new Trainer(student, { ...trainOptions, ...(opts.validation ? { validation: opts.validation } : {}) });

  const t = await Teacher.open(teacher, data, hint?.teacherValue);
  let hinted: HintedStudent | undefined;
  try {
    if (t.numClasses !== numClasses) {
      throw new KilnRangeError(`The teacher has ${t.numClasses} classes and the student ${numClasses}: distillation needs the same classes`, ErrorCode.SHAPE_MISMATCH);
    }
    if (hint) checkFeatureShapes(hint, t.featureShape);
    const teacherAccuracy = opts.validation ? accuracyOf(await t.logitsOf(opts.validation), opts.validation) : undefined;
    const runsBefore = t.runs;
    let cachedLogits: Float32Array | undefined;
    let cachedFeatures: Float32Array | undefined;
    if (trainOptions.augment === undefined) {
      const featuresFit = hint !== undefined && data.length * t.featureSize * 4 <= hint.maxCacheBytes;
      // Features that do not fit are read per batch, and that run gives the logits too.
      if (!hint || featuresFit) ({ logits: cachedLogits, feature: cachedFeatures } = await t.outputsOf(data, featuresFit));
    }
    if (hint) hinted = new HintedStudent(student, hint, t.featureShape[0], trainOptions.seed ?? 0);
    const hintSums: { mse: number; images: number }[] = [];

    const loss: TrainLoss = {
      async compute(logits, batch, step) {
        const fresh = cachedLogits ? undefined : await t.run(batch.input);
        const soft = cachedLogits ? gather(cachedLogits, batch, numClasses) : fresh!.logits;
        const options = { temperature: temperatureAt(step.iteration, step.totalSteps), alpha: alphaAt(step.iteration, step.totalSteps) };
        const { loss: value, grad } = distillationLoss(logits, soft, batch.labels, options);
        if (!hinted) return { loss: value, grad: grad! };
        const target = cachedFeatures ? gather(cachedFeatures, batch, t.featureSize) : fresh!.feature!;
        const { loss: hintValue, mse } = await hinted.hintStep(target, hint!.weightAt(step.iteration, step.totalSteps));
        const n = batch.labels.length;
        const sums = (hintSums[step.epoch] ??= { mse: 0, images: 0 });
        sums.mse += mse * n;
        sums.images += n;
        return { loss: value + hintValue, grad: grad! };
      },
    };
    const trainer = new Trainer(hinted ?? student, { ...trainOptions, loss, ...(opts.validation ? { validation: opts.validation } : {}) });
    const history = await trainer.fit(data);
    hinted?.detach();
    const studentAccuracy = opts.validation ? (await evaluate(student, opts.validation)).accuracy : undefined;
    // Validation forwards are not part of the training objective's cost.
    const teacherRuns = 1 + t.runs - runsBefore;
    return {
      student,
      history,
      ...(teacherAccuracy !== undefined ? { teacherAccuracy, studentAccuracy } : {}),
      cachedTeacherLogits: cachedLogits !== undefined,
      teacherRuns,
      ...(hint ? { cachedTeacherFeatures: cachedFeatures !== undefined, hintLoss: hintSums.map((s) => s.mse / s.images) } : {}),
    };
  } finally {
    hinted?.detach();
    t.close();
  }
}

/** The cached rows (`size` floats per image) of the batch's images, in batch order. */
function gather(cache: Float32Array, batch: Batch, size: number): Float32Array {
  const idx = batch.indices;
  if (!idx) throw new KilnError(ErrorCode.INVALID_STATE, 'The batch has no image indices to look up cached teacher outputs');
  const out = new Float32Array(idx.length * size);
  for (let i = 0; i < idx.length; i++) out.set(cache.subarray(idx[i] * size, (idx[i] + 1) * size), i * size);
  return out;
}

function accuracyOf(logits: Float32Array, data: Dataset): number {
  const c = data.numClasses;
  let correct = 0;
  for (let i = 0; i < data.length; i++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (logits[i * c + j] > logits[i * c + best]) best = j;
    if (best === data.labels[i]) correct++;
  }
  return data.length ? correct / data.length : 0;
}
