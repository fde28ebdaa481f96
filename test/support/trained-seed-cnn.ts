/**
 * A briefly trained MNIST SeedCNN and its int8 PTQ graph, for runtime tests that want realistic
 * weights and activations (real digits, trained filters) without the cost of a full training run:
 * one epoch over 2,000 training digits (a few seconds), calibrated on 256 of them.
 */
import type { Dataset } from '../../src/data/dataset.js';
import { mnist } from '../../src/data/mnist.js';
import type { Graph } from '../../src/graph/ir.js';
import type { Module } from '../../src/nn/module.js';
import { seedCNN } from '../../src/nn/models.js';
import { quantize } from '../../src/quant/ptq.js';
import { Tensor } from '../../src/tensor.js';
import { defaultMnistRecipe } from '../../src/train/recipes.js';
import { train } from '../../src/train/trainer.js';
import { datasetSlice } from './datasets.js';

export interface TrainedSeedCnn {
  /** The fp32 model, in eval mode. */
  model: Module;
  /** Its int8 graph (Kiln PTQ, minmax). */
  int8: Graph;
  /** The held-out MNIST digits. */
  test: Dataset;
}

export async function trainedSeedCnn(): Promise<TrainedSeedCnn> {
  const { train: trainSet, test } = mnist({ seed: 1 });
  const model = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 1 });
  const subset = datasetSlice(trainSet, 0, 2000, 'mnist-train-2k');
  await train(model, subset, { ...defaultMnistRecipe, epochs: 1 });
  model.eval();
  const { graph } = await quantize(model, datasetSlice(trainSet, 2000, 2256, 'mnist-calibration'), { method: 'minmax', reportImages: 0 });
  return { model, int8: graph, test };
}

/** Digits [start, start + count) of a data set as one [count, 1, 28, 28] tensor (a copy). */
export function digits(d: Dataset, start: number, count = 1): Tensor<'float32'> {
  const per = 28 * 28;
  return new Tensor('float32', d.images.slice(start * per, (start + count) * per), [count, 1, 28, 28]);
}
