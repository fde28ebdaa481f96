/**
 * `DataLoader`: mini-batches over a data set, reshuffled every epoch from a seed, with optional
 * random-shift (and horizontal-flip) augmentation.
 */
import { allocFloat32 } from '../memory.js';
import { Tensor } from '../tensor.js';
import { Rng } from '../util/rng.js';
import { boolean, integer, options as checkOptions, rangeError, shapeError, typeError } from '../validate.js';
import type { Batch, Dataset } from './dataset.js';

/** Random augmentation applied to each image of a batch as it is assembled. */
export interface AugmentOptions {
  /**
   * Largest shift in pixels: each image moves by integers dy, dx drawn uniformly from
   * [-maxShift, maxShift], and pixels shifted in from outside are 0.
   */
  maxShift: number;
  /** Also mirror each image left-right with probability 1/2 (before shifting). Default false. */
  horizontalFlip?: boolean;
}

export interface DataLoaderOptions {
  /** Images per batch (the last batch of an epoch may be smaller unless `dropLast`). */
  batchSize: number;
  /** Visit the images in a new random order every epoch (default true). */
  shuffle?: boolean;
  /** Skip the last batch of an epoch when it would be smaller than `batchSize` (default false). */
  dropLast?: boolean;
  /** Seed of the shuffles and augmentation (default 0). */
  seed?: number;
  /** Random shifts/flips per image (default none). */
  augment?: AugmentOptions;
  /**
   * Assemble every batch into the same buffers (default false: each batch gets fresh arrays).
   * Reusing saves allocation but a batch is only valid until the next one is produced.
   */
  reuseBuffers?: boolean;
}

/**
 * Iterates a {@link Dataset} in mini-batches. Each `for (const batch of loader)` runs one epoch;
 * epoch k (counting from 0 per loader) visits the images in an order drawn from a generator derived
 * from `seed` and k alone, so a run is reproducible and `loader.epoch(k)` replays any epoch.
 *
 * Each batch is copied into a fresh Float32Array (or, with `reuseBuffers`, into one buffer that the
 * next batch overwrites): `input` is [n, C, H, W], `labels` the n class indices and `indices` the
 * positions of the n images in the data set.
 */
export class DataLoader implements Iterable<Batch> {
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly seed: number;
  readonly augment: Readonly<Required<AugmentOptions>> | undefined;
  readonly reuseBuffers: boolean;
  private nextEpoch = 0;
  private sharedInput: Float32Array | undefined;
  private sharedLabels: Int32Array | undefined;
  private sharedIndices: Int32Array | undefined;

  constructor(dataset: Dataset, options: DataLoaderOptions) {
    this.dataset = checkDataset(dataset);
    const opts = checkOptions<DataLoaderOptions>('options', options);
    this.batchSize = integer('options.batchSize', opts.batchSize, 1, 2 ** 31 - 1);
    this.shuffle = opts.shuffle === undefined ? true : boolean('options.shuffle', opts.shuffle);
    this.dropLast = opts.dropLast === undefined ? false : boolean('options.dropLast', opts.dropLast);
    this.seed = opts.seed === undefined ? 0 : integer('options.seed', opts.seed, 0, Number.MAX_SAFE_INTEGER);
    this.reuseBuffers = opts.reuseBuffers === undefined ? false : boolean('options.reuseBuffers', opts.reuseBuffers);
    if (opts.augment !== undefined) {
      const aug = checkOptions<AugmentOptions>('options.augment', opts.augment);
      const [, h, w] = this.dataset.imageShape;
      this.augment = Object.freeze({
        maxShift: integer('options.augment.maxShift', aug.maxShift, 0, Math.max(h, w)),
        horizontalFlip: aug.horizontalFlip === undefined ? false : boolean('options.augment.horizontalFlip', aug.horizontalFlip),
      });
    }
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Number of epochs started by iterating the loader (the next `for...of` runs epoch `epochsStarted`). */
  get epochsStarted(): number {
    return this.nextEpoch;
  }

  /** Runs the next epoch. */
  [Symbol.iterator](): Iterator<Batch> {
    return this.epoch(this.nextEpoch++);
  }

  /** The batches of epoch `k` (0-based), identical every time for the same loader options. */
  epoch(k: number): IterableIterator<Batch> {
    integer('epoch', k, 0, 2 ** 32 - 1);
    return this.batches(k);
  }

  /** The order in which epoch `k` visits the data set's images. */
  order(k: number): Int32Array {
    integer('epoch', k, 0, 2 ** 32 - 1);
    return this.plan(k).order;
  }

  private plan(k: number): { order: Int32Array; augmentRng: Rng } {
    const rng = new Rng(epochSeed(this.seed, k));
    const augmentRng = rng.fork();
    const order = new Int32Array(this.dataset.length);
    for (let i = 0; i < order.length; i++) order[i] = i;
    if (this.shuffle) rng.shuffle(order);
    return { order, augmentRng };
  }

  private *batches(k: number): Generator<Batch, void, undefined> {
    const { order, augmentRng } = this.plan(k);
    const [c, h, w] = this.dataset.imageShape;
    const imageSize = c * h * w;
    const count = this.length;
    for (let b = 0; b < count; b++) {
      const start = b * this.batchSize;
      const n = Math.min(this.batchSize, order.length - start);
      const { input, labels, indices } = this.buffers(n, imageSize);
      for (let i = 0; i < n; i++) {
        const src = order[start + i];
        indices[i] = src;
        labels[i] = this.dataset.labels[src];
        if (this.augment) {
          const m = this.augment.maxShift;
          const dy = augmentRng.int(2 * m + 1) - m;
          const dx = augmentRng.int(2 * m + 1) - m;
          const flip = this.augment.horizontalFlip && augmentRng.next() < 0.5;
          copyShifted(this.dataset.images, src * imageSize, input, i * imageSize, c, h, w, dy, dx, flip);
        } else {
          input.set(this.dataset.images.subarray(src * imageSize, (src + 1) * imageSize), i * imageSize);
        }
      }
      yield { input: new Tensor('float32', input, [n, c, h, w]), labels, indices };
    }
  }

  private buffers(n: number, imageSize: number): { input: Float32Array; labels: Int32Array; indices: Int32Array } {
    if (!this.reuseBuffers) return { input: allocFloat32(n * imageSize), labels: new Int32Array(n), indices: new Int32Array(n) };
    const full = Math.min(this.batchSize, this.dataset.length);
    this.sharedInput ??= allocFloat32(full * imageSize);
    this.sharedLabels ??= new Int32Array(full);
    this.sharedIndices ??= new Int32Array(full);
    return {
      input: this.sharedInput.subarray(0, n * imageSize),
      labels: this.sharedLabels.subarray(0, n),
      indices: this.sharedIndices.subarray(0, n),
    };
  }
}

/**
 * Writes one image moved down by `dy` and right by `dx` (after an optional left-right mirror):
 * out[y][x] = in[y - dy][x - dx] where that is inside the image, else 0. Every output element is
 * written, so reused buffers need no clearing.
 */
export function copyShifted(
  src: Float32Array,
  srcAt: number,
  dst: Float32Array,
  dstAt: number,
  channels: number,
  height: number,
  width: number,
  dy: number,
  dx: number,
  flip: boolean,
): void {
  const x0 = Math.max(0, dx);
  const x1 = Math.min(width, width + dx);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < height; y++) {
      const out = dstAt + (c * height + y) * width;
      const sy = y - dy;
      if (sy < 0 || sy >= height || x0 >= x1) {
        dst.fill(0, out, out + width);
        continue;
      }
      const row = srcAt + (c * height + sy) * width;
      for (let x = 0; x < x0; x++) dst[out + x] = 0;
      if (flip) {
        for (let x = x0; x < x1; x++) dst[out + x] = src[row + width - 1 - (x - dx)];
      } else {
        for (let x = x0; x < x1; x++) dst[out + x] = src[row + x - dx];
      }
      for (let x = x1; x < width; x++) dst[out + x] = 0;
    }
  }
}

/** A seed for epoch `k` that depends on the loader seed and k only (murmur3 finalizer mixing). */
function epochSeed(seed: number, k: number): number {
  const lo = fmix32((seed >>> 0) ^ fmix32(k + 0x9e3779b9));
  const hi = fmix32(Math.floor(seed / 2 ** 32) ^ fmix32(k ^ 0x85ebca6b) ^ lo);
  return (hi >>> 11) * 2 ** 32 + lo;
}

function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function checkDataset(dataset: unknown): Dataset {
  if (dataset === null || typeof dataset !== 'object') throw typeError('dataset', 'a Dataset', dataset);
  const d = dataset as Dataset;
  if (!(d.images instanceof Float32Array)) throw typeError('dataset.images', 'a Float32Array', d.images);
  if (!(d.labels instanceof Int32Array)) throw typeError('dataset.labels', 'an Int32Array', d.labels);
  integer('dataset.length', d.length, 0, 2 ** 31 - 1);
  if (!Array.isArray(d.imageShape) || d.imageShape.length !== 3) throw typeError('dataset.imageShape', '[channels, height, width]', d.imageShape);
  d.imageShape.forEach((v, i) => integer(`dataset.imageShape[${i}]`, v, 1, 2 ** 31 - 1));
  const [c, h, w] = d.imageShape;
  if (d.images.length !== d.length * c * h * w) {
    throw shapeError('dataset.images', `${d.length} x ${c} x ${h} x ${w} = ${d.length * c * h * w} values`, `${d.images.length}`);
  }
  if (d.labels.length !== d.length) throw shapeError('dataset.labels', `${d.length} labels`, `${d.labels.length}`);
  integer('dataset.numClasses', d.numClasses, 1, 2 ** 31 - 1);
  for (let i = 0; i < d.labels.length; i++) {
    if (d.labels[i] < 0 || d.labels[i] >= d.numClasses) throw rangeError(`dataset.labels[${i}]`, `a class index in [0, ${d.numClasses - 1}]`, d.labels[i]);
  }
  return d;
}
