/**
 * Learning-rate schedules, evaluated per iteration: `lrAt(iteration, totalIterations)` with
 * iteration counted from 0. Warm-up wraps any schedule.
 */
import { KilnRangeError } from '../errors.js';
import { checkKeys } from '../nn/layers/checks.js';
import { integer, number, oneOf, options as checkOptions } from '../validate.js';

export interface LrSchedule {
  /** Learning rate for `iteration` (0-based) of a run of `totalIterations`. */
  lrAt(iteration: number, totalIterations: number): number;
}

function checkIteration(iteration: number, total: number): void {
  integer('totalIterations', total, 1);
  integer('iteration', iteration, 0);
  if (iteration >= total) throw new KilnRangeError(`Expected an iteration in [0, ${total - 1}] for iteration but received ${iteration} (number)`);
}

/** The same rate throughout. */
export function constantLr(lr: number): LrSchedule {
  number('lr', lr, 0, Infinity);
  return {
    lrAt(iteration, total) {
      checkIteration(iteration, total);
      return lr;
    },
  };
}

/** lr * gamma^floor(iteration / stepSize): a drop every `stepSize` iterations. */
export function stepLr(lr: number, options: { stepSize: number; gamma?: number }): LrSchedule {
  number('lr', lr, 0, Infinity);
  const stepSize = integer('stepSize', options?.stepSize, 1);
  const gamma = number('gamma', options.gamma ?? 0.1, 0, 1);
  return {
    lrAt(iteration, total) {
      checkIteration(iteration, total);
      return lr * gamma ** Math.floor(iteration / stepSize);
    },
  };
}

/** Half a cosine from `lr` at iteration 0 to `minLr` at the end of the run. */
export function cosineLr(lr: number, options: { minLr?: number } = {}): LrSchedule {
  number('lr', lr, 0, Infinity);
  const minLr = number('minLr', options?.minLr ?? 0, 0, lr);
  return {
    lrAt(iteration, total) {
      checkIteration(iteration, total);
      return minLr + ((lr - minLr) * (1 + Math.cos((Math.PI * iteration) / total))) / 2;
    },
  };
}

/**
 * Linear warm-up over the first `warmupIterations`, from `startFactor` times the schedule's first
 * rate up to it; the wrapped schedule then runs over the remaining iterations as if they were the
 * whole run (a cosine still ends at its minimum, steps count from the end of the warm-up).
 */
export function withWarmup(schedule: LrSchedule, options: { warmupIterations: number; startFactor?: number }): LrSchedule {
  const warmup = integer('warmupIterations', options?.warmupIterations, 0);
  const startFactor = number('startFactor', options.startFactor ?? 0, 0, 1);
  return {
    lrAt(iteration, total) {
      checkIteration(iteration, total);
      const w = Math.min(warmup, total - 1);
      if (iteration >= w) return schedule.lrAt(iteration - w, total - w);
      const target = schedule.lrAt(0, total - w);
      const factor = startFactor + ((1 - startFactor) * (iteration + 1)) / (w + 1);
      return target * factor;
    },
  };
}

/** Schedule options of the trainer, in epochs (converted to iterations with the batches per epoch). */
export type ScheduleOptions =
  | { type: 'constant'; warmupEpochs?: number }
  | { type: 'step'; stepSize: number; gamma?: number; warmupEpochs?: number }
  | { type: 'cosine'; minLr?: number; warmupEpochs?: number };

export const SCHEDULE_TYPES = ['constant', 'step', 'cosine'] as const;

/**
 * The per-iteration schedule for trainer options: `stepSize` and `warmupEpochs` are in epochs
 * (fractions allowed, e.g. warmupEpochs 0.5), rounded to whole iterations.
 */
export function scheduleFromOptions(options: ScheduleOptions | undefined, lr: number, iterationsPerEpoch: number): LrSchedule {
  const opts = checkOptions<ScheduleOptions>('schedule', options ?? { type: 'constant' });
  const type = oneOf('schedule.type', opts.type, SCHEDULE_TYPES);
  const allowed: Record<(typeof SCHEDULE_TYPES)[number], string[]> = {
    constant: ['type', 'warmupEpochs'],
    step: ['type', 'stepSize', 'gamma', 'warmupEpochs'],
    cosine: ['type', 'minLr', 'warmupEpochs'],
  };
  checkKeys('schedule', opts, allowed[type]);
  const epochs = (name: string, v: unknown, min: number): number => Math.max(min, Math.round(number(name, v, 0, 1e6) * iterationsPerEpoch));
  let base: LrSchedule;
  if (type === 'step') {
    const s = opts as { stepSize?: unknown; gamma?: number };
    base = stepLr(lr, { stepSize: epochs('schedule.stepSize', s.stepSize, 1), gamma: s.gamma === undefined ? 0.1 : number('schedule.gamma', s.gamma, 0, 1) });
  } else if (type === 'cosine') {
    const c = opts as { minLr?: number };
    base = cosineLr(lr, { minLr: c.minLr === undefined ? 0 : number('schedule.minLr', c.minLr, 0, lr) });
  } else {
    base = constantLr(lr);
  }
  const warmup = opts.warmupEpochs === undefined ? 0 : epochs('schedule.warmupEpochs', opts.warmupEpochs, 0);
  return warmup > 0 ? withWarmup(base, { warmupIterations: warmup }) : base;
}
