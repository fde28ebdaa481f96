/** Window options and native geometry shared by MaxPool2d and AvgPool2d. */
import type { Pool2dGeometry } from '../../binding.js';
import { KilnRangeError } from '../../errors.js';
import { checkShape } from './checks.js';
import { outputPlane, pads, pair } from './geometry.js';
import type { Pads, Pair } from './geometry.js';

export interface PoolWindow {
  kernelSize: Pair;
  stride: Pair;
  padding: Pads;
  dilation: Pair;
}

/**
 * Parses kernel/stride/padding/dilation (stride defaults to the kernel). Each padding side may be
 * at most half the dilated window, as in PyTorch, so no window lies entirely in the padding.
 */
export function poolWindow(layer: string, kernelSize: unknown, stride: unknown, padding: unknown, dilation: unknown): PoolWindow {
  const kernel = pair(`${layer} kernelSize`, kernelSize, 1);
  const strides = stride === undefined ? kernel : pair(`${layer} options.stride`, stride, 1);
  const dilations = dilation === undefined ? ([1, 1] as Pair) : pair(`${layer} options.dilation`, dilation, 1);
  if (padding === 'same') throw new KilnRangeError(`Expected an integer >= 0, [h, w] or [top, left, bottom, right] for ${layer} options.padding but received "same" (string)`);
  const padded = pads(`${layer} options.padding`, padding ?? 0, kernel, dilations, strides);
  const half = [Math.floor((dilations[0] * (kernel[0] - 1) + 1) / 2), Math.floor((dilations[1] * (kernel[1] - 1) + 1) / 2)];
  padded.forEach((p, i) => {
    const limit = half[i % 2];
    if (p > limit) {
      throw new KilnRangeError(`Expected at most ${limit} (half the window) for ${layer} options.padding[${i}] but received ${p}`);
    }
  });
  return { kernelSize: kernel, stride: strides, padding: padded, dilation: dilations };
}

/** Output shape [N, C, H', W'] of a pooling window over an input shape. */
export function poolOutputShape(layer: string, window: PoolWindow, inputShape: readonly number[]): number[] {
  const [n, c, h, w] = checkShape(layer, inputShape, 4, '[N, C, H, W]');
  const [oh, ow] = outputPlane(layer, h, w, window.kernelSize, window.stride, window.padding, window.dilation);
  return [n, c, oh, ow];
}

/** The geometry the native pooling kernels take, for input dims and output dims. */
export function poolGeometry(window: PoolWindow, inputDims: readonly number[], outputDims: readonly number[]): Pool2dGeometry {
  return {
    batch: inputDims[0],
    channels: inputDims[1],
    inHeight: inputDims[2],
    inWidth: inputDims[3],
    outHeight: outputDims[2],
    outWidth: outputDims[3],
    kernelH: window.kernelSize[0],
    kernelW: window.kernelSize[1],
    strideH: window.stride[0],
    strideW: window.stride[1],
    padTop: window.padding[0],
    padLeft: window.padding[1],
    padBottom: window.padding[2],
    padRight: window.padding[3],
    dilationH: window.dilation[0],
    dilationW: window.dilation[1],
  };
}
