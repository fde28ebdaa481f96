/**
 * `distill(teacher, student, data, options)`: trains `student` with the Trainer on Hinton's loss
 * against the teacher's logits. The teacher runs on an InferenceSession; without augmentation its
 * logits for the whole training set are computed once before the first epoch and looked up by
 * image index afterwards (the same image always gets the same teacher answer), with augmentation
 * they are computed for each batch as the student sees it.
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

const OPTION_KEYS = ['epochs', 'temperature', 'alpha', 'train', 'validation'] as const;
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
 *   classes or input shape; RangeError ERR_KILN_INVALID_ARG for T <= 0, alpha outside [0, 1] or an
 *   unknown option; TypeError ERR_KILN_INVALID_ARG for wrong types; KilnError ERR_KILN_CORRUPT_MODEL
 *   for an unreadable teacher file
 * @example
 * const { studentAccuracy } = await distill('teacher.kiln', models.seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, widthMultiplier: 0.5 }), train, { epochs: 8, validation: test });
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

  // The loss reads the teacher and its cache, set below; building the Trainer first checks every
  // trainer option before the teacher does any work.
  let t: Teacher | undefined;
  let cached: Float32Array | undefined;
  const loss: TrainLoss = {
    async compute(logits, batch, step) {
      const soft = cached ? gather(cached, batch, numClasses) : await t!.logits(batch.input);
      const options = { temperature: temperatureAt(step.iteration, step.totalSteps), alpha: alphaAt(step.iteration, step.totalSteps) };
      const { loss: value, grad } = distillationLoss(logits, soft, batch.labels, options);
      return { loss: value, grad: grad! };
    },
  };
  const trainer = new Trainer(student, { ...trainOptions, loss, ...(opts.validation ? { validation: opts.validation } : {}) });

  t = await Teacher.open(teacher, data);
  try {
    if (t.numClasses !== numClasses) {
      throw new KilnRangeError(`The teacher has ${t.numClasses} classes and the student ${numClasses}: distillation needs the same classes`, ErrorCode.SHAPE_MISMATCH);
    }
    const teacherAccuracy = opts.validation ? accuracyOf(await t.logitsOf(opts.validation), opts.validation) : undefined;
    const runsBefore = t.runs;
    if (trainOptions.augment === undefined) cached = await t.logitsOf(data);
    const history = await trainer.fit(data);
    const studentAccuracy = opts.validation ? (await evaluate(student, opts.validation)).accuracy : undefined;
    // Validation forwards are not part of the training objective's cost.
    const teacherRuns = 1 + t.runs - runsBefore;
    return {
      student,
      history,
      ...(teacherAccuracy !== undefined ? { teacherAccuracy, studentAccuracy } : {}),
      cachedTeacherLogits: cached !== undefined,
      teacherRuns,
    };
  } finally {
    t.close();
  }
}

/** The cached rows of the batch's images, in batch order. */
function gather(cache: Float32Array, batch: Batch, classes: number): Float32Array {
  const idx = batch.indices;
  if (!idx) throw new KilnError(ErrorCode.INVALID_STATE, 'The batch has no image indices to look up cached teacher logits');
  const out = new Float32Array(idx.length * classes);
  for (let i = 0; i < idx.length; i++) out.set(cache.subarray(idx[i] * classes, (idx[i] + 1) * classes), i * classes);
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
