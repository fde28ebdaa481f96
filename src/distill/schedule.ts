/**
 * Schedules for the distillation temperature and alpha. They reuse the learning-rate schedules as
 * a factor going from 1 to 0 over the run (cosine and step), so a value moves from `from` to `to`
 * along the same curve a learning rate would.
 */
import { checkKeys } from '../nn/layers/checks.js';
import { cosineLr, stepLr } from '../train/schedules.js';
import type { LrSchedule } from '../train/schedules.js';
import { number, oneOf, options as checkOptions, typeError } from '../validate.js';

/**
 * A value that changes over the run: 'linear' and 'cosine' go from `from` at the first step to
 * `to` at the end; 'step' holds `from` until `atEpoch` (fractions allowed) and then `to`.
 */
export type ValueSchedule =
  | { type: 'linear'; from: number; to: number }
  | { type: 'cosine'; from: number; to: number }
  | { type: 'step'; from: number; to: number; atEpoch: number };

/** A constant or a schedule. */
export type Scheduled = number | ValueSchedule;

export const VALUE_SCHEDULE_TYPES = ['linear', 'cosine', 'step'] as const;

/** Value at `iteration` of `total` iterations. */
export type ValueAt = (iteration: number, total: number) => number;

/**
 * Validates a constant or schedule whose every value must pass `check` (e.g. T > 0) and returns
 * its per-iteration evaluator.
 */
export function scheduledValue(name: string, value: unknown, check: (name: string, v: unknown) => number, iterationsPerEpoch: number): ValueAt {
  if (typeof value === 'number') {
    const v = check(name, value);
    return () => v;
  }
  if (value === null || typeof value !== 'object') throw typeError(name, "a number or a schedule { type: 'linear' | 'cosine' | 'step', from, to }", value);
  const opts = checkOptions<ValueSchedule>(name, value);
  const type = oneOf(`${name}.type`, opts.type, VALUE_SCHEDULE_TYPES);
  checkKeys(name, opts, type === 'step' ? ['type', 'from', 'to', 'atEpoch'] : ['type', 'from', 'to']);
  const from = check(`${name}.from`, opts.from);
  const to = check(`${name}.to`, opts.to);
  let factor: LrSchedule;
  if (type === 'cosine') factor = cosineLr(1, { minLr: 0 });
  else if (type === 'step') {
    const at = number(`${name}.atEpoch`, (opts as { atEpoch?: unknown }).atEpoch, 0, 1e6);
    // gamma 0: factor 1 before the step, 0 after it.
    factor = stepLr(1, { stepSize: Math.max(1, Math.round(at * iterationsPerEpoch)), gamma: 0 });
  } else factor = { lrAt: (i, total) => (total <= 1 ? 1 : 1 - i / (total - 1)) };
  return (iteration, total) => to + (from - to) * factor.lrAt(iteration, total);
}
