/**
 * `prune(model, data, options)`: masks the chosen layers' weights to a target sparsity on a
 * schedule while fine-tuning with the Trainer. After every optimizer step the masks are re-applied
 * and the optimizer's state at pruned positions is zeroed, so no pruned weight revives. The weights
 * stay dense (zeros in place): the model runs, saves and exports as before.
 */
import type { Dataset } from '../data/dataset.js';
import { checkKeys } from '../nn/layers/checks.js';
import { Module } from '../nn/module.js';
import type { TrainHistory, TrainOptions } from '../train/trainer.js';
import { train } from '../train/trainer.js';
import { fineTuneRecipe } from '../train/recipes.js';
import { evaluate } from '../train/evaluate.js';
import { checkModelFits } from '../train/evaluate.js';
import { integer, oneOf, optional, options as checkOptions, rangeError, typeError } from '../validate.js';
import type { MethodName } from './criteria.js';
import type { LayerSelection } from './layers.js';
import type { Mask } from './mask.js';
import type { PatternName } from './patterns.js';
import { checkSparsity, Pruner } from './pruner.js';
import type { LayerSparsity } from './pruner.js';
import { createSchedule, SCHEDULES } from './schedule.js';
import type { AgpOptions, ScheduleName, ScheduleOptions } from './schedule.js';

export interface PruneOptions {
  /**
   * Target share of zero weights in each chosen layer (global: over them all), in [0, 1). Default
   * for N:M: 1 - N/M; required otherwise. Or one per layer, `{ '3': 0.8, '7': 0.95 }` (e.g. the
   * `suggestion` of `analyzeSensitivity`): those layers are pruned (layers with 0 are left dense),
   * each reaching its own target on the schedule; not with `layers`, method 'global' or N:M.
   */
  sparsity?: number | Record<string, number>;
  /** Criterion (default 'magnitude'): magnitude | global | random | l1 | l2 | bn. */
  method?: MethodName;
  /** unstructured (default) | 2:4 | 1:4 | 4:8 | block1x4 | block4x1 | block8x1 | filter ('filter' by default for l1, l2, bn). */
  pattern?: PatternName | string;
  /** 'agp' (default), 'oneshot', 'iterative', or an object with `rounds` (iterative) or `agp` settings. */
  schedule?: ScheduleName | ScheduleOptions;
  /** Fine-tuning epochs (default 2; 0 with 'oneshot' only masks the weights). */
  epochs?: number;
  /** Layer names ('3' or '3.weight') or a predicate; default: all but the first Conv2d and the last Linear. */
  layers?: LayerSelection;
  /** Method 'global' only: per-layer sparsity bounds (defaults 0 and 0.99). */
  minSparsity?: number;
  maxSparsity?: number;
  /** Seed of method 'random' (default 0); the fine-tune has its own `train.seed`. */
  seed?: number;
  /**
   * Fine-tune options over the defaults: the MNIST recipe's regularisation (shifts of up to 2
   * pixels, label smoothing 0.05, weight decay 5e-4), batch 64, SGD with Nesterov momentum 0.9 at
   * lr 0.01 with cosine decay, seed 0. `callbacks` are chained after pruning's own step hook.
   */
  train?: Partial<Omit<TrainOptions, 'epochs'>>;
  /** Held-out set: accuracy before and after is measured on it (and reported). */
  validation?: Dataset;
}

export interface PruneReport {
  method: MethodName;
  pattern: string;
  schedule: ScheduleName;
  /** The target sparsity. */
  targetSparsity: number;
  /** Zeros over all pruned layers' weights. */
  sparsity: number;
  layers: LayerSparsity[];
  /** Held-out accuracy before pruning and after (with `validation`), and after - before. */
  accuracyBefore?: number;
  accuracyAfter?: number;
  accuracyDelta?: number;
  /** Steps at which the masks were recomputed. */
  pruningSteps: number[];
}

export interface PruneResult {
  /** The same model, pruned in place. */
  model: Module;
  /** The weight masks, one per pruned layer. */
  masks: Mask[];
  report: PruneReport;
  /** The fine-tune's history (undefined with 0 epochs). */
  history?: TrainHistory;
}

/** A per-layer sparsity map: plain object of layer name -> sparsity in [0, 1); not with `layers`. */
function checkPerLayer(value: object, layers: unknown): Record<string, number> {
  if (Array.isArray(value)) throw typeError('options.sparsity', 'a number or an object of layer name -> sparsity', value);
  if (layers !== undefined) throw typeError('options.layers', 'nothing with a per-layer options.sparsity (its keys choose the layers)', layers);
  const out: Record<string, number> = {};
  for (const [name, s] of Object.entries(value)) out[name] = checkSparsity(`options.sparsity['${name}']`, s);
  return out;
}

/** The fine-tune's defaults: the shared fine-tuning recipe (src/train/recipes.ts). */
export const PRUNE_TRAIN_DEFAULTS: Readonly<Omit<TrainOptions, 'epochs'>> = fineTuneRecipe;

const OPTION_KEYS = ['sparsity', 'method', 'pattern', 'schedule', 'epochs', 'layers', 'minSparsity', 'maxSparsity', 'seed', 'train', 'validation'] as const;

/**
 * Prunes `model` in place while fine-tuning it on `data`.
 * @param model a Module (e.g. a trained SeedCNN); its Conv2d and Linear weights can be pruned
 * @param data the fine-tuning images (not needed, and may be undefined, for 'oneshot' with 0 epochs)
 * @returns the model, the masks, per-layer sparsity and (with `validation`) accuracy before/after
 * @throws RangeError ERR_KILN_INVALID_ARG: sparsity outside [0, 1), an unknown layer name (the
 *   message lists the prunable layers), an N:M whose M does not divide a layer's reduction size,
 *   unknown options; TypeError ERR_KILN_INVALID_ARG for wrong types and for a layer name that exists
 *   but has no Conv2d/Linear weight (`layers: ['1']` naming a ReLU: the message says what it is)
 * @example
 * const { report } = await prune(model, train, { sparsity: 0.9, schedule: 'agp', epochs: 4, validation: test });
 */
export async function prune(model: Module, data: Dataset | undefined, options: PruneOptions): Promise<PruneResult> {
  if (!(model instanceof Module)) throw typeError('model', 'a Module', model);
  if (options === undefined) throw typeError('options', 'an options object with a sparsity', options);
  const opts = checkOptions<PruneOptions>('options', options);
  checkKeys('options', opts, OPTION_KEYS);
  const perLayer = opts.sparsity !== null && typeof opts.sparsity === 'object' ? checkPerLayer(opts.sparsity, opts.layers) : undefined;
  const chosen = perLayer ? Object.keys(perLayer).filter((name) => perLayer[name] > 0) : opts.layers;
  if (perLayer && chosen!.length === 0) throw rangeError('options.sparsity', 'at least one layer with a sparsity above 0', 'all 0');
  const pruner = new Pruner(model, { method: opts.method, pattern: opts.pattern, layers: chosen, minSparsity: opts.minSparsity, maxSparsity: opts.maxSparsity, seed: opts.seed });
  const fixed = pruner.fixedSparsity;
  if (perLayer && (pruner.method === 'global' || fixed !== undefined)) {
    throw rangeError('options.sparsity', `one number with ${fixed !== undefined ? `pattern '${pruner.pattern.name}'` : "method 'global'"}`, 'a per-layer map');
  }
  const targets = perLayer ? pruner.layers.map((l) => perLayer[l.name] ?? perLayer[l.weight.name]) : undefined;
  if (opts.sparsity === undefined && fixed === undefined) throw typeError('options.sparsity', 'a number in [0, 1)', undefined);
  const sparsity = targets ? Math.max(...targets) : opts.sparsity === undefined ? fixed! : checkSparsity('options.sparsity', opts.sparsity);
  if (fixed !== undefined && Math.abs(sparsity - fixed) > 1e-9) throw rangeError('options.sparsity', `${fixed} (pattern '${pruner.pattern.name}' fixes it) or nothing`, sparsity);
  // Per-layer targets follow the schedule in proportion: layer l at step t has s_l * s_t / max(s).
  const pruneTo = (s: number): void => pruner.update(targets ? targets.map((t) => (sparsity === 0 ? 0 : (t * s) / sparsity)) : s);
  const scheduleOptions: ScheduleOptions = typeof opts.schedule === 'string' || opts.schedule === undefined
    ? { type: optional(opts.schedule, 'agp' as ScheduleName, (v) => oneOf('options.schedule', v, SCHEDULES)) }
    : (checkOptions<ScheduleOptions>('options.schedule', opts.schedule) as ScheduleOptions);
  const epochs = optional(opts.epochs, 2, (v) => integer('options.epochs', v, 0, 1e6));
  if (epochs === 0 && scheduleOptions.type !== 'oneshot') throw rangeError('options.epochs', `at least 1 for schedule '${scheduleOptions.type}'`, 0);
  const overrides = checkOptions<Partial<TrainOptions>>('options.train', opts.train);
  if ('epochs' in overrides) throw typeError('options.train.epochs', 'nothing (use options.epochs)', overrides.epochs);
  if (opts.validation !== undefined) checkModelFits(model, opts.validation, 'options.validation');
  if (epochs > 0) checkModelFits(model, data as Dataset, 'data');

  const accuracyBefore = opts.validation ? (await evaluate(model, opts.validation)).accuracy : undefined;
  const trainOptions: TrainOptions = { ...PRUNE_TRAIN_DEFAULTS, ...overrides, epochs };
  const stepsPerEpoch = epochs === 0 ? 1 : trainOptions.dropLast ? Math.floor(data!.length / trainOptions.batchSize) : Math.ceil(data!.length / trainOptions.batchSize);
  const schedule = createSchedule(scheduleOptions, sparsity, epochs * stepsPerEpoch, stepsPerEpoch);
  const first = schedule.at(0);
  if (first !== undefined) pruneTo(first);

  let history: TrainHistory | undefined;
  if (epochs > 0) {
    const user = overrides.callbacks;
    trainOptions.callbacks = {
      ...user,
      onStepEnd: async (info) => {
        const target = schedule.at(info.step);
        if (target !== undefined) pruneTo(target);
        else pruner.apply();
        pruner.zeroState(info.optimizer);
        await user?.onStepEnd?.(info);
      },
    };
    history = await train(model, data!, trainOptions);
  }
  pruner.apply();
  const layers = pruner.report();
  const zeros = layers.reduce((s, l) => s + l.zeros, 0);
  const size = layers.reduce((s, l) => s + l.size, 0);
  const accuracyAfter = opts.validation ? (await evaluate(model, opts.validation)).accuracy : undefined;
  const report: PruneReport = {
    method: pruner.method,
    pattern: pruner.pattern.name,
    schedule: schedule.type,
    targetSparsity: sparsity,
    sparsity: zeros / size,
    layers,
    ...(accuracyBefore !== undefined && accuracyAfter !== undefined ? { accuracyBefore, accuracyAfter, accuracyDelta: accuracyAfter - accuracyBefore } : {}),
    pruningSteps: [...schedule.steps],
  };
  return { model, masks: pruner.masks.slice(), report, ...(history ? { history } : {}) };
}

