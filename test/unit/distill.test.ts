/**
 * distill(): checks refused before any training (each with its code), teacher-logit caching
 * (counted on the session's run calls), schedules of T and alpha, and that a student learns from
 * a teacher on synthetic data.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeAll, describe, expect, it, vi } from 'vitest';

import type { Dataset } from '../../src/data/dataset.js';
import { synthetic } from '../../src/data/synthetic.js';
import { distill } from '../../src/distill/distill.js';
import { scheduledValue } from '../../src/distill/schedule.js';
import { Conv2d } from '../../src/nn/layers/conv2d.js';
import { Flatten } from '../../src/nn/layers/flatten.js';
import { Linear } from '../../src/nn/layers/linear.js';
import { MaxPool2d } from '../../src/nn/layers/max-pool2d.js';
import { ReLU } from '../../src/nn/layers/relu.js';
import { Sequential } from '../../src/nn/layers/sequential.js';
import { exportModel } from '../../src/onnx/export.js';
import { quantize } from '../../src/quant/ptq.js';
import { save } from '../../src/runtime/model-io.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { evaluate } from '../../src/train/evaluate.js';
import { train } from '../../src/train/trainer.js';
import { datasetSlice } from '../support/datasets.js';

const all = synthetic({ count: 320, imageShape: [1, 8, 8], numClasses: 4, seed: 1, signal: 0.4 });
const data = datasetSlice(all, 0, 240, 'train');
const heldOut = datasetSlice(all, 240, 320, 'held-out');

function net(width: number, classes = 4, seed = 1): Sequential {
  return new Sequential(new Conv2d(1, width, 3, { seed }), new ReLU(), new MaxPool2d(2), new Flatten(), new Linear(width * 3 * 3, classes, { seed: seed + 1 }));
}

/** A valid teacher for 10x10 images (the data are 8x8). */
function tenByTen(): Sequential {
  const m = new Sequential(new Conv2d(1, 4, 3, { seed: 1 }), new ReLU(), new MaxPool2d(2), new Flatten(), new Linear(4 * 4 * 4, 4, { seed: 2 }));
  m.inputShape = [1, 10, 10];
  return m;
}

const weights = (m: Sequential): number[] => m.parameters().flatMap((p) => Array.from(p.value.data));

let teacher: Sequential;
beforeAll(async () => {
  teacher = net(8);
  await train(teacher, data, { epochs: 6, batchSize: 32, optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 }, seed: 1 });
});

describe('distill: refused before any training', () => {
  const cases: [string, () => Promise<unknown>, string, RegExp][] = [
    ['more teacher classes than the student has', () => distill(net(4, 5), net(2), data, { epochs: 1 }), 'ERR_KILN_SHAPE_MISMATCH', /teacher has 5 classes and the student 4/],
    ['a teacher with another input shape', () => distill(tenByTen(), net(2), data, { epochs: 1 }), 'ERR_KILN_SHAPE_MISMATCH', /\[1, 10, 10\]/],
    ['T = 0', () => distill(net(4), net(2), data, { temperature: 0 }), 'ERR_KILN_INVALID_ARG', /options\.temperature.*0 \(number\)/],
    ['T < 0 in a schedule', () => distill(net(4), net(2), data, { temperature: { type: 'linear', from: 4, to: -1 } }), 'ERR_KILN_INVALID_ARG', /options\.temperature\.to.*-1/],
    ['alpha above 1', () => distill(net(4), net(2), data, { alpha: 1.2 }), 'ERR_KILN_INVALID_ARG', /options\.alpha.*1\.2/],
    ['alpha below 0 in a schedule', () => distill(net(4), net(2), data, { alpha: { type: 'cosine', from: -0.5, to: 0.5 } }), 'ERR_KILN_INVALID_ARG', /options\.alpha\.from/],
    ['an unknown option', () => distill(net(4), net(2), data, { temprature: 4 } as never), 'ERR_KILN_INVALID_ARG', /temprature/],
    ['an unknown schedule key', () => distill(net(4), net(2), data, { alpha: { type: 'linear', from: 1, to: 0, atEpoch: 1 } as never }), 'ERR_KILN_INVALID_ARG', /atEpoch/],
    ['an unknown schedule type', () => distill(net(4), net(2), data, { alpha: { type: 'exp', from: 1, to: 0 } as never }), 'ERR_KILN_INVALID_ARG', /options\.alpha\.type/],
    ['a loss in the train options', () => distill(net(4), net(2), data, { train: { loss: { compute: () => Promise.reject(new Error('x')) } } as never }), 'ERR_KILN_INVALID_ARG', /options\.train\.loss/],
  ];
  for (const [what, run, code, message] of cases) {
    it(`refuses ${what} (${code}) and leaves the student untouched`, async () => {
      const student = net(2);
      const before = weights(student);
      await expect(run()).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
      expect(weights(student)).toEqual(before);
    });
  }

  it('refuses a corrupt teacher file with ERR_KILN_CORRUPT_MODEL', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'kiln-distill-')), 't.kiln');
    writeFileSync(path, Buffer.from('KILN this is not a model'));
    const student = net(2);
    const before = weights(student);
    await expect(distill(path, student, data, { epochs: 1 })).rejects.toMatchObject({ code: 'ERR_KILN_CORRUPT_MODEL' });
    expect(weights(student)).toEqual(before);
  });

  it('refuses bad trainer options before the teacher runs once', async () => {
    const session = await InferenceSession.create(teacher, { inputShape: [1, 8, 8] });
    const run = vi.spyOn(session, 'run');
    await expect(distill(session, net(2), data, { train: { optimizer: { type: 'sgd', lr: -1 } } })).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(/lr/) });
    await expect(distill(session, net(2), data, { train: { batchSize: 0 } })).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(/batchSize/) });
    expect(run).not.toHaveBeenCalled();
    session.release();
  });

  it('a class mismatch is a RangeError', async () => {
    await expect(distill(net(4, 5), net(2), data, { epochs: 1 })).rejects.toBeInstanceOf(RangeError);
  });

  it('refuses a student whose classes differ from the data (TypeError-free: SHAPE_MISMATCH)', async () => {
    await expect(distill(net(4), net(2, 3), data, { epochs: 1 })).rejects.toMatchObject({ code: 'ERR_KILN_SHAPE_MISMATCH' });
  });
});

describe('distill: teacher logits', () => {
  it('are computed once for the data set without augmentation and per batch with it', async () => {
    const session = await InferenceSession.create(teacher, { inputShape: [1, 8, 8] });
    const run = vi.spyOn(session, 'run');
    const cached = await distill(session, net(2), data, { epochs: 3, train: { batchSize: 64 } });
    // One probe image, then one run of the 240 images (chunks of 256): 2, whatever the epochs.
    expect(run).toHaveBeenCalledTimes(2);
    expect(cached).toMatchObject({ cachedTeacherLogits: true, teacherRuns: 2 });
    run.mockClear();
    const augmented = await distill(session, net(2), data, { epochs: 3, train: { batchSize: 64, augment: { maxShift: 1 } } });
    // Probe + 3 epochs x 4 batches.
    expect(run).toHaveBeenCalledTimes(13);
    expect(augmented).toMatchObject({ cachedTeacherLogits: false, teacherRuns: 13 });
    session.release();
  });
});

describe('distill: training', () => {
  it('a student learns from a .kiln teacher; both held-out accuracies are reported', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'kiln-distill-')), 'teacher.kiln');
    await save(teacher, path);
    const student = net(2, 4, 7);
    const chance = (await evaluate(student, heldOut)).accuracy;
    const result = await distill(path, student, data, { epochs: 6, temperature: { type: 'linear', from: 4, to: 2 }, alpha: 0.7, validation: heldOut, train: { batchSize: 32, optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } } });
    expect(result.student).toBe(student);
    expect(result.history.epochs).toHaveLength(6);
    expect(result.teacherAccuracy).toBeCloseTo((await evaluate(teacher, heldOut)).accuracy, 10);
    expect(result.studentAccuracy).toBe((await evaluate(student, heldOut)).accuracy);
    expect(result.studentAccuracy!).toBeGreaterThan(Math.max(0.6, chance + 0.2));
    expect(result.history.epochs[5].trainLoss).toBeLessThan(result.history.epochs[0].trainLoss);
  });
});

describe('distill: teacher kinds', () => {
  /** Teacher logits as distill caches them (a session on the teacher's own input shape). */
  async function teacherAccuracy(source: Parameters<typeof distill>[0]): Promise<number> {
    const r = await distill(source, net(2), data, { epochs: 1, validation: heldOut });
    return r.teacherAccuracy!;
  }

  it('ONNX bytes and the fp32 Module give the same teacher accuracy; an int8 graph is within a few images', async () => {
    const fp32 = await teacherAccuracy(teacher);
    expect(fp32).toBe((await evaluate(teacher, heldOut)).accuracy);
    expect(await teacherAccuracy(exportModel(teacher, { inputShape: [1, 8, 8] }))).toBe(fp32);
    const { graph } = await quantize(teacher, data, { reportImages: 0 });
    const int8 = await teacherAccuracy(graph);
    expect(Math.abs(int8 - fp32)).toBeLessThanOrEqual(4 / heldOut.length);
  });

  it('keeps the event loop turning while it trains and runs the teacher', async () => {
    // Turns of the loop, counted by a callback that re-queues itself each turn.
    let ticks = 0;
    let running = true;
    const tick = (): void => {
      ticks++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    await distill(teacher, net(2), data, { epochs: 2, train: { batchSize: 16, augment: { maxShift: 1 } } });
    running = false;
    // 2 epochs x 15 batches, each with a teacher run and a yield between batches.
    expect(ticks).toBeGreaterThanOrEqual(30);
  });
});

describe('T and alpha schedules', () => {
  const pos = (name: string, v: unknown): number => v as number;
  it('linear and cosine go from `from` to `to`; step switches at its epoch', () => {
    const lin = scheduledValue('x', { type: 'linear', from: 4, to: 1 }, pos, 10);
    expect([lin(0, 100), lin(99, 100)]).toEqual([4, 1]);
    expect(lin(33, 100)).toBeCloseTo(3, 10);
    const cos = scheduledValue('x', { type: 'cosine', from: 0.9, to: 0.1 }, pos, 10);
    expect(cos(0, 100)).toBeCloseTo(0.9, 12);
    expect(cos(50, 100)).toBeCloseTo(0.5, 12);
    const step = scheduledValue('x', { type: 'step', from: 8, to: 2, atEpoch: 1.5 }, pos, 10);
    expect([step(0, 100), step(14, 100), step(15, 100), step(99, 100)]).toEqual([8, 8, 2, 2]);
    expect(scheduledValue('x', 3, pos, 10)(57, 100)).toBe(3);
  });
});
