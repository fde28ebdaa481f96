/**
 * Pruning schedules and their place in the Trainer: AGP values, iterative rounds, and after every
 * optimizer step the masks re-applied and the optimizer state of pruned weights zeroed (SGD
 * momentum, Adam moments), so a pruned weight stays exactly 0.
 */
import { describe, expect, it } from 'vitest';

import type { Dataset } from '../../src/data/dataset.js';
import { synthetic } from '../../src/data/synthetic.js';
import { Conv2d } from '../../src/nn/layers/conv2d.js';
import { Flatten } from '../../src/nn/layers/flatten.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { ReLU } from '../../src/nn/layers/relu.js';
import { Sequential } from '../../src/nn/layers/sequential.js';
import { createParameter } from '../../src/nn/parameter.js';
import { prune } from '../../src/prune/prune.js';
import { agpSparsity, createSchedule } from '../../src/prune/schedule.js';
import { analyzeSensitivity } from '../../src/prune/sensitivity.js';
import type { OptimizerOptions } from '../../src/train/optimizers/create.js';
import { SGD } from '../../src/train/optimizers/sgd.js';
import { train } from '../../src/train/trainer.js';

const data: Dataset = synthetic({ count: 96, imageShape: [1, 8, 8], numClasses: 4, seed: 2, signal: 0.5 });
const heldOut: Dataset = synthetic({ count: 64, imageShape: [1, 8, 8], numClasses: 4, seed: 2, signal: 0.5 });

/** conv 1->4, conv 4->8 (reduction 36), fc 8*4*4 -> 16, fc 16 -> 4: layers '2' and '5' are pruned by default. */
const small = (): Sequential =>
  new Sequential(new Conv2d(1, 4, 3, { seed: 1 }), new ReLU(), new Conv2d(4, 8, 3, { seed: 2 }), new ReLU(), new Flatten(), new Linear(8 * 4 * 4, 16, { seed: 3 }), new ReLU(), new Linear(16, 4, { seed: 4 }));

describe('schedules', () => {
  it('AGP follows s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3 between its two steps', () => {
    expect(agpSparsity(10, 0.1, 0.9, 10, 110)).toBe(0.1);
    expect(agpSparsity(60, 0.1, 0.9, 10, 110)).toBeCloseTo(0.9 - 0.8 * 0.125, 12);
    expect(agpSparsity(35, 0, 0.8, 10, 110)).toBeCloseTo(0.8 - 0.8 * 0.75 ** 3, 12);
    expect(agpSparsity(110, 0.1, 0.9, 10, 110)).toBe(0.9);
    expect(agpSparsity(500, 0.1, 0.9, 10, 110)).toBe(0.9);
    expect(agpSparsity(0, 0.1, 0.9, 10, 110)).toBe(0.1);
    const s = createSchedule({ type: 'agp', agp: { initialSparsity: 0.1, startStep: 10, endStep: 110, frequency: 25 } }, 0.9, 200, 50);
    expect(s.steps).toEqual([10, 35, 60, 85, 110]);
    const expected = [10, 35, 60, 85, 110].map((t) => 0.9 + (0.1 - 0.9) * (1 - (t - 10) / 100) ** 3);
    s.steps.forEach((t, i) => expect(s.at(t)).toBeCloseTo(expected[i], 12));
    expect(s.at(11)).toBeUndefined();
    // Defaults: from step 0 to two thirds of the steps, every eighth of an epoch.
    const d = createSchedule({ type: 'agp' }, 0.5, 300, 80);
    expect(d.steps[0]).toBe(0);
    expect(d.steps[1]).toBe(10);
    expect(d.steps.at(-1)).toBe(200);
    expect(d.at(200)).toBe(0.5);
  });

  it('one-shot prunes once at step 0; iterative prunes the same share of the survivors each round', () => {
    const one = createSchedule({ type: 'oneshot' }, 0.7, 90, 30);
    expect(one.steps).toEqual([0]);
    expect(one.at(0)).toBe(0.7);
    const it3 = createSchedule({ type: 'iterative', rounds: 3 }, 0.875, 90, 30);
    expect(it3.steps).toEqual([0, 30, 60]);
    expect(it3.steps.map((t) => it3.at(t)!)).toEqual([0.5, 0.75, 0.875].map((v, i) => 1 - (1 - 0.875) ** ((i + 1) / 3)));
    expect(it3.at(60)).toBeCloseTo(0.875, 12);
    expect(() => createSchedule({ type: 'agp', agp: { endStep: 400 } }, 0.5, 300, 80)).toThrow(/endStep/);
    expect(() => createSchedule({ type: 'oneshot', rounds: 2 }, 0.5, 300, 80)).toThrow(/rounds/);
    expect(() => createSchedule({ type: 'gradual' as 'agp' }, 0.5, 300, 80)).toThrow(/options.schedule.type/);
  });
});

describe('Optimizer.zeroStateWhere', () => {
  it('zeroes the state at masked positions only and checks the mask length', async () => {
    const p = createParameter('w', [4], true);
    p.value.data.set([1, 2, 3, 4]);
    p.grad.set([1, 1, 1, 1]);
    const sgd = new SGD({ lr: 0.1, momentum: 0.9 });
    sgd.zeroStateWhere(p, new Uint8Array(4)); // no state yet: nothing to do
    await sgd.step([p]);
    sgd.zeroStateWhere(p, Uint8Array.from([1, 0, 1, 0]));
    expect(Array.from(sgd.stateFor(p)![0])).toEqual([1, 0, 1, 0]);
    expect(() => sgd.zeroStateWhere(p, new Uint8Array(3))).toThrow(RangeError);
  });
});

describe('masks inside the Trainer', () => {
  const optimizers: [string, OptimizerOptions][] = [
    ['SGD with momentum', { type: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 5e-4 }],
    ['Adam', { type: 'adam', lr: 0.01 }],
  ];
  for (const [label, optimizer] of optimizers) {
    it(`${label}: after every step the pruned weights are exactly 0 and their optimizer state is 0`, async () => {
      let checked = 0;
      let keptMoving = 0;
      const model = small();
      // One-shot pruning happens before the first step: the zeros seen after step 1 are the masks
      // (checked against the returned masks at the end); every later step must keep them.
      const pruned = new Map<string, Uint8Array>();
      const { masks, report } = await prune(model, data, {
        sparsity: 0.6,
        schedule: 'oneshot',
        epochs: 2,
        train: {
          batchSize: 16,
          optimizer,
          augment: undefined,
          callbacks: {
            // Chained after pruning's own hook: sees the state the next step starts from.
            onStepEnd: ({ optimizer: opt, params, step }) => {
              for (const name of ['2.weight', '5.weight']) {
                const p = params.find((q) => q.name === name)!;
                if (step === 1) pruned.set(name, Uint8Array.from(p.value.data, (w) => (w === 0 ? 1 : 0)));
                const state = opt.stateFor(p)!;
                expect(state.length).toBe(optimizer.type === 'sgd' ? 1 : 2);
                pruned.get(name)!.forEach((z, i) => {
                  if (z === 1) {
                    expect(p.value.data[i]).toBe(0);
                    for (const a of state) expect(a[i]).toBe(0);
                  } else if (state[0][i] !== 0) keptMoving++;
                });
              }
              checked++;
            },
          },
        },
      });
      for (const mask of masks) expect(Array.from(pruned.get(mask.parameter)!)).toEqual(Array.from(mask.keep, (k) => 1 - k));
      expect(checked).toBe(12);
      // The kept weights do learn (the state is not simply all zero).
      expect(keptMoving).toBeGreaterThan(0);
      expect(report.layers.map((l) => l.sparsity)).toEqual(report.layers.map((l) => Math.round(0.6 * l.size) / l.size));
      for (const mask of masks) {
        const p = model.parameters().find((q) => q.name === mask.parameter)!;
        mask.keep.forEach((k, i) => k === 0 && expect(p.value.data[i]).toBe(0));
      }
    });
  }

  it('AGP raises the sparsity on its steps and reaches the target; accuracy before/after reported', async () => {
    const seen: number[] = [];
    const model = small();
    const { report } = await prune(model, data, {
      sparsity: 0.8,
      schedule: { type: 'agp', agp: { frequency: 2 } },
      epochs: 3,
      validation: heldOut,
      train: {
        batchSize: 16,
        callbacks: {
          onStepEnd: () => {
            const w = model.parameters().find((p) => p.name === '5.weight')!.value.data;
            seen.push(w.filter((x) => x === 0).length / w.length);
          },
        },
      },
    });
    // 18 steps, pruning from 0 to step 12 every 2 steps.
    expect(report.pruningSteps).toEqual([0, 2, 4, 6, 8, 10, 12]);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]);
    expect(seen[0]).toBe(0);
    expect(seen[3]).toBeCloseTo(Math.round(agpSparsity(4, 0, 0.8, 0, 12) * 2048) / 2048, 12);
    expect(seen.at(-1)).toBe(Math.round(0.8 * 2048) / 2048);
    expect(report.sparsity).toBeCloseTo(0.8, 3);
    expect(report.accuracyBefore).toBeGreaterThanOrEqual(0);
    expect(report.accuracyDelta).toBe(report.accuracyAfter! - report.accuracyBefore!);
  });
});

describe('iterative schedule in training', () => {
  it('prunes at the start of each round to 1 - (1 - s)^(r/R), fine-tuning in between, filters whole', async () => {
    const model = small();
    const seen = new Map<number, number>();
    const { report } = await prune(model, data, {
      sparsity: 0.75,
      method: 'l2',
      schedule: { type: 'iterative', rounds: 2 },
      epochs: 2,
      train: {
        batchSize: 16,
        callbacks: {
          onStepEnd: ({ step }) => {
            const w = model.parameters().find((p) => p.name === '2.weight')!.value.data;
            seen.set(step, w.filter((x) => x === 0).length / w.length);
          },
        },
      },
    });
    // 12 steps: rounds start at steps 0 and 6; conv '2' has 8 filters.
    expect(report.pruningSteps).toEqual([0, 6]);
    expect(seen.get(1)).toBe(Math.round(0.5 * 8) / 8);
    expect(seen.get(5)).toBe(0.5);
    expect(seen.get(6)).toBe(Math.round(0.75 * 8) / 8);
    expect(seen.get(12)).toBe(0.75);
    expect(report.layers.map((l) => l.sparsity)).toEqual([0.75, 0.75]);
  });
});

describe('per-layer sparsity and sensitivity analysis', () => {
  it('prune() with a per-layer map reaches each layer its own target; refuses it with layers or global', async () => {
    const model = small();
    const { report } = await prune(model, data, { sparsity: { '2': 0.5, '5': 0.9, '7': 0 }, schedule: 'agp', epochs: 1, train: { batchSize: 16 } });
    expect(report.layers.map((l) => [l.name, l.zeros])).toEqual([['2', 144], ['5', Math.round(0.9 * 2048)]]);
    await expect(prune(small(), data, { sparsity: { '2': 0.5 }, layers: ['2'], schedule: 'oneshot', epochs: 0 })).rejects.toThrow(/options.layers/);
    await expect(prune(small(), data, { sparsity: { '2': 0.5 }, method: 'global', schedule: 'oneshot', epochs: 0 })).rejects.toThrow(/'global'/);
    await expect(prune(small(), data, { sparsity: { '2': 1 }, schedule: 'oneshot', epochs: 0 })).rejects.toThrow(/options.sparsity\['2'\]/);
    await expect(prune(small(), data, { sparsity: { x: 0.5 }, schedule: 'oneshot', epochs: 0 })).rejects.toThrow(/'x'/);
  });

  it('analyzeSensitivity: one layer pruned at a time, weights restored, suggestion within the accepted drop', async () => {
    const model = small();
    // A little training so accuracy depends on the weights.
    await train(model, data, { epochs: 3, batchSize: 16, optimizer: { type: 'adam', lr: 0.01 } });
    const before = model.parameters().map((p) => p.value.data.slice());
    const report = await analyzeSensitivity(model, heldOut, { sparsities: [0.5, 0.99], maxDrop: 0.05 });
    model.parameters().forEach((p, i) => expect(p.value.data).toEqual(before[i]));
    expect(report.layers.map((l) => l.name)).toEqual(['0', '2', '5', '7']);
    for (const l of report.layers) {
      expect(l.points.map((p) => p.sparsity)).toEqual([0.5, 0.99]);
      const ok = l.points.filter((p) => report.baseline - p.accuracy <= 0.05 + 1e-12).map((p) => p.sparsity);
      expect(l.suggested).toBe(ok.includes(0.5) ? (ok.includes(0.99) ? 0.99 : 0.5) : 0);
      expect(report.suggestion[l.name]).toBe(l.suggested);
    }
    // Pruning 99% of the last layer costs accuracy: the point must show it.
    expect(report.layers[3].points[1].accuracy).toBeLessThan(report.baseline);
  });
});
