/**
 * The short version of bench/prune-accuracy.ts: a 3-epoch SeedCNN on real MNIST pruned to 90%
 * (global magnitude, AGP, 3 fine-tune epochs) keeps its held-out accuracy within a point, and a
 * 2:4 one keeps within half a point. The full 8-epoch figures against the targets are in
 * bench/results/prune-accuracy.txt.
 */
import { describe, expect, it } from 'vitest';

import { mnist } from '../../src/data/mnist.js';
import { seedCNN } from '../../src/nn/models.js';
import { prune } from '../../src/prune/prune.js';
import { load, save } from '../../src/runtime/model-io.js';
import { defaultMnistRecipe } from '../../src/train/recipes.js';
import { train } from '../../src/train/trainer.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { train: trainSet, test } = mnist({ seed: 1 });

describe('pruning SeedCNN on MNIST', () => {
  it('90% global AGP loses at most 1 point, 2:4 at most 0.5, with exactly the sparsity asked', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kiln-prune-mnist-'));
    try {
      const base = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 1 });
      await train(base, trainSet, { ...defaultMnistRecipe, epochs: 3 });
      const path = join(dir, 'base.kiln');
      await save(base, path);
      const cases = [
        { options: { sparsity: 0.9, method: 'global' as const }, maxDrop: 0.01 },
        { options: { pattern: '2:4' }, maxDrop: 0.005 },
      ];
      for (const { options, maxDrop } of cases) {
        const { report } = await prune(await load(path), trainSet, { ...options, schedule: 'agp', epochs: 3, validation: test });
        console.log(`MNIST prune ${JSON.stringify(options)}: held-out ${(report.accuracyBefore! * 100).toFixed(2)}% -> ${(report.accuracyAfter! * 100).toFixed(2)}%`);
        expect(report.accuracyBefore).toBeGreaterThanOrEqual(0.97);
        expect(report.accuracyBefore! - report.accuracyAfter!).toBeLessThanOrEqual(maxDrop + 1e-9);
        expect(report.sparsity).toBeCloseTo(options.sparsity ?? 0.5, 4);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
