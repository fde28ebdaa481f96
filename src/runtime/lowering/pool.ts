/** MaxPool, AveragePool, global pools, LRN and inference BatchNormalization. */
import { NodeLowering, Unsupported, type ValueRef, numel, shapeText } from './context.js';
import { activationAttrs, readWindow, windowOutput } from './window.js';

/** The window attrs and per-image output shape of a MaxPool/AveragePool over input shape `x`. */
export function poolStep(n: NodeLowering, x: number[]): { attrs: Record<string, number | number[]>; shape: number[]; macs: number } {
  const spatial = x.length - 1;
  if (spatial < 1 || spatial > 3) throw new Unsupported(`${spatial}-D pooling (only 1-D, 2-D and 3-D)`);
  const max = n.node.op === 'MaxPool';
  const win = readWindow(n, x.slice(1));
  const ceil = n.int('ceil_mode', 0) === 1;
  const out = x.slice(1).map((d, i) => {
    const span = win.dilations[i] * (win.kernel[i] - 1) + 1;
    if (win.pads[i] >= span || win.pads[spatial + i] >= span) throw n.shapeError(`pads ${shapeText(win.pads)} must be smaller than the window`);
    return windowOutput(d, win.pads[i], win.pads[spatial + i], win.kernel[i], win.strides[i], win.dilations[i], ceil);
  });
  if (out.some((d) => d < 1)) throw n.shapeError(`the window does not fit the padded input ${shapeText(['N', ...x])}`);
  const attrs: Record<string, number | number[]> = {
    kernel: win.kernel, strides: win.strides, pads: win.pads, dilations: win.dilations, ceilMode: ceil ? 1 : 0,
  };
  if (!max) attrs.countIncludePad = n.int('count_include_pad', 0) === 1 ? 1 : 0;
  const shape = [x[0], ...out];
  return { attrs, shape, macs: numel(shape) * numel(win.kernel) };
}

export function lowerPool(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  const p = poolStep(n, x.shape);
  if (x.shape.length === 4) return [pool3d(n, x, p)];
  return [n.emit(n.node.op as 'MaxPool', [x], p.shape, { attrs: p.attrs, macs: p.macs })];
}

/**
 * A 3-D pool as two 2-D ones: over depth (a [kd, 1] window on the view [C, D, H*W]), then over
 * height and width (on the view [C*D', H, W]). Both pools are separable: a max of maxes, and an
 * average whose divisor (taps counted with or without the pads, ceil_mode clipping included) is
 * the product of the per-axis counts.
 */
function pool3d(n: NodeLowering, x: ValueRef, p: ReturnType<typeof poolStep>): ValueRef {
  const [c, d, h, w] = x.shape;
  const [, od, oh, ow] = p.shape;
  const { kernel: k, strides: s, pads, dilations: dl } = p.attrs as { kernel: number[]; strides: number[]; pads: number[]; dilations: number[] };
  const common: Record<string, number> = { ceilMode: p.attrs.ceilMode as number };
  if (p.attrs.countIncludePad !== undefined) common.countIncludePad = p.attrs.countIncludePad as number;
  const op = n.node.op as 'MaxPool';
  const depth = n.emit(op, [n.view(x, [c, d, h * w])], [c, od, h * w], {
    attrs: { kernel: [k[0], 1], strides: [s[0], 1], pads: [pads[0], 0, pads[3], 0], dilations: [dl[0], 1], ...common },
    macs: c * od * h * w * k[0],
  });
  const plane = n.emit(op, [n.view(depth, [c * od, h, w])], [c * od, oh, ow], {
    attrs: { kernel: [k[1], k[2]], strides: [s[1], s[2]], pads: [pads[1], pads[2], pads[4], pads[5]], dilations: [dl[1], dl[2]], ...common },
    macs: c * od * oh * ow * k[1] * k[2],
  });
  return n.view(plane, [c, od, oh, ow]);
}

export function lowerGlobalPool(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  if (x.shape.length < 2) throw n.shapeError(`input ${shapeText(['N', ...x.shape])} needs spatial dimensions`);
  const shape = [x.shape[0], ...x.shape.slice(1).map(() => 1)];
  return [n.emit(n.node.op as 'GlobalAveragePool', [x], shape, { macs: numel(x.shape) })];
}

export function lowerLrn(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  if (x.shape.length < 2) throw n.shapeError(`input ${shapeText(['N', ...x.shape])} needs spatial dimensions`);
  const size = n.int('size');
  const attrs = { size, alpha: n.float('alpha', 1e-4), beta: n.float('beta', 0.75), bias: n.float('bias', 1) };
  return [n.emit('LRN', [x], x.shape, { attrs, macs: numel(x.shape) * size })];
}

/** A BatchNormalization's scale, B, mean and var, each checked to hold one value per channel. */
export function batchNormWeights(n: NodeLowering, c: number): Record<string, { data: Float32Array; shape: number[] }> {
  const weights: Record<string, { data: Float32Array; shape: number[] }> = {};
  ['scale', 'B', 'mean', 'var'].forEach((name, i) => {
    const w = n.weight(i + 1, name);
    if (w.data.length !== c) throw n.shapeError(`${name} has ${w.data.length} elements for ${c} channels`);
    weights[name] = { data: w.data, shape: [c] };
  });
  return weights;
}

export function lowerBatchNorm(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  if (n.int('training_mode', 0) !== 0) throw new Unsupported('training_mode=1 (inference uses the running statistics)');
  if (x.shape.length < 1) throw n.shapeError('BatchNormalization needs a channel dimension');
  const weights = batchNormWeights(n, x.shape[0]);
  // kiln_activation: the Relu / Clip / LeakyRelu after it, when compile.ts pairs them.
  return [n.emit('BatchNormalization', [x], x.shape, { attrs: { epsilon: n.float('epsilon', 1e-5), ...activationAttrs(n) }, weights })];
}
