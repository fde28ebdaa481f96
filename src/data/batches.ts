/**
 * A data set's images in consecutive batches, as [n, C, H, W] tensors viewing its pixels (no copy):
 * what every loop that runs a whole held-out split through a session walks.
 */
import { Tensor } from '../tensor.js';
import type { Dataset } from './dataset.js';

export interface ImageBatch {
  /** Index of the batch's first image. */
  start: number;
  /** Images in the batch. */
  n: number;
  images: Tensor<'float32'>;
  /** Their labels (a view). */
  labels: Int32Array;
}

/** Batches of `batchSize` images over the first `count` images of `data` (default all). */
export function* imageBatches(data: Dataset, batchSize: number, count = data.length): Generator<ImageBatch> {
  const [c, h, w] = data.imageShape;
  const per = c * h * w;
  for (let start = 0; start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    yield {
      start,
      n,
      images: new Tensor('float32', data.images.subarray(start * per, (start + n) * per), [n, c, h, w]),
      labels: data.labels.subarray(start, start + n),
    };
  }
}
