/**
 * The compression pipeline on real MNIST digits: the shipped recipe (distil to half width, 80%
 * 1x4-block pruning with AGP, int8, packed) on a SeedCNN trained as `kiln train` trains it keeps
 * held-out accuracy within its 1-point budget and makes the file at least 25x smaller, and its run
 * record is consistent with the model it wrote. The budget's back-off and early stop, and the
 * seeded reproducibility of a run. Latency is recorded but never asserted (benchmarks' job).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { compress } from '../../src/compress/compress.js';
import type { RunRecord } from '../../src/compress/record.js';
import { mnist } from '../../src/data/mnist.js';
import { seedCNN } from '../../src/nn/models.js';
import type { Sequential } from '../../src/nn/layers/sequential.js';
import { graphAccuracy } from '../../src/runtime/accuracy.js';
import { loadGraph } from '../../src/runtime/model-io.js';
import { defaultMnistRecipe } from '../../src/train/recipes.js';
import { train } from '../../src/train/trainer.js';

const { train: trainSet, test } = mnist({ seed: 1 });
let teacher: Sequential;

beforeAll(async () => {
  teacher = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 1 });
  await train(teacher, trainSet, defaultMnistRecipe);
}, 300_000);

function checkRecord(record: RunRecord): void {
  expect(record.format).toBe('kiln-compress-run');
  expect(record.stages[0]).toMatchObject({ name: 'original', kind: 'original', attempts: [], precision: 'fp32' });
  for (const s of record.stages.slice(1)) {
    if (s.accepted === undefined) continue;
    // The kept try is the first within budget; every earlier one was over.
    expect(s.attempts[s.accepted].withinBudget).toBe(true);
    expect(s.attempts.slice(0, s.accepted).every((a) => !a.withinBudget)).toBe(true);
    expect(s.accuracy).toBe(s.attempts[s.accepted].accuracy);
    expect(s.accuracyDrop).toBeCloseTo(record.stages[0].accuracy - s.accuracy, 12);
  }
  const total = record.result.confusion.flat().reduce((a, b) => a + b, 0);
  const diagonal = record.result.confusion.reduce((a, row, i) => a + row[i], 0);
  expect(total).toBe(test.length);
  expect(diagonal / total).toBeCloseTo(record.result.accuracy, 12);
}

describe('compress() on MNIST', () => {
  it('the shipped recipe keeps accuracy within 1 point and makes the file at least 25x smaller; the record matches the model', async () => {
    const recipe = JSON.parse(await readFile(join(import.meta.dirname, '..', '..', 'recipes', 'mnist-half-80-int8.json'), 'utf8')) as { measure: object };
    // Shorter timing only: the stages are the shipped ones.
    recipe.measure = { ...recipe.measure, minMs: 30 };
    const { record, file } = await compress(teacher, recipe, { train: trainSet, validation: test });
    const r = record.result;
    const line = record.stages.map((s) => `${s.name} ${(s.accuracy * 100).toFixed(2)}% ${s.fileBytes} B [${s.attempts.map((a) => (a.accuracy * 100).toFixed(2)).join(', ')}]`).join(' | ');
    console.log(`compress mnist-half-80-int8: ${line}; ${r.smaller.toFixed(1)}x smaller, ${r.faster.map((f) => `batch ${f.batch} ${f.vsOriginal.toFixed(1)}x`).join(', ')}`);
    checkRecord(record);
    expect(record.stages.map((s) => s.name)).toEqual(['original', 'distill', 'prune', 'quantize', 'pack']);
    expect(r.completed).toBe(true);
    expect(r.stage).toBe('pack');
    expect(record.stages[0].accuracy).toBeGreaterThanOrEqual(0.98);
    expect(r.accuracyDrop).toBeLessThanOrEqual(0.01 + 1e-12);
    expect(r.smaller).toBeGreaterThanOrEqual(25);
    expect(r.smaller).toBeCloseTo(record.stages[0].fileBytes / file.length, 9);
    // Distillation quarters the MACs; pruning removes most of the rest from the pruned layers.
    const [original, , pruned] = record.stages;
    expect(pruned.macs).toBeLessThan(original.macs * 0.3);
    expect(pruned.nonZeroMacs).toBeLessThan(pruned.macs * 0.6);
    const int8 = record.stages[4];
    expect(int8.precision).toBe('int8');
    expect(int8.layers.every((l) => l.sqnrDb !== undefined && l.sqnrDb > 20)).toBe(true);
    expect(record.sensitivity?.layers.map((l) => l.name)).toEqual(['3', '7']);
    // What was written is what was measured.
    const graph = await loadGraph(file);
    expect(await graphAccuracy(graph, test)).toBe(r.accuracy);
  }, 600_000);

  it('backs a stage off when it is over budget, and stops with the last model that fitted when no try fits', async () => {
    const recipe = {
      name: 'too-much',
      maxAccuracyDrop: 0.005,
      measure: { batches: [8], minMs: 5, ort: false },
      stages: [
        { stage: 'prune', sparsity: 0.99, schedule: 'oneshot', epochs: 0, sensitivity: false, backoff: [{ sparsity: 0.985 }] },
        { stage: 'quantize' },
      ],
    };
    const { record, file } = await compress(teacher, recipe, { train: trainSet, validation: test });
    checkRecord(record);
    const prune = record.stages[1];
    expect(prune.attempts.map((a) => a.settings.sparsity)).toEqual([0.99, 0.985]);
    expect(prune.attempts.every((a) => !a.withinBudget)).toBe(true);
    expect(prune.accepted).toBeUndefined();
    expect(record.stages).toHaveLength(2);
    expect(record.result).toMatchObject({ completed: false, stage: 'original' });
    expect(record.result.stoppedBecause).toMatch(/stage 'prune' lost more than the budget of 0.50 points in all 2 tries/);
    expect(record.result.smaller).toBe(1);
    // The output is the original model.
    expect(await graphAccuracy(await loadGraph(file), test)).toBe(record.stages[0].accuracy);
  }, 300_000);

  it('is seeded: the same recipe twice gives the same accuracies and the same weights', async () => {
    const recipe = {
      name: 'twice',
      seed: 3,
      maxAccuracyDrop: 0.05,
      measure: { batches: [8], minMs: 5, ort: false },
      stages: [{ stage: 'prune', sparsity: 0.7, pattern: 'block1x4', epochs: 1, sensitivity: false }, { stage: 'quantize' }, { stage: 'pack' }],
    };
    const a = await compress(teacher, recipe, { train: trainSet, validation: test });
    const b = await compress(teacher, recipe, { train: trainSet, validation: test });
    expect(b.record.stages.map((s) => s.accuracy)).toEqual(a.record.stages.map((s) => s.accuracy));
    expect(b.record.seed).toBe(3);
    const [ga, gb] = [await loadGraph(a.file), await loadGraph(b.file)];
    for (const [name, t] of ga.initializers) expect(Array.from(gb.initializers.get(name)!.data as ArrayLike<number>), name).toEqual(Array.from(t.data as ArrayLike<number>));
  }, 300_000);
});
