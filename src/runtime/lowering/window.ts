/** Sliding-window attributes shared by Conv, ConvTranspose and the pools. */
import type { NodeLowering } from './context.js';

export interface Window {
  kernel: number[];
  strides: number[];
  /** ONNX order: all begins, then all ends. */
  pads: number[];
  dilations: number[];
}

/** kernel_shape, strides, dilations and pads (auto_pad resolved against the spatial input dims). */
export function readWindow(n: NodeLowering, spatialIn: number[], kernelFallback?: number[]): Window {
  const s = spatialIn.length;
  const kernel = n.intList('kernel_shape', kernelFallback);
  const strides = n.intList('strides', new Array<number>(s).fill(1));
  const dilations = n.intList('dilations', new Array<number>(s).fill(1));
  if (kernel.length !== s || strides.length !== s || dilations.length !== s) {
    throw n.shapeError(`kernel_shape/strides/dilations must have ${s} entries for ${s} spatial dimensions`);
  }
  if ([...kernel, ...strides, ...dilations].some((v) => v < 1)) throw n.shapeError('kernel_shape, strides and dilations must be >= 1');
  const autoPad = n.str('auto_pad', 'NOTSET');
  let pads: number[];
  if (autoPad === 'NOTSET') {
    pads = n.intList('pads', new Array<number>(2 * s).fill(0));
    if (pads.length !== 2 * s || pads.some((p) => p < 0)) throw n.shapeError(`pads must be ${2 * s} non-negative integers`);
  } else if (autoPad === 'VALID') {
    pads = new Array<number>(2 * s).fill(0);
  } else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = new Array<number>(2 * s).fill(0);
    for (let i = 0; i < s; i++) {
      const out = Math.ceil(spatialIn[i] / strides[i]);
      const total = Math.max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - spatialIn[i]);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[s + i] = total - pads[i];
    }
  } else {
    throw n.shapeError(`unknown auto_pad '${autoPad}'`);
  }
  return { kernel, strides, pads, dilations };
}

/** floor((in + pads - span) / stride) + 1, or with ceil_mode the PyTorch/ONNX ceil rule. 0: no fit. */
export function windowOutput(inSize: number, padBegin: number, padEnd: number, kernel: number, stride: number, dilation: number, ceil = false): number {
  const avail = inSize + padBegin + padEnd - (dilation * (kernel - 1) + 1);
  if (avail < 0) return 0;
  let out = Math.floor((ceil ? avail + stride - 1 : avail) / stride) + 1;
  // A window may not start in the end padding.
  if (ceil && (out - 1) * stride >= inSize + padBegin) out--;
  return out;
}

/** The fused activation (attribute kiln_activation) as plan attrs. */
export function activationAttrs(n: NodeLowering): Record<string, string | number> {
  const kind = n.str('kiln_activation', 'None');
  if (!['None', 'Relu', 'Relu6', 'LeakyRelu', 'Clip'].includes(kind)) throw n.shapeError(`unknown kiln_activation '${kind}'`);
  const attrs: Record<string, string | number> = { activation: kind };
  if (kind === 'LeakyRelu') attrs.activationAlpha = n.float('kiln_activation_alpha', 0.01);
  if (kind === 'Clip') {
    if (n.hasAttr('kiln_activation_min')) attrs.activationMin = n.float('kiln_activation_min', 0);
    if (n.hasAttr('kiln_activation_max')) attrs.activationMax = n.float('kiln_activation_max', 0);
  }
  return attrs;
}
