/** Conv and ConvTranspose (1-D as 2-D with height 1; ConvTranspose also 3-D). */
import { NodeLowering, Unsupported, type ValueRef, numel, shapeText } from './context.js';
import type { PlanAttr, PlanWeight } from '../plan.js';
import { poolStep } from './pool.js';
import { activationAttrs, readWindow, windowOutput } from './window.js';

/** 1-D windows become 2-D ones with a unit height. */
function as2d(w: { kernel: number[]; strides: number[]; pads: number[]; dilations: number[] }) {
  if (w.kernel.length === 2) return w;
  return { kernel: [1, w.kernel[0]], strides: [1, w.strides[0]], pads: [0, w.pads[0], 0, w.pads[1]], dilations: [1, w.dilations[0]] };
}

interface ConvStep {
  input: ValueRef;
  /** Per-image output shape of the 2-D step (1-D convolutions run with a unit height). */
  shape: number[];
  attrs: Record<string, PlanAttr>;
  weights: Record<string, PlanWeight>;
  macs: number;
  spatial: number;
}

function convStep(n: NodeLowering): ConvStep {
  const x = n.value(0);
  const spatial = x.shape.length - 1;
  if (spatial !== 1 && spatial !== 2) throw new Unsupported(`${spatial}-D convolution (only 1-D and 2-D)`);
  const w = n.weight(1, 'the weight W');
  if (w.shape.length !== spatial + 2) throw n.shapeError(`weight W of shape ${shapeText(w.shape)} does not fit input ${shapeText(['N', ...x.shape])}`);
  const win = readWindow(n, x.shape.slice(1), w.shape.slice(2));
  if (win.kernel.some((k, i) => k !== w.shape[2 + i])) throw n.shapeError(`kernel_shape ${shapeText(win.kernel)} differs from the weight ${shapeText(w.shape)}`);
  const group = n.int('group', 1);
  const [cout, cinPerGroup] = w.shape;
  const cin = x.shape[0];
  if (group < 1 || cin !== cinPerGroup * group || cout % group !== 0) {
    throw n.shapeError(`input channels ${cin}, weight ${shapeText(w.shape)} and group ${group} do not agree`);
  }
  const bias = n.has(2) ? n.weight(2, 'the bias B') : undefined;
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== cout)) throw n.shapeError(`bias B of shape ${shapeText(bias.shape)} must be [${cout}]`);
  const out = x.shape.slice(1).map((d, i) => windowOutput(d, win.pads[i], win.pads[spatial + i], win.kernel[i], win.strides[i], win.dilations[i]));
  if (out.some((d) => d < 1)) throw n.shapeError(`the kernel does not fit the padded input ${shapeText(['N', ...x.shape])}`);
  const w2 = as2d(win);
  const weight = spatial === 1 ? { data: w.data, shape: [cout, cinPerGroup, 1, w.shape[2]] } : w;
  return {
    input: spatial === 1 ? n.view(x, [cin, 1, x.shape[1]]) : x,
    shape: spatial === 1 ? [cout, 1, out[0]] : [cout, ...out],
    attrs: { kernel: w2.kernel, strides: w2.strides, pads: w2.pads, dilations: w2.dilations, group, ...activationAttrs(n), ...(n.winograd ? { winograd: 1 } : {}), ...(n.sparseKernels !== 'never' ? { sparse: n.sparseKernels } : {}) },
    weights: bias ? { W: weight, B: bias } : { W: weight },
    macs: cout * out.reduce((a, b) => a * b, 1) * cinPerGroup * win.kernel.reduce((a, b) => a * b, 1),
    spatial,
  };
}

export function lowerConv(n: NodeLowering): ValueRef[] {
  const c = convStep(n);
  if (isFullyConnected(c)) return [lowerAsGemm(n, c)];
  const y = n.emit('Conv', [c.input], c.shape, { attrs: c.attrs, weights: c.weights, macs: c.macs });
  return [c.spatial === 1 ? n.view(y, [c.shape[0], c.shape[2]]) : y];
}

/**
 * A 1x1 convolution of a 1x1 image (squeeze-and-excitation's two layers after the global pool)
 * is a fully connected layer: as a Gemm step, the batch's images are the rows of one matrix
 * product that reads the weights once, where a Conv step would read them once per image.
 */
function isFullyConnected(c: ConvStep): boolean {
  const a = c.attrs as { kernel: number[]; pads: number[]; group: number };
  return c.spatial === 2 && c.input.shape[1] === 1 && c.input.shape[2] === 1 && a.kernel.every((k) => k === 1) &&
    a.pads.every((p) => p === 0) && a.group === 1;
}

function lowerAsGemm(n: NodeLowering, c: ConvStep): ValueRef {
  const [cout, cin] = [c.shape[0], c.input.shape[0]];
  const w = c.weights.W as { data: Float32Array; shape: number[] };
  const weights: Record<string, PlanWeight> = { B: { data: w.data, shape: [cout, cin] } };
  if (c.weights.B) weights.C = c.weights.B;
  const { activation, activationAlpha, activationMin, activationMax, sparse } = c.attrs;
  const attrs: Record<string, PlanAttr> = { transA: 0, transB: 1, alpha: 1, beta: 1, activation };
  for (const [k, v] of Object.entries({ activationAlpha, activationMin, activationMax, sparse })) if (v !== undefined) attrs[k] = v;
  const y = n.emit('Gemm', [n.view(c.input, [cin])], [cout], { attrs, weights, macs: c.macs });
  return n.view(y, [cout, 1, 1]);
}

/**
 * A 2-D Conv whose only reader is a MaxPool/AveragePool, as one plan step: the native step pools
 * each chunk of images while its convolution output is still in cache.
 */
export function lowerConvPool(conv: NodeLowering, pool: NodeLowering): ValueRef[] {
  const c = convStep(conv);
  if (c.spatial !== 2) throw new Unsupported('fusion of a 1-D convolution');
  const p = poolStep(pool, c.shape);
  if (poolFirstPays(c, p)) {
    // Averaging commutes with a per-pixel affine map: pooled first, the convolution runs on
    // a quarter of the pixels (DenseNet's transitions: 1x1 conv then 2x2/2 average pool).
    const first = poolStep(pool, c.input.shape);
    const pooled = pool.emit('AveragePool', [c.input], first.shape, { attrs: first.attrs, macs: first.macs });
    return [conv.emit('Conv', [pooled], p.shape, { attrs: c.attrs, weights: c.weights, macs: macsPerPixel(c) * p.shape[1] * p.shape[2] })];
  }
  const attrs: Record<string, PlanAttr> = { ...c.attrs, pool: pool.node.op };
  for (const [k, v] of Object.entries(p.attrs)) attrs[`pool_${k}`] = v;
  return [conv.emit('Conv', [c.input], p.shape, { attrs, weights: c.weights, macs: c.macs + p.macs })];
}

/**
 * An average pool after a 1x1, stride-1, unpadded convolution with no activation between them
 * can run before it, when that saves work: every window is an average (weights summing to 1) of
 * real pixels, so W·avg(x) + b = avg(W·x + b). Windows that count padding (pads, or ceil_mode's
 * partial windows with count_include_pad) would weigh the bias differently and stay after.
 */
function poolFirstPays(c: ConvStep, p: ReturnType<typeof poolStep>): boolean {
  const a = c.attrs as { kernel: number[]; strides: number[]; pads: number[]; activation?: string };
  const q = p.attrs as { pads: number[]; ceilMode: number; countIncludePad?: number };
  if (q.countIncludePad === undefined) return false;  // a MaxPool
  if (a.kernel.some((k) => k !== 1) || a.strides.some((s) => s !== 1) || a.pads.some((d) => d !== 0)) return false;
  if ((a.activation ?? 'None') !== 'None') return false;
  if (q.pads.some((d) => d !== 0) || (q.ceilMode === 1 && q.countIncludePad === 1)) return false;
  // Work either way: the convolution on all pixels then the pool on its output channels, or the
  // pool on the input channels then the convolution on the pooled pixels.
  const pooled = p.shape[1] * p.shape[2];
  const taps = p.macs / numel(p.shape);
  return macsPerPixel(c) * pooled + c.input.shape[0] * pooled * taps < c.macs + c.shape[0] * pooled * taps;
}

function macsPerPixel(c: ConvStep): number {
  return c.macs / (c.shape[1] * c.shape[2]);
}

export function lowerConvTranspose(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  const spatial = x.shape.length - 1;
  if (spatial < 1 || spatial > 3) throw new Unsupported(`${spatial}-D transposed convolution (only 1-D, 2-D and 3-D)`);
  const w = n.weight(1, 'the weight W');
  if (w.shape.length !== spatial + 2) throw n.shapeError(`weight W of shape ${shapeText(w.shape)} does not fit input ${shapeText(['N', ...x.shape])}`);
  const group = n.int('group', 1);
  const cin = x.shape[0];
  if (group < 1 || w.shape[0] !== cin || cin % group !== 0) throw n.shapeError(`input channels ${cin}, weight ${shapeText(w.shape)} and group ${group} do not agree`);
  const cout = w.shape[1] * group;
  const kernel = n.intList('kernel_shape', w.shape.slice(2));
  const strides = n.intList('strides', new Array<number>(spatial).fill(1));
  const dilations = n.intList('dilations', new Array<number>(spatial).fill(1));
  const outPad = n.intList('output_padding', new Array<number>(spatial).fill(0));
  if (kernel.some((k, i) => k !== w.shape[2 + i])) throw n.shapeError(`kernel_shape ${shapeText(kernel)} differs from the weight ${shapeText(w.shape)}`);
  let pads = n.intList('pads', new Array<number>(2 * spatial).fill(0));
  const autoPad = n.str('auto_pad', 'NOTSET');
  const outputShape = n.hasAttr('output_shape') ? n.intList('output_shape') : undefined;
  if (outputShape || autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const target = outputShape ? outputShape.slice(-spatial) : x.shape.slice(1).map((d, i) => d * strides[i]);
    pads = new Array<number>(2 * spatial).fill(0);
    for (let i = 0; i < spatial; i++) {
      const total = strides[i] * (x.shape[1 + i] - 1) + outPad[i] + (kernel[i] - 1) * dilations[i] + 1 - target[i];
      // A larger output_shape: no padding, the extra rows at the end (onnxruntime's max(0, total)).
      if (total < 0) outPad[i] -= total;
      if (outPad[i] >= Math.max(strides[i], dilations[i])) throw new Unsupported(`output_shape ${shapeText(target)}, a stride or more beyond what the transposed convolution makes`);
      const half = Math.floor(Math.max(0, total) / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? half : total - half;
      pads[spatial + i] = Math.max(0, total) - pads[i];
    }
  } else if (autoPad === 'VALID') {
    pads = new Array<number>(2 * spatial).fill(0);
  }
  const bias = n.has(2) ? n.weight(2, 'the bias B') : undefined;
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== cout)) throw n.shapeError(`bias B of shape ${shapeText(bias.shape)} must be [${cout}]`);
  const out = x.shape.slice(1).map((d, i) => strides[i] * (d - 1) + outPad[i] + (kernel[i] - 1) * dilations[i] + 1 - pads[i] - pads[spatial + i]);
  if (out.some((d) => d < 1)) throw n.shapeError('pads leave an empty output');
  const w2 = spatial === 3 ? { kernel, strides, pads, dilations } : as2d({ kernel, strides, pads, dilations });
  const input = spatial === 1 ? n.view(x, [cin, 1, x.shape[1]]) : x;
  const weight = spatial === 1 ? { data: w.data, shape: [cin, w.shape[1], 1, w.shape[2]] } : w;
  const macs = cin * x.shape.slice(1).reduce((a, b) => a * b, 1) * w.shape[1] * kernel.reduce((a, b) => a * b, 1);
  const y = n.emit('ConvTranspose', [input], spatial === 1 ? [cout, 1, out[0]] : [cout, ...out], {
    attrs: {
      kernel: w2.kernel, strides: w2.strides, pads: w2.pads, dilations: w2.dilations, group,
      outputPadding: spatial === 1 ? [0, outPad[0]] : outPad, ...activationAttrs(n),
    },
    weights: bias ? { W: weight, B: bias } : { W: weight },
    macs,
  });
  return [spatial === 1 ? n.view(y, [cout, out[0]]) : y];
}
