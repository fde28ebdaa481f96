/**
 * CIFAR-10 from the official binary distribution (`cifar-10-binary.tar.gz`, extracted):
 * `data_batch_1.bin` .. `data_batch_5.bin` and `test_batch.bin`, each a run of 3,073-byte records
 * (one label byte, then 1,024 red, 1,024 green and 1,024 blue pixel bytes, rows of 32).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { ErrorCode, KilnError } from '../errors.js';
import { allocFloat32 } from '../memory.js';
import { integer, number, options as checkOptions, rangeError, string, typeError } from '../validate.js';
import type { Dataset } from './dataset.js';

/** Bytes of one record: the label and a 3x32x32 image. */
export const CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32;
const IMAGE_SIZE = 3 * 32 * 32;
const PLANE = 32 * 32;
const NUM_CLASSES = 10;

/** Class names, by label. */
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'] as const;

/** Per-channel mean and standard deviation of the CIFAR-10 training images (pixels in [0, 1]). */
export const CIFAR10_STATS = {
  mean: [0.4914, 0.4822, 0.4465],
  std: [0.247, 0.2435, 0.2616],
} as const;

/** Per-channel normalisation: each pixel becomes (value - mean[c]) / std[c]. */
export interface ChannelNormalization {
  mean: readonly [number, number, number] | readonly number[];
  std: readonly [number, number, number] | readonly number[];
}

export interface Cifar10BatchOptions {
  /** Normalise per channel: `true` for {@link CIFAR10_STATS}, or explicit statistics (default: none, pixels in [0, 1]). */
  normalize?: boolean | ChannelNormalization;
  /** Name of the returned data set (default: the file name). */
  name?: string;
}

export interface Cifar10Options {
  /** Which training files to read, numbers in 1..5 (default all five: 50,000 images). */
  batches?: readonly number[];
  /** Normalise per channel: `true` for {@link CIFAR10_STATS}, or explicit statistics (default: none). */
  normalize?: boolean | ChannelNormalization;
}

/**
 * Reads one CIFAR-10 binary file into a data set of [3, 32, 32] float32 images.
 * @throws KilnError `ERR_KILN_DATASET` when the file is missing, empty, not a whole number of
 *   records, or holds a label outside 0..9.
 */
export function readCifar10Batch(path: string, options?: Cifar10BatchOptions): Dataset {
  string('path', path);
  const opts = checkOptions<Cifar10BatchOptions>('options', options);
  const pixelTables = normalization(opts.normalize);
  const name = opts.name === undefined ? path.split(/[\\/]/).pop() ?? path : string('options.name', opts.name);
  return decode([readRecords(path)], name, pixelTables);
}

/**
 * The CIFAR-10 training and test sets from a folder of the official binary files (the folder
 * itself, or one holding the tarball's `cifar-10-batches-bin/`). Images are [3, 32, 32] float32
 * in [0, 1] unless normalised; labels 0..9 ({@link CIFAR10_CLASSES}).
 * @throws KilnError `ERR_KILN_DATASET` when the folder or a file is missing or malformed.
 */
export function cifar10(dir: string, options?: Cifar10Options): { train: Dataset; test: Dataset } {
  string('dir', dir);
  const opts = checkOptions<Cifar10Options>('options', options);
  const pixelTables = normalization(opts.normalize);
  const batches = opts.batches === undefined ? [1, 2, 3, 4, 5] : batchNumbers(opts.batches);
  const root = resolveRoot(dir);
  const train = decode(
    batches.map((b) => readRecords(join(root, `data_batch_${b}.bin`))),
    'cifar10-train',
    pixelTables,
  );
  const test = decode([readRecords(join(root, 'test_batch.bin'))], 'cifar10-test', pixelTables);
  return { train, test };
}

function resolveRoot(dir: string): string {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new KilnError(ErrorCode.DATASET, `Expected a folder holding the CIFAR-10 binary files for dir but ${dir} is not a folder`);
  }
  const nested = join(dir, 'cifar-10-batches-bin');
  if (!existsSync(join(dir, 'test_batch.bin')) && existsSync(join(nested, 'test_batch.bin'))) return nested;
  return dir;
}

function readRecords(path: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new KilnError(ErrorCode.DATASET, `Could not read the CIFAR-10 file ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (bytes.length === 0 || bytes.length % CIFAR10_RECORD_BYTES !== 0) {
    throw new KilnError(
      ErrorCode.DATASET,
      `Corrupt CIFAR-10 file ${path}: expected a non-zero multiple of ${CIFAR10_RECORD_BYTES} bytes but it holds ${bytes.length}`,
    );
  }
  for (let at = 0, record = 0; at < bytes.length; at += CIFAR10_RECORD_BYTES, record++) {
    if (bytes[at] >= NUM_CLASSES) {
      throw new KilnError(ErrorCode.DATASET, `Corrupt CIFAR-10 file ${path}: label ${bytes[at]} of record ${record} is not in 0..9`);
    }
  }
  return bytes;
}

/** Bytes → float32 through one 256-entry table per channel (x / 255, then (x - mean) / std). */
function decode(files: Uint8Array[], name: string, tables: Float32Array[]): Dataset {
  const count = files.reduce((n, f) => n + f.length / CIFAR10_RECORD_BYTES, 0);
  const images = allocFloat32(count * IMAGE_SIZE);
  const labels = new Int32Array(count);
  let image = 0;
  for (const bytes of files) {
    for (let at = 0; at < bytes.length; at += CIFAR10_RECORD_BYTES, image++) {
      labels[image] = bytes[at];
      const out = image * IMAGE_SIZE;
      for (let c = 0; c < 3; c++) {
        const table = tables[c];
        const src = at + 1 + c * PLANE;
        const dst = out + c * PLANE;
        for (let j = 0; j < PLANE; j++) images[dst + j] = table[bytes[src + j]];
      }
    }
  }
  return { name, images, labels, length: count, imageShape: [3, 32, 32], numClasses: NUM_CLASSES };
}

function normalization(value: unknown): Float32Array[] {
  if (value === undefined || value === false) return [0, 1, 2].map(() => pixelTable(0, 1));
  const stats = value === true ? CIFAR10_STATS : (checkOptions<ChannelNormalization>('options.normalize', value) as ChannelNormalization);
  const triple = (key: 'mean' | 'std'): number[] => {
    const v = stats[key] as unknown;
    if (!Array.isArray(v) || v.length !== 3) throw typeError(`options.normalize.${key}`, 'an array of 3 numbers', v);
    return v.map((x, c) => (key === 'std' ? number(`options.normalize.std[${c}]`, x, 0, Infinity, true) : number(`options.normalize.mean[${c}]`, x)));
  };
  const mean = triple('mean');
  const std = triple('std');
  return [0, 1, 2].map((c) => pixelTable(mean[c], std[c]));
}

function pixelTable(mean: number, std: number): Float32Array {
  const table = new Float32Array(256);
  for (let b = 0; b < 256; b++) table[b] = (b / 255 - mean) / std;
  return table;
}

function batchNumbers(value: unknown): number[] {
  if (!Array.isArray(value) || value.length === 0) throw typeError('options.batches', 'a non-empty array of batch numbers in 1..5', value);
  const list = value.map((b, i) => integer(`options.batches[${i}]`, b, 1, 5));
  if (new Set(list).size !== list.length) throw rangeError('options.batches', 'distinct batch numbers in 1..5', value);
  return list;
}
