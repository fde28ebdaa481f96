/**
 * The training loop: mini-batches from a seeded DataLoader, forward, cross-entropy, backward,
 * optimizer step with a per-iteration learning rate, metrics and callbacks per batch and epoch.
 */
import { DataLoader } from '../data/loader.js';
import type { Batch, Dataset } from '../data/dataset.js';
import { ErrorCode, KilnError } from '../errors.js';
import { checkKeys } from '../nn/layers/checks.js';
import { CrossEntropyLoss } from '../nn/losses.js';
import { Module } from '../nn/module.js';
import type { Tensor } from '../tensor.js';
import type { Parameter } from '../nn/module.js';
import { boolean, integer, number, oneOf, optional, options as checkOptions, typeError } from '../validate.js';
import { checkModelFits, evaluate } from './evaluate.js';
import { countCorrect } from './metrics.js';
import { createOptimizer } from './optimizers/create.js';
import type { OptimizerOptions } from './optimizers/create.js';
import type { Optimizer } from './optimizers/optimizer.js';
import { scheduleFromOptions } from './schedules.js';
import type { LrSchedule, ScheduleOptions } from './schedules.js';

export interface BatchEndInfo {
  /** 0-based epoch. */
  epoch: number;
  /** 0-based batch within the epoch. */
  batch: number;
  /** Mean loss of the batch. */
  loss: number;
  /** Share of the batch classified correctly (before this step's update). */
  accuracy: number;
  /** Learning rate used for this step. */
  lr: number;
}

export interface EpochStats {
  /** 0-based epoch. */
  epoch: number;
  /** Mean training loss over the epoch's images. */
  trainLoss: number;
  /** Training accuracy over the epoch (measured on the fly, with augmentation and dropout). */
  trainAccuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  /** Seconds of training in this epoch (validation excluded). */
  seconds: number;
  /** Training images per second in this epoch. */
  imagesPerSecond: number;
  /** Learning rate of the epoch's last step. */
  lr: number;
}

/** What `onStepEnd` receives: the step just taken and the objects it updated. */
export interface StepEndInfo {
  /** 0-based epoch. */
  epoch: number;
  /** 0-based batch within the epoch. */
  batch: number;
  /** Optimizer steps taken so far in this fit (1 after the first). */
  step: number;
  /** Steps the whole fit will take (epochs x batches per epoch). */
  totalSteps: number;
  /** Batches per epoch. */
  stepsPerEpoch: number;
  optimizer: Optimizer;
  /** The model's parameters, as given to the optimizer. */
  params: readonly Parameter[];
}

export interface TrainCallbacks {
  /**
   * Right after each optimizer step, before `onBatchEnd`; training waits for a returned promise.
   * The hook may change the weights and the optimizer's state (pruning re-applies its masks here).
   */
  onStepEnd?(info: StepEndInfo): void | Promise<void>;
  onBatchEnd?(info: BatchEndInfo): void;
  /** Return 'stop' to end training after this epoch. */
  onEpochEnd?(stats: EpochStats): void | 'stop' | Promise<void | 'stop'>;
}

/** Where a batch sits in the fit, for a `TrainLoss` whose settings follow a schedule. */
export interface LossStep {
  epoch: number;
  /** 0-based optimizer step of the whole fit. */
  iteration: number;
  totalSteps: number;
}

/**
 * A replacement for the trainer's cross-entropy, for objectives that need more than the labels
 * (distillation needs the teacher's logits for the same images: `batch.indices` and `batch.input`).
 * The batch's arrays are only valid until `compute` settles.
 */
export interface TrainLoss {
  compute(logits: Tensor<'float32'>, batch: Batch, step: LossStep): Promise<{ loss: number; grad: Tensor<'float32'> }>;
}

export interface EarlyStoppingOptions {
  /** Epochs without improvement before stopping. */
  patience: number;
  /** Metric to watch (needs `validation`); default 'valAccuracy'. */
  monitor?: 'valAccuracy' | 'valLoss';
  /** Smallest change that counts as an improvement (default 0). */
  minDelta?: number;
  /** Put back the weights of the best epoch when training ends (default true). */
  restoreBest?: boolean;
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  optimizer: OptimizerOptions;
  /** Learning-rate schedule (default constant). Epoch-valued fields may be fractional. */
  schedule?: ScheduleOptions;
  /** Seed of the batch order and augmentation (default 0). Model init has its own seed. */
  seed?: number;
  /** Random shifts of each training image by up to `maxShift` pixels (zero fill). */
  augment?: { maxShift: number; horizontalFlip?: boolean };
  /** Visit the training images in a new random order each epoch (default true). */
  shuffle?: boolean;
  /** Skip the last, smaller batch of each epoch (default false). */
  dropLast?: boolean;
  /** Label smoothing of the cross-entropy target, in [0, 1) (default 0). */
  labelSmoothing?: number;
  /** Training objective in place of cross-entropy (validation still reports cross-entropy); not with `labelSmoothing`. */
  loss?: TrainLoss;
  /** Held-out set evaluated after every epoch. */
  validation?: Dataset;
  /** Batch size of the validation pass (default 256). */
  validationBatchSize?: number;
  callbacks?: TrainCallbacks;
  earlyStopping?: EarlyStoppingOptions;
  /** Aborting rejects `fit`/`train` with the signal's reason between two batches; weights keep their last update. */
  signal?: AbortSignal;
}

export interface TrainHistory {
  epochs: EpochStats[];
  /** Why training ended. */
  stopReason: 'completed' | 'callback' | 'earlyStopping';
  /** Epoch with the best monitored metric (early stopping only). */
  bestEpoch?: number;
  /** Wall-clock seconds, validation included. */
  seconds: number;
}

const OPTION_KEYS = [
  'epochs', 'batchSize', 'optimizer', 'schedule', 'seed', 'augment', 'shuffle', 'dropLast', 'labelSmoothing', 'loss',
  'validation', 'validationBatchSize', 'callbacks', 'earlyStopping', 'signal',
] as const;

interface EarlyStopping {
  patience: number;
  monitor: 'valAccuracy' | 'valLoss';
  minDelta: number;
  restoreBest: boolean;
}

/**
 * Trains a classifier. Deterministic for a given seed, model seed and thread count: two runs give
 * bit-identical weights. Native calls above about a millisecond run off the event loop, and the
 * loop yields to it between batches.
 *
 * @example
 * const trainer = new Trainer(model, { epochs: 8, batchSize: 64, optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 } });
 * const history = await trainer.fit(trainSet);
 */
export class Trainer {
  readonly model: Module;
  readonly optimizer: Optimizer;
  private readonly options: TrainOptions;
  private readonly earlyStopping: EarlyStopping | undefined;
  private readonly loss: CrossEntropyLoss;
  private running = false;

  constructor(model: Module, options: TrainOptions) {
    if (!(model instanceof Module)) throw typeError('model', 'a Module', model);
    const opts = checkOptions<TrainOptions>('options', options ?? null) as TrainOptions;
    checkKeys('options', opts, OPTION_KEYS);
    integer('options.epochs', opts.epochs, 1, 1e6);
    integer('options.batchSize', opts.batchSize, 1, 2 ** 20);
    if (opts.seed !== undefined) integer('options.seed', opts.seed, 0, Number.MAX_SAFE_INTEGER);
    if (opts.shuffle !== undefined) boolean('options.shuffle', opts.shuffle);
    if (opts.dropLast !== undefined) boolean('options.dropLast', opts.dropLast);
    if (opts.validationBatchSize !== undefined) integer('options.validationBatchSize', opts.validationBatchSize, 1, 2 ** 20);
    if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw typeError('options.signal', 'an AbortSignal', opts.signal);
    const callbacks = checkOptions<TrainCallbacks>('options.callbacks', opts.callbacks);
    checkKeys('options.callbacks', callbacks, ['onStepEnd', 'onBatchEnd', 'onEpochEnd']);
    for (const k of ['onStepEnd', 'onBatchEnd', 'onEpochEnd'] as const) {
      if (callbacks[k] !== undefined && typeof callbacks[k] !== 'function') throw typeError(`options.callbacks.${k}`, 'a function', callbacks[k]);
    }
    if (opts.loss !== undefined && (opts.loss === null || typeof opts.loss !== 'object' || typeof opts.loss.compute !== 'function')) {
      throw typeError('options.loss', 'an object with a compute(logits, batch, step) method', opts.loss);
    }
    if (opts.loss !== undefined && opts.labelSmoothing !== undefined) throw typeError('options.labelSmoothing', 'nothing with options.loss', opts.labelSmoothing);
    this.model = model;
    this.options = opts;
    this.optimizer = createOptimizer(opts.optimizer);
    this.loss = new CrossEntropyLoss(opts.labelSmoothing === undefined ? {} : { labelSmoothing: opts.labelSmoothing });
    this.earlyStopping = opts.earlyStopping === undefined ? undefined : checkEarlyStopping(opts.earlyStopping, opts.validation !== undefined);
    // Schedule options are checked now so a typo fails before any work (iterations are known at fit()).
    scheduleFromOptions(opts.schedule, this.optimizer.lr, 1);
  }

  /** Runs the configured epochs on `dataset`; resolves with the per-epoch history. */
  async fit(dataset: Dataset): Promise<TrainHistory> {
    if (this.running) throw new KilnError(ErrorCode.INVALID_STATE, 'Trainer.fit() is already running on this trainer');
    const opts = this.options;
    checkModelFits(this.model, dataset, 'dataset');
    if (opts.validation !== undefined) checkModelFits(this.model, opts.validation, 'options.validation');
    const loader = new DataLoader(dataset, {
      batchSize: opts.batchSize,
      shuffle: opts.shuffle ?? true,
      dropLast: opts.dropLast ?? false,
      seed: opts.seed ?? 0,
      reuseBuffers: true,
      ...(opts.augment !== undefined ? { augment: opts.augment } : {}),
    });
    if (loader.length === 0) {
      throw new KilnError(ErrorCode.INVALID_STATE, `The training set has no full batch: ${dataset.length} images with batchSize ${opts.batchSize} and dropLast`);
    }
    const schedule = scheduleFromOptions(opts.schedule, this.optimizer.lr, loader.length);

    this.running = true;
    const model = this.model;
    const wasTraining = model.training;
    const reused = model.reuseBuffers;
    model.setBufferReuse(true);
    this.loss.reuseBuffers = true;
    try {
      return await this.run(loader, schedule);
    } finally {
      model.train(wasTraining).setBufferReuse(reused);
      this.running = false;
    }
  }

  private async run(loader: DataLoader, schedule: LrSchedule): Promise<TrainHistory> {
    const { model, optimizer, options: opts } = this;
    const params = model.parameters();
    const total = opts.epochs * loader.length;
    const started = performance.now();
    const history: TrainHistory = { epochs: [], stopReason: 'completed', seconds: 0 };
    const stopper = this.earlyStopping;
    let best: { value: number; epoch: number; snapshot?: Float32Array[] } | undefined;
    let iteration = 0;

    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      model.train(true);
      const epochStart = performance.now();
      let images = 0;
      let lossSum = 0;
      let correct = 0;
      let lr = optimizer.lr;
      let batchIndex = 0;
      for (const batch of loader) {
        opts.signal?.throwIfAborted();
        lr = schedule.lrAt(iteration, total);
        optimizer.lr = lr;
        const n = batch.labels.length;
        const logits = await model.forward(batch.input);
        const { loss, grad } = opts.loss
          ? await opts.loss.compute(logits, batch, { epoch, iteration, totalSteps: total })
          : await this.loss.compute(logits, batch.labels);
        if (!Number.isFinite(loss)) {
          throw new KilnError(
            ErrorCode.TRAINING_DIVERGED,
            `Training diverged: the loss of epoch ${epoch + 1}, batch ${batchIndex + 1} is ${loss} (learning rate ${lr}); lower the learning rate`,
          );
        }
        const batchCorrect = countCorrect(logits.data, batch.labels, n, logits.dims[1]);
        await model.backward(grad!, false);
        await optimizer.step(params);
        await opts.callbacks?.onStepEnd?.({ epoch, batch: batchIndex, step: iteration + 1, totalSteps: total, stepsPerEpoch: loader.length, optimizer, params });
        images += n;
        lossSum += loss * n;
        correct += batchCorrect;
        opts.callbacks?.onBatchEnd?.({ epoch, batch: batchIndex, loss, accuracy: batchCorrect / n, lr });
        batchIndex++;
        iteration++;
        // Let timers and I/O run even when every kernel call of the batch ran inline.
        await yieldToEventLoop();
      }
      const seconds = (performance.now() - epochStart) / 1000;
      const stats: EpochStats = { epoch, trainLoss: lossSum / images, trainAccuracy: correct / images, seconds, imagesPerSecond: images / seconds, lr };
      if (opts.validation !== undefined) {
        const val = await evaluate(model, opts.validation, { batchSize: opts.validationBatchSize ?? 256 });
        stats.valLoss = val.loss;
        stats.valAccuracy = val.accuracy;
      }
      history.epochs.push(stats);

      let stop = false;
      if (stopper) {
        const value = stopper.monitor === 'valAccuracy' ? stats.valAccuracy! : -stats.valLoss!;
        if (best === undefined || value > best.value + stopper.minDelta) {
          best = { value, epoch, snapshot: stopper.restoreBest ? snapshot(params, model) : undefined };
        } else if (epoch - best.epoch >= stopper.patience) {
          stop = true;
          history.stopReason = 'earlyStopping';
        }
        history.bestEpoch = best.epoch;
      }
      const answer = await opts.callbacks?.onEpochEnd?.(stats);
      if (answer === 'stop' && !stop) {
        stop = true;
        history.stopReason = 'callback';
      }
      if (stop) break;
    }
    if (best?.snapshot) restore(best.snapshot, params, model);
    history.seconds = (performance.now() - started) / 1000;
    return history;
  }
}

/** `new Trainer(model, options).fit(dataset)`. */
export function train(model: Module, dataset: Dataset, options: TrainOptions): Promise<TrainHistory> {
  return new Trainer(model, options).fit(dataset);
}

function checkEarlyStopping(value: unknown, hasValidation: boolean): EarlyStopping {
  const opts = checkOptions<EarlyStoppingOptions>('options.earlyStopping', value);
  checkKeys('options.earlyStopping', opts, ['patience', 'monitor', 'minDelta', 'restoreBest']);
  if (!hasValidation) throw typeError('options.validation', 'a Dataset (early stopping monitors a validation metric)', undefined);
  return {
    patience: integer('options.earlyStopping.patience', opts.patience, 0),
    monitor: optional(opts.monitor, 'valAccuracy' as const, (v) => oneOf('options.earlyStopping.monitor', v, ['valAccuracy', 'valLoss'] as const)),
    minDelta: optional(opts.minDelta, 0, (v) => number('options.earlyStopping.minDelta', v, 0, Infinity)),
    restoreBest: optional(opts.restoreBest, true, (v) => boolean('options.earlyStopping.restoreBest', v)),
  };
}

/** Copies of every parameter and buffer (running statistics belong to the best epoch too). */
function snapshot(params: Parameter[], model: Module): Float32Array[] {
  return [...params.map((p) => p.value.data), ...model.buffers().map((b) => b.value.data)].map((d) => d.slice());
}

function restore(saved: Float32Array[], params: Parameter[], model: Module): void {
  const targets = [...params.map((p) => p.value.data), ...model.buffers().map((b) => b.value.data)];
  targets.forEach((t, i) => t.set(saved[i]));
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
