/** Random labelled images for smoke tests and benchmarks, with an optional learnable signal. */
import { allocFloat32 } from '../memory.js';
import { Rng } from '../util/rng.js';
import { dims as checkDims, integer, number, options as checkOptions, rangeError } from '../validate.js';
import type { Dataset } from './dataset.js';

export interface SyntheticOptions {
  /** Number of images. */
  count: number;
  /** [channels, height, width] of one image. */
  imageShape: readonly [number, number, number] | readonly number[];
  /** Number of classes (labels 0..numClasses-1, balanced). */
  numClasses: number;
  /** Seed of everything drawn (default 0). */
  seed?: number;
  /**
   * How much of each pixel is its class's fixed pattern rather than noise, in [0, 1] (default 0.5).
   * 0 gives pure uniform noise (nothing to learn); 1 gives one exact image per class.
   */
  signal?: number;
  /** Name of the data set (default 'synthetic'). */
  name?: string;
}

/** Elements one synthetic set may hold (1 GiB of float32), so a typo cannot exhaust memory. */
const MAX_ELEMENTS = 2 ** 28;

/**
 * A data set of random images in [0, 1]. Each class has a fixed random pattern `p` of 0s and 1s;
 * an image of that class is `signal * p + (1 - signal) * u` with `u` uniform noise per pixel, so a
 * model can learn the classes when `signal > 0`. Labels are balanced (counts differ by at most one)
 * and in random order. Same options, same data.
 */
export function synthetic(options: SyntheticOptions): Dataset {
  const opts = checkOptions<SyntheticOptions>('options', options);
  const count = integer('options.count', opts.count, 1);
  const shape = checkDims('options.imageShape', opts.imageShape, 3);
  shape.forEach((d, i) => integer(`options.imageShape[${i}]`, d, 1));
  const numClasses = integer('options.numClasses', opts.numClasses, 1, 2 ** 31 - 1);
  const seed = opts.seed === undefined ? 0 : integer('options.seed', opts.seed, 0, Number.MAX_SAFE_INTEGER);
  const signal = opts.signal === undefined ? 0.5 : number('options.signal', opts.signal, 0, 1);
  const name = opts.name === undefined ? 'synthetic' : String(opts.name);
  const imageSize = shape[0] * shape[1] * shape[2];
  if (imageSize > MAX_ELEMENTS || count * imageSize > MAX_ELEMENTS) {
    throw rangeError('options', `count * channels * height * width <= ${MAX_ELEMENTS}`, count * imageSize);
  }

  const rng = new Rng(seed);
  // Labels are i % numClasses with i < count, so only the first min(numClasses, count) classes occur.
  const patterns = new Float32Array(Math.min(numClasses, count) * imageSize);
  for (let i = 0; i < patterns.length; i++) patterns[i] = rng.next() < 0.5 ? 0 : 1;

  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) labels[i] = i % numClasses;
  rng.shuffle(labels);

  const images = allocFloat32(count * imageSize);
  const noise = 1 - signal;
  for (let i = 0; i < count; i++) {
    const p = labels[i] * imageSize;
    const out = i * imageSize;
    for (let j = 0; j < imageSize; j++) images[out + j] = signal * patterns[p + j] + noise * rng.next();
  }
  return { name, images, labels, length: count, imageShape: [shape[0], shape[1], shape[2]], numClasses };
}
