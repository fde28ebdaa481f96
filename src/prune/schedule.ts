/**
 * When pruning happens and to which sparsity: one-shot, iterative (prune, fine-tune, repeat) and
 * automated gradual pruning (Zhu & Gupta 2017). Steps count optimizer steps from 0 (before the
 * first step) to `totalSteps` (after the last).
 */
import { integer, number, oneOf, onlyKeys, optional, options as checkOptions, rangeError } from '../validate.js';

export const SCHEDULES = ['oneshot', 'iterative', 'agp'] as const;
export type ScheduleName = (typeof SCHEDULES)[number];

export interface AgpOptions {
  /** Sparsity at the first pruning step (default 0). */
  initialSparsity?: number;
  /** Step of the first pruning (default 0). */
  startStep?: number;
  /** Step at which the final sparsity is reached (default two thirds of the steps: the rest fine-tunes). */
  endStep?: number;
  /** Steps between two prunings (default: an eighth of an epoch, at least 1). */
  frequency?: number;
}

export interface ScheduleOptions {
  type: ScheduleName;
  /** Iterative only: rounds of prune + fine-tune (default 3). */
  rounds?: number;
  /** AGP only. */
  agp?: AgpOptions;
}

/** A resolved schedule: the sparsity to prune to at a step, or undefined when no pruning happens then. */
export interface PruneSchedule {
  type: ScheduleName;
  /** Target sparsity at `step` when the masks are recomputed then, else undefined. */
  at(step: number): number | undefined;
  /** Every step at which masks are recomputed, in order. */
  steps: readonly number[];
}

/**
 * AGP sparsity: s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3 for t0 <= t <= t0 + n dt,
 * s_i before t0 and s_f after.
 */
export function agpSparsity(step: number, initial: number, final: number, start: number, end: number): number {
  if (step <= start) return initial;
  if (step >= end) return final;
  const progress = (step - start) / (end - start);
  return final + (initial - final) * (1 - progress) ** 3;
}

/**
 * Builds the schedule for `totalSteps` optimizer steps reaching `sparsity`.
 * @throws RangeError ERR_KILN_INVALID_ARG for options out of range (an AGP window outside the steps, rounds < 1...)
 */
export function createSchedule(options: ScheduleOptions, sparsity: number, totalSteps: number, stepsPerEpoch: number, name = 'options.schedule'): PruneSchedule {
  const opts = checkOptions<ScheduleOptions>(name, options);
  onlyKeys(name, opts, ['type', 'rounds', 'agp']);
  const type = oneOf(`${name}.type`, opts.type, SCHEDULES);
  if (opts.rounds !== undefined && type !== 'iterative') throw rangeError(`${name}.rounds`, "nothing unless the schedule is 'iterative'", opts.rounds);
  if (opts.agp !== undefined && type !== 'agp') throw rangeError(`${name}.agp`, "nothing unless the schedule is 'agp'", opts.agp);
  const events = new Map<number, number>();
  if (type === 'oneshot') {
    events.set(0, sparsity);
  } else if (type === 'iterative') {
    const rounds = optional(opts.rounds, 3, (v) => integer(`${name}.rounds`, v, 1, 1000));
    // Geometric steps: each round prunes the same share of the weights still alive.
    for (let r = 0; r < rounds; r++) events.set(Math.floor((r * totalSteps) / rounds), 1 - (1 - sparsity) ** ((r + 1) / rounds));
  } else {
    const agp = checkOptions<AgpOptions>(`${name}.agp`, opts.agp);
    onlyKeys(`${name}.agp`, agp, ['initialSparsity', 'startStep', 'endStep', 'frequency']);
    const initial = optional(agp.initialSparsity, 0, (v) => number(`${name}.agp.initialSparsity`, v, 0, sparsity));
    const start = optional(agp.startStep, 0, (v) => integer(`${name}.agp.startStep`, v, 0, totalSteps));
    const end = optional(agp.endStep, Math.max(start, Math.floor((2 * totalSteps) / 3)), (v) => integer(`${name}.agp.endStep`, v, start, totalSteps));
    const frequency = optional(agp.frequency, Math.max(1, Math.floor(stepsPerEpoch / 8)), (v) => integer(`${name}.agp.frequency`, v, 1, Number.MAX_SAFE_INTEGER));
    for (let t = start; t < end; t += frequency) events.set(t, agpSparsity(t, initial, sparsity, start, end));
    events.set(end, sparsity);
  }
  const steps = [...events.keys()].sort((a, b) => a - b);
  return { type, at: (step) => events.get(step), steps };
}
