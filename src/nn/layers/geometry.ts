/**
 * Window geometry shared by convolution and pooling layers: option parsing ([h, w] pairs, 4-sided
 * padding) and the output-size formula the native kernels check against.
 */
import { shapeError, integer, rangeError, typeError } from '../../validate.js';

export type Pair = [number, number];
/** Padding as [top, left, bottom, right] (the ONNX `pads` order for 2-D). */
export type Pads = [number, number, number, number];

/** A number or [h, w] of integers >= `min`. */
export function pair(name: string, value: unknown, min: number): Pair {
  if (typeof value === 'number') {
    integer(name, value, min);
    return [value, value];
  }
  if (Array.isArray(value) && value.length === 2) {
    return [integer(`${name}[0]`, value[0], min), integer(`${name}[1]`, value[1], min)];
  }
  throw typeError(name, `an integer >= ${min} or an array [h, w]`, value);
}

/**
 * Padding given as a number, [h, w], or [top, left, bottom, right]; `'same'` keeps the spatial
 * size and needs stride 1 (the extra row/column of an even window goes bottom/right, as PyTorch).
 */
export function pads(name: string, value: unknown, kernel: Pair, dilation: Pair, stride: Pair): Pads {
  if (value === 'same') {
    if (stride[0] !== 1 || stride[1] !== 1) throw rangeError(name, "stride 1 with padding 'same'", value);
    const totalH = dilation[0] * (kernel[0] - 1);
    const totalW = dilation[1] * (kernel[1] - 1);
    const top = Math.floor(totalH / 2);
    const left = Math.floor(totalW / 2);
    return [top, left, totalH - top, totalW - left];
  }
  if (Array.isArray(value) && value.length === 4) {
    return value.map((v, i) => integer(`${name}[${i}]`, v, 0)) as Pads;
  }
  if (typeof value === 'number' || (Array.isArray(value) && value.length === 2)) {
    const [h, w] = pair(name, value, 0);
    return [h, w, h, w];
  }
  throw typeError(name, "an integer >= 0, [h, w], [top, left, bottom, right] or 'same'", value);
}

/** Output length of a window sliding over `size` (the formula the kernels check). */
export function outputSize(size: number, kernel: number, stride: number, padBegin: number, padEnd: number, dilation: number): number {
  return Math.floor((size + padBegin + padEnd - dilation * (kernel - 1) - 1) / stride) + 1;
}

/** [outH, outW] for an input plane, or a shape error when the window does not fit. */
export function outputPlane(
  layer: string,
  inH: number,
  inW: number,
  kernel: Pair,
  stride: Pair,
  padding: Pads,
  dilation: Pair,
): Pair {
  const h = outputSize(inH, kernel[0], stride[0], padding[0], padding[2], dilation[0]);
  const w = outputSize(inW, kernel[1], stride[1], padding[1], padding[3], dilation[1]);
  if (h < 1 || w < 1) {
    const extent = [dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1];
    throw shapeError(
      `${layer} input`,
      `a padded plane of at least ${extent[0]}x${extent[1]}`,
      `${inH}x${inW} with padding [${padding.join(', ')}]`,
    );
  }
  return [h, w];
}
