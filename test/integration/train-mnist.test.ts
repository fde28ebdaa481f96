/**
 * Real MNIST training: a short run of the default recipe must reach >= 97% on the 2,000 held-out
 * digits (measured with evaluate()), and training must be bit-for-bit reproducible.
 */
import { describe, expect, it } from 'vitest';

import type { Dataset } from '../../src/data/dataset.js';
import { mnist } from '../../src/data/mnist.js';
import { seedCNN } from '../../src/nn/models.js';
import { evaluate } from '../../src/train/evaluate.js';
import { defaultMnistRecipe } from '../../src/train/recipes.js';
import { train } from '../../src/train/trainer.js';

const { train: trainSet, test } = mnist({ seed: 1 });

function firstImages(d: Dataset, n: number): Dataset {
  const size = d.imageShape[0] * d.imageShape[1] * d.imageShape[2];
  return { ...d, images: d.images.subarray(0, n * size), labels: d.labels.subarray(0, n), length: n };
}

describe('SeedCNN on MNIST', () => {
  it('three epochs of the default recipe reach >= 97% held-out accuracy', async () => {
    expect(trainSet.length).toBe(8000);
    expect(test.length).toBe(2000);
    const model = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 1 });
    const history = await train(model, trainSet, { ...defaultMnistRecipe, epochs: 3 });
    const result = await evaluate(model, test, { confusion: true });
    console.log(
      `MNIST 3 epochs: held-out accuracy ${(result.accuracy * 100).toFixed(2)}%, loss ${result.loss.toFixed(4)}, ` +
        `train images/s per epoch ${history.epochs.map((e) => Math.round(e.imagesPerSecond)).join(', ')}`,
    );
    expect(result.count).toBe(2000);
    expect(result.accuracy).toBeGreaterThanOrEqual(0.97);
    // The confusion matrix accounts for every image and agrees with the accuracy.
    const diagonal = Array.from({ length: 10 }, (_, k) => result.confusion![k * 11]).reduce((a, b) => a + b, 0);
    expect(result.confusion!.reduce((a, b) => a + b, 0)).toBe(2000);
    expect(diagonal / 2000).toBe(result.accuracy);
    expect(history.epochs[2].trainLoss).toBeLessThan(history.epochs[0].trainLoss);
  });

  it('two runs with the same seeds give bit-identical weights', async () => {
    const subset = firstImages(trainSet, 1024);
    const run = async (): Promise<Float32Array[]> => {
      const model = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 7 });
      await train(model, subset, { ...defaultMnistRecipe, epochs: 1 });
      return model.parameters().map((p) => p.value.data);
    };
    const [a, b] = [await run(), await run()];
    a.forEach((w, i) => expect(Buffer.from(w.buffer, w.byteOffset, w.byteLength).equals(Buffer.from(b[i].buffer, b[i].byteOffset, b[i].byteLength))).toBe(true));
    // And they did train: the weights moved away from the initialisation.
    const init = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 7 }).parameters();
    expect(a[0]).not.toEqual(init[0].value.data);
  });
});
