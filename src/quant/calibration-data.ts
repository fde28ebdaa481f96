/**
 * Calibration input: a Dataset, one Tensor of images [N, ...], or an array of such Tensors (batches),
 * checked once and cut into the batches calibration runs.
 */
import type { Dataset } from '../data/dataset.js';
import { KilnRangeError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { shapeError, typeError } from '../validate.js';

export type CalibrationData = Dataset | Tensor | readonly Tensor[];

/** Images of one shape, back to back. */
export interface CalibrationImages {
  /** Shape of one image (without the batch). */
  imageShape: number[];
  /** Number of images. */
  count: number;
  /** Images [start, start + n) as a float32 tensor [n, ...imageShape]. */
  slice(start: number, n: number): Tensor<'float32'>;
}

function isDataset(v: unknown): v is Dataset {
  return v !== null && typeof v === 'object' && (v as Dataset).images instanceof Float32Array && Array.isArray((v as Dataset).imageShape);
}

function checkFinite(data: Float32Array, name: string): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) throw new KilnRangeError(`Expected finite values for ${name} but received ${v} at index ${i}`);
  }
}

/**
 * Checks calibration data: at least one image, float32, finite, one image shape.
 * @throws TypeError / RangeError naming `calibrationData`
 */
export function calibrationImages(data: unknown): CalibrationImages {
  const name = 'calibrationData';
  let chunks: { data: Float32Array; dims: readonly number[] }[];
  if (isDataset(data)) {
    chunks = [{ data: data.images, dims: [data.length, ...data.imageShape] }];
  } else if (data instanceof Tensor) {
    chunks = [{ data: data.data as Float32Array, dims: data.dims }];
    if (data.type !== 'float32') throw typeError(name, 'float32 images', `a ${data.type} tensor`);
  } else if (Array.isArray(data)) {
    chunks = data.map((t: unknown, i) => {
      if (!(t instanceof Tensor) || t.type !== 'float32') throw typeError(`${name}[${i}]`, 'a float32 Tensor of images', t);
      return { data: t.data as Float32Array, dims: t.dims };
    });
  } else {
    throw typeError(name, 'a Dataset, a float32 Tensor of images or an array of such Tensors', data);
  }
  if (chunks.length === 0) throw new KilnRangeError(`Expected at least one calibration image for ${name} but received no data`);
  const imageShape = chunks[0].dims.slice(1);
  chunks.forEach((c, i) => {
    if (c.dims.length < 2) throw shapeError(i === 0 ? name : `${name}[${i}]`, 'images with a batch dimension first, e.g. [N, 1, 28, 28]', `[${c.dims.join(', ')}]`);
    const shape = c.dims.slice(1);
    if (shape.length !== imageShape.length || shape.some((d, k) => d !== imageShape[k])) {
      throw shapeError(`${name}[${i}]`, `images of shape [${imageShape.join(', ')}] (as the first batch)`, `[${shape.join(', ')}]`);
    }
    checkFinite(c.data, chunks.length === 1 ? name : `${name}[${i}]`);
  });
  const per = imageShape.reduce((a, b) => a * b, 1);
  let all = chunks[0].data;
  if (chunks.length > 1) {
    all = new Float32Array(chunks.reduce((n, c) => n + c.data.length, 0));
    let at = 0;
    for (const c of chunks) {
      all.set(c.data, at);
      at += c.data.length;
    }
  }
  const count = all.length / per;
  if (count === 0) throw new KilnRangeError(`Expected at least one calibration image for ${name} but received no data`);
  return {
    imageShape,
    count,
    slice: (start, n) => new Tensor('float32', all.slice(start * per, (start + n) * per), [n, ...imageShape]),
  };
}
