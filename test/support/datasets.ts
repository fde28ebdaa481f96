import type { Dataset } from '../../src/data/dataset.js';

/** Images [start, end) of a data set under another name (views, no copy). */
export function datasetSlice(d: Dataset, start: number, end: number, name: string): Dataset {
  const size = d.imageShape.reduce((a, b) => a * b, 1);
  return { ...d, name, images: d.images.subarray(start * size, end * size), labels: d.labels.subarray(start, end), length: end - start };
}
