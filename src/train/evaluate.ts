/** Accuracy and loss of a model on a data set, in eval mode, without gradients. */
import type { Dataset } from '../data/dataset.js';
import { Module } from '../nn/module.js';
import { CrossEntropyLoss } from '../nn/losses.js';
import { checkKeys } from '../nn/layers/checks.js';
import { Tensor } from '../tensor.js';
import { boolean, integer, optional, options as checkOptions, shapeError, typeError } from '../validate.js';
import { addToConfusion, countCorrect } from './metrics.js';

export interface EvaluateOptions {
  /** Images per forward pass (default 256). */
  batchSize?: number;
  /** Also return the confusion matrix (default false). */
  confusion?: boolean;
}

export interface EvaluateResult {
  /** Share of images whose top logit is the label. */
  accuracy: number;
  /** Mean cross-entropy. */
  loss: number;
  /** Images evaluated. */
  count: number;
  /** Row-major [numClasses x numClasses]: confusion[label * numClasses + predicted]. */
  confusion?: Int32Array;
}

/**
 * Runs `model` over the whole data set in eval mode (dropout off, batch-norm running statistics),
 * reading the images in place (no copy). The model's training mode is restored afterwards.
 */
export async function evaluate(model: Module, dataset: Dataset, options?: EvaluateOptions): Promise<EvaluateResult> {
  if (!(model instanceof Module)) throw typeError('model', 'a Module', model);
  const opts = checkOptions<EvaluateOptions>('options', options);
  checkKeys('options', opts, ['batchSize', 'confusion']);
  const batchSize = optional(opts.batchSize, 256, (v) => integer('options.batchSize', v, 1, 2 ** 20));
  const withConfusion = optional(opts.confusion, false, (v) => boolean('options.confusion', v));
  const { imageSize, numClasses } = checkModelFits(model, dataset, 'dataset');

  const wasTraining = model.training;
  const reused = model.reuseBuffers;
  model.eval().setBufferReuse(true);
  const lossFn = new CrossEntropyLoss();
  lossFn.reuseBuffers = true;
  const confusion = withConfusion ? new Int32Array(numClasses * numClasses) : undefined;
  let correct = 0;
  let lossSum = 0;
  try {
    for (let start = 0; start < dataset.length; start += batchSize) {
      const n = Math.min(batchSize, dataset.length - start);
      const input = new Tensor('float32', dataset.images.subarray(start * imageSize, (start + n) * imageSize), [n, ...dataset.imageShape]);
      const labels = dataset.labels.subarray(start, start + n);
      const logits = await model.forward(input);
      const { loss } = await lossFn.compute(logits, labels, false);
      lossSum += loss * n;
      correct += countCorrect(logits.data, labels, n, numClasses);
      if (confusion) addToConfusion(confusion, logits.data, labels, n, numClasses);
    }
  } finally {
    model.train(wasTraining).setBufferReuse(reused);
  }
  const count = dataset.length;
  return { accuracy: count ? correct / count : 0, loss: count ? lossSum / count : 0, count, ...(confusion ? { confusion } : {}) };
}

/**
 * Checks the data set's arrays and that the model maps its images to [N, numClasses] logits.
 * Returns the floats per image and the class count.
 */
export function checkModelFits(model: Module, dataset: Dataset, name: string): { imageSize: number; numClasses: number } {
  if (dataset === null || typeof dataset !== 'object') throw typeError(name, 'a Dataset', dataset);
  const { images, labels, length, imageShape, numClasses } = dataset;
  if (!(images instanceof Float32Array)) throw typeError(`${name}.images`, 'a Float32Array', images);
  if (!(labels instanceof Int32Array)) throw typeError(`${name}.labels`, 'an Int32Array', labels);
  integer(`${name}.length`, length, 0);
  integer(`${name}.numClasses`, numClasses, 1);
  if (!Array.isArray(imageShape) || imageShape.length !== 3) throw typeError(`${name}.imageShape`, '[channels, height, width]', imageShape);
  imageShape.forEach((d, i) => integer(`${name}.imageShape[${i}]`, d, 1));
  const imageSize = imageShape[0] * imageShape[1] * imageShape[2];
  if (images.length !== length * imageSize) throw shapeError(`${name}.images`, `${length * imageSize} values (${length} images)`, `${images.length}`);
  if (labels.length !== length) throw shapeError(`${name}.labels`, `${length} labels`, `${labels.length}`);
  const out = model.outputShape([1, ...imageShape]);
  if (out.length !== 2 || out[1] !== numClasses) {
    throw shapeError('model output', `[N, ${numClasses}] logits for ${name} with ${numClasses} classes`, `[${out.join(', ')}] for input [1, ${imageShape.join(', ')}]`);
  }
  return { imageSize, numClasses };
}
