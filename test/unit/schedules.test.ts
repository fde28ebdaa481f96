/** Learning-rate schedules: values per iteration, warm-up composition, epoch options, validation. */
import { describe, expect, it } from 'vitest';

import { constantLr, cosineLr, scheduleFromOptions, stepLr, withWarmup } from '../../src/train/schedules.js';

const all = (s: { lrAt(i: number, t: number): number }, total: number): number[] => Array.from({ length: total }, (_, i) => s.lrAt(i, total));

describe('schedules', () => {
  it('constant', () => {
    expect(all(constantLr(0.1), 4)).toEqual([0.1, 0.1, 0.1, 0.1]);
  });

  it('step: gamma every stepSize iterations', () => {
    const lrs = all(stepLr(1, { stepSize: 3, gamma: 0.5 }), 8);
    expect(lrs).toEqual([1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]);
  });

  it('cosine: starts at lr, halfway at the mean, decreasing to near minLr', () => {
    const s = cosineLr(1, { minLr: 0.1 });
    expect(s.lrAt(0, 100)).toBe(1);
    expect(s.lrAt(50, 100)).toBeCloseTo(0.55, 12);
    expect(s.lrAt(99, 100)).toBeCloseTo(0.1 + 0.45 * (1 + Math.cos((Math.PI * 99) / 100)), 12);
    const lrs = all(s, 100);
    for (let i = 1; i < lrs.length; i++) expect(lrs[i]).toBeLessThan(lrs[i - 1]);
    expect(Math.min(...lrs)).toBeGreaterThan(0.1);
  });

  it('warm-up rises linearly into the schedule, which then runs over the remaining iterations', () => {
    const s = withWarmup(cosineLr(1), { warmupIterations: 4 });
    const lrs = all(s, 14);
    expect(lrs.slice(0, 4)).toEqual([0.2, 0.4, 0.6, 0.8].map((v) => expect.closeTo(v, 12)));
    // After warm-up: a cosine over 10 iterations, starting at its peak.
    expect(lrs.slice(4)).toEqual(all(cosineLr(1), 10));
  });

  it('warm-up composes with step, counting steps from the end of the warm-up', () => {
    const lrs = all(withWarmup(stepLr(1, { stepSize: 2, gamma: 0.1 }), { warmupIterations: 1, startFactor: 0.5 }), 5);
    expect(lrs[0]).toBeCloseTo(0.75, 12);
    expect(lrs.slice(1)).toEqual([1, 1, expect.closeTo(0.1, 12), expect.closeTo(0.1, 12)]);
  });

  it('scheduleFromOptions converts epochs to iterations (fractions round)', () => {
    const s = scheduleFromOptions({ type: 'step', stepSize: 2, gamma: 0.1, warmupEpochs: 0.5 }, 1, 10);
    // 5 warm-up iterations, then drops every 20 iterations.
    expect(s.lrAt(4, 100)).toBeLessThan(1);
    expect(s.lrAt(5, 100)).toBe(1);
    expect(s.lrAt(24, 100)).toBe(1);
    expect(s.lrAt(25, 100)).toBeCloseTo(0.1, 12);
    expect(scheduleFromOptions(undefined, 0.3, 10).lrAt(7, 10)).toBe(0.3);
    const cos = scheduleFromOptions({ type: 'cosine', minLr: 0.01 }, 0.1, 10);
    expect(cos.lrAt(0, 50)).toBe(0.1);
    expect(cos.lrAt(49, 50)).toBeLessThan(0.011);
  });

  it.each([
    ['stepSize 0', () => stepLr(1, { stepSize: 0 }), /stepSize/],
    ['gamma 2', () => stepLr(1, { stepSize: 1, gamma: 2 }), /gamma/],
    ['minLr above lr', () => cosineLr(0.1, { minLr: 0.2 }), /minLr/],
    ['lr NaN', () => constantLr(NaN), /for lr but received NaN/],
    ['iteration past the end', () => constantLr(1).lrAt(5, 5), /iteration/],
    ['negative iteration', () => constantLr(1).lrAt(-1, 5), /iteration/],
    ['unknown schedule type', () => scheduleFromOptions({ type: 'exp' } as never, 1, 1), /schedule.type/],
    ['option of another type', () => scheduleFromOptions({ type: 'cosine', stepSize: 2 } as never, 1, 1), /unknown option 'stepSize'/],
    ['warmupEpochs negative', () => scheduleFromOptions({ type: 'constant', warmupEpochs: -1 }, 1, 1), /schedule.warmupEpochs/],
    ['step without stepSize', () => scheduleFromOptions({ type: 'step' } as never, 1, 1), /schedule.stepSize/],
  ] as const)('rejects %s', (_, fn, text) => {
    expect(fn).toThrow(expect.objectContaining({ code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(text) }));
  });
});
