/**
 * The int8 ops of docs/int8-ir.md: QuantizeLinear, DequantizeLinear, QLinearConv, QLinearGemm,
 * QLinearAdd, QLinearConcat, QLinearLookup, QLinearAveragePool, DynamicQGemm, and MaxPool / Flatten /
 * Reshape / Identity on quantized values.
 *
 * Quantized values are uint8 plan values (int8 activations stored as uint8 with zero point + 128,
 * so one set of kernels serves both); images are NHWC inside the plan while the IR stays NCHW.
 * Every ValueRef records its layout (QuantInfo.perm), and nothing is inserted between consecutive
 * int8 ops except where an op needs the other order: a Reshape that is not a plain flatten gets an
 * explicit NHWC -> NCHW TransposeU8; a QLinearGemm reading a flattened NHWC value instead has its
 * weight's K rows permuted at lowering time (the Flatten stays a free alias).
 */
import { QuantAttrs } from '../../graph/int8-ir.js';
import { lookupOf, lookupTable, storedTable } from '../../graph/int8-lookup.js';
import type { Tensor } from '../../tensor.js';
import type { PlanAttr, PlanWeight } from '../plan.js';
import { NodeLowering, type QuantInfo, Unsupported, type ValueRef, numel, shapeText } from './context.js';
import { flattenTarget, lowerFlatten, lowerIdentity, lowerReshape, lowerTranspose, reshapeTarget, transposeSpec } from './layout.js';
import { batchNormWeights, lowerPool, poolStep } from './pool.js';
import { lowerResize, lowerSlice, lowerSplit, resizeStep, sliceSpec, splitParts } from './data.js';
import { readWindow, windowOutput } from './window.js';

type QuantDType = QuantInfo['dtype'];

const RANGE: Record<QuantDType, [number, number]> = { uint8: [0, 255], int8: [-128, 127] };

/** The zero point the uint8 kernels use for a value of this dtype. */
function storedZeroPoint(dtype: QuantDType, zp: number): number {
  return dtype === 'int8' ? zp + 128 : zp;
}

function dtypeAttr(n: NodeLowering, name: string): QuantDType {
  const v = n.str(name, 'uint8');
  if (v !== 'uint8' && v !== 'int8') throw n.shapeError(`attribute '${name}' must be 'uint8' or 'int8', received '${v}'`);
  return v;
}

/** A scale attribute: required, finite and > 0 once rounded to float32. */
function scaleAttr(n: NodeLowering, name: string): number {
  if (!n.hasAttr(name)) throw n.shapeError(`attribute '${name}' is required`);
  const v = n.float(name, 0);
  const f = Math.fround(v);
  if (!(f > 0) || !Number.isFinite(f)) throw n.shapeError(`attribute '${name}' must be a finite scale > 0, received ${v}`);
  return f;
}

function zeroPointAttr(n: NodeLowering, name: string, dtype: QuantDType): number {
  const zp = n.int(name, 0);
  const [lo, hi] = RANGE[dtype];
  if (zp < lo || zp > hi) throw n.shapeError(`attribute '${name}' must be an integer in [${lo}, ${hi}] for ${dtype}, received ${zp}`);
  return zp;
}

function quantizedInput(n: NodeLowering, i: number): ValueRef & { quant: QuantInfo } {
  const ref = n.anyValue(i);
  if (!ref.quant) throw n.shapeError(`input ${i} ('${n.node.inputs[i]}') must be a quantized value (uint8 or int8), received float32`);
  return ref as ValueRef & { quant: QuantInfo };
}

function int8Weight(n: NodeLowering, i: number, what: string, rank: number): Tensor {
  const t = n.constant(i, what);
  if (t.type !== 'int8') throw n.shapeError(`${what} must be an int8 initializer, received ${t.type}`);
  if (t.dims.length !== rank) throw n.shapeError(`${what} must have rank ${rank}, received ${shapeText(t.dims)}`);
  return t;
}

/** w_scale: float32 with `count` values or 1, each finite and > 0. */
function weightScale(n: NodeLowering, i: number, count: number): { data: Float32Array; shape: number[] } {
  const t = n.constant(i, 'w_scale');
  if (t.type !== 'float32') throw n.shapeError(`w_scale must be float32, received ${t.type}`);
  const data = t.data as Float32Array;
  if (data.length !== count && data.length !== 1) throw n.shapeError(`w_scale has ${data.length} values for ${count} output channels`);
  data.forEach((s, k) => {
    if (!(s > 0) || !Number.isFinite(s)) throw n.shapeError(`w_scale[${k}] must be a finite scale > 0, received ${s}`);
  });
  return { data, shape: [data.length] };
}

function typedBias(n: NodeLowering, i: number, count: number, type: 'int32' | 'float32'): { data: Int32Array | Float32Array; shape: number[] } | undefined {
  if (!n.has(i)) return undefined;
  const t = n.constant(i, 'bias');
  if (t.type !== type) throw n.shapeError(`bias must be ${type}, received ${t.type}`);
  if (t.size !== count) throw n.shapeError(`bias has ${t.size} values for ${count} outputs`);
  return { data: t.data as Int32Array | Float32Array, shape: [count] };
}

/** 1 for a fused ReLU, 0 without; other activations cannot fuse into an int8 op. */
function reluAttr(n: NodeLowering): number {
  const a = n.str('kiln_activation', 'None');
  if (a !== 'None' && a !== 'Relu') throw new Unsupported(`kiln_activation '${a}' on an int8 op (only 'Relu')`);
  return a === 'Relu' ? 1 : 0;
}

/** The value in NHWC order (a [C, H, W] image; a transpose only when it is stored NCHW). */
function toNhwc(n: NodeLowering, x: ValueRef & { quant: QuantInfo }): ValueRef & { quant: QuantInfo } {
  const [c, h, w] = x.shape;
  const p = h * w;
  const perm = x.quant.perm;
  if (c === 1 || p === 1 || (perm && perm.c === c && perm.p === p)) return x;
  if (perm) throw new Unsupported(`a quantized value stored in another order (${perm.c} x ${perm.p}) than [${c}, ${p}]`);
  return n.emit('TransposeU8', [x], x.shape, { attrs: { rows: c, cols: p }, macs: 0, quant: { ...x.quant, perm: { c, p } } }) as ValueRef & { quant: QuantInfo };
}

/** The value in the IR's own (NCHW) order. */
function toPlain(n: NodeLowering, x: ValueRef & { quant: QuantInfo }): ValueRef & { quant: QuantInfo } {
  const perm = x.quant.perm;
  if (!perm) return x;
  const { perm: _, ...plain } = x.quant;
  return n.emit('TransposeU8', [x], x.shape, { attrs: { rows: perm.p, cols: perm.c }, macs: 0, quant: plain }) as ValueRef & { quant: QuantInfo };
}

export function lowerQuantize(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  const dtype = dtypeAttr(n, 'dtype');
  const scale = scaleAttr(n, 'scale');
  const zp = zeroPointAttr(n, 'zero_point', dtype);
  // An image is stored NHWC for the int8 convolutions, unless only Gemms over its rows read it.
  const image = x.shape.length === 3 && !n.outputReadOnlyByGemm(0);
  const channels = image ? x.shape[0] : 1;
  const quant: QuantInfo = { dtype, scale, zeroPoint: zp, ...(image ? { perm: { c: x.shape[0], p: x.shape[1] * x.shape[2] } } : {}) };
  return [n.emit('QuantizeLinear', [x], x.shape, { attrs: { scale, zero_point: storedZeroPoint(dtype, zp), channels }, quant })];
}

export function lowerDequantize(n: NodeLowering): ValueRef[] {
  const q = quantizedInput(n, 0);
  const scale = scaleAttr(n, 'scale');
  const zp = zeroPointAttr(n, 'zero_point', q.quant.dtype);
  const channels = q.quant.perm?.c ?? 1;
  return [n.emit('DequantizeLinear', [q], q.shape, { attrs: { scale, zero_point: storedZeroPoint(q.quant.dtype, zp), channels } })];
}

/** y_scale / y_zero_point / y_dtype as plan attrs, or none for a float32 output. */
function outputQuant(n: NodeLowering): { attrs: Record<string, number>; quant?: Omit<QuantInfo, 'perm'> } {
  if (!n.hasAttr('y_scale')) {
    if (n.hasAttr('y_zero_point')) throw n.shapeError("y_zero_point without y_scale (a float output has neither)");
    return { attrs: {} };
  }
  const dtype = dtypeAttr(n, 'y_dtype');
  const scale = scaleAttr(n, 'y_scale');
  const zp = zeroPointAttr(n, 'y_zero_point', dtype);
  return { attrs: { y_scale: scale, y_zero_point: storedZeroPoint(dtype, zp) }, quant: { dtype, scale, zeroPoint: zp } };
}

interface QConvStep {
  input: ValueRef;
  shape: number[];
  attrs: Record<string, PlanAttr>;
  weights: Record<string, PlanWeight>;
  macs: number;
  quant?: QuantInfo;
}

function qconvStep(n: NodeLowering): QConvStep {
  let x = quantizedInput(n, 0);
  if (x.shape.length !== 3) throw new Unsupported(`${x.shape.length - 1}-D QLinearConv (only 2-D)`);
  const w = int8Weight(n, 1, 'the weight w', 4);
  const [cout, cinPerGroup, kh, kw] = w.dims;
  const win = readWindow(n, x.shape.slice(1), [kh, kw]);
  if (win.kernel[0] !== kh || win.kernel[1] !== kw) throw n.shapeError(`kernel_shape ${shapeText(win.kernel)} differs from the weight ${shapeText(w.dims)}`);
  const group = n.int('group', 1);
  const cin = x.shape[0];
  if (group < 1 || cin !== cinPerGroup * group || cout % group !== 0) {
    throw n.shapeError(`input channels ${cin}, weight ${shapeText(w.dims)} and group ${group} do not agree`);
  }
  const wScale = weightScale(n, 2, cout);
  const bias = typedBias(n, 3, cout, 'int32');
  const out = [0, 1].map((i) => windowOutput(x.shape[1 + i], win.pads[i], win.pads[2 + i], win.kernel[i], win.strides[i], win.dilations[i]));
  if (out.some((d) => d < 1)) throw n.shapeError(`the kernel does not fit the padded input ${shapeText(['N', ...x.shape])}`);
  const xScale = scaleAttr(n, 'x_scale');
  const xZp = zeroPointAttr(n, 'x_zero_point', x.quant.dtype);
  const y = outputQuant(n);
  const relu = reluAttr(n);
  x = toNhwc(n, x);
  return {
    input: x,
    shape: [cout, out[0], out[1]],
    attrs: {
      kernel: win.kernel, strides: win.strides, pads: win.pads, dilations: win.dilations, group, out_channels: cout,
      x_scale: xScale, x_zero_point: storedZeroPoint(x.quant.dtype, xZp), relu, ...y.attrs,
      ...(n.sparseKernels !== 'never' ? { sparse: n.sparseKernels } : {}),
    },
    weights: { W: { data: w.data as Int8Array, shape: w.dims.slice() }, w_scale: wScale, ...(bias ? { B: bias } : {}) },
    macs: cout * out[0] * out[1] * cinPerGroup * kh * kw,
    ...(y.quant ? { quant: { ...y.quant, perm: { c: cout, p: out[0] * out[1] } } } : {}),
  };
}

export function lowerQLinearConv(n: NodeLowering): ValueRef[] {
  const c = qconvStep(n);
  return [n.emit('QLinearConv', [c.input], c.shape, { attrs: c.attrs, weights: c.weights, macs: c.macs, int8: true, ...(c.quant ? { quant: c.quant } : {}) })];
}

/**
 * A QLinearConv with a quantized output whose only reader is a 2-D MaxPool, as one plan step: the
 * native step pools a few images at a time while the convolution's output is still in cache.
 */
export function lowerQLinearConvPool(conv: NodeLowering, pool: NodeLowering): ValueRef[] {
  const c = qconvStep(conv);
  if (!c.quant) throw new Unsupported('a float-output QLinearConv does not fuse with a pool');
  if (pool.node.outputs.length > 1 && pool.node.outputs[1]) throw new Unsupported('MaxPool indices');
  const p = poolStep(pool, c.shape);
  const attrs: Record<string, PlanAttr> = { ...c.attrs, pool: 'MaxPool' };
  for (const [k, v] of Object.entries(p.attrs)) attrs[`pool_${k}`] = v;
  const { perm: _, ...q } = c.quant;
  return [
    conv.emit('QLinearConv', [c.input], p.shape, {
      attrs, weights: c.weights, macs: c.macs + p.macs, int8: true, quant: { ...q, perm: { c: p.shape[0], p: p.shape[1] * p.shape[2] } },
    }),
  ];
}

/**
 * The weight with its K index permuted to the input's storage order: input element s = pi * c + ci
 * holds logical feature k = ci * p + pi.
 */
function permuteK(w: Int8Array, k: number, nOut: number, transB: boolean, perm: { c: number; p: number }): Int8Array {
  const out = new Int8Array(w.length);
  for (let pi = 0; pi < perm.p; pi++) {
    for (let ci = 0; ci < perm.c; ci++) {
      const s = pi * perm.c + ci;
      const kk = ci * perm.p + pi;
      if (transB) {
        for (let j = 0; j < nOut; j++) out[j * k + s] = w[j * k + kk];
      } else {
        out.set(w.subarray(kk * nOut, (kk + 1) * nOut), s * nOut);
      }
    }
  }
  return out;
}

/** W (int8 2-D, [N, K] with transB else [K, N]) checked against K features. */
function gemmWeight(n: NodeLowering, k: number): { w: Int8Array; dims: number[]; nOut: number; transB: boolean } {
  const w = int8Weight(n, 1, 'the weight w', 2);
  const transB = n.int('transB', 0) !== 0;
  if (n.int('transA', 0) !== 0) throw new Unsupported('transA = 1');
  const [d0, d1] = w.dims;
  const wk = transB ? d1 : d0;
  if (wk !== k) throw n.shapeError(`weight ${shapeText(w.dims)} (transB ${transB ? 1 : 0}) does not fit ${k} input features`);
  return { w: w.data as Int8Array, dims: w.dims.slice(), nOut: transB ? d0 : d1, transB };
}

/**
 * QLinearGemm on [N, K], or on [N, ..., K] (a Linear over the last axis, as ConvNeXt's MatMul on
 * [N, H, W, C]): then every row of K is one row of the product, read in the IR's own order (an
 * image stored NHWC is transposed back first), and the output is [N, ..., N_out].
 */
export function lowerQLinearGemm(n: NodeLowering): ValueRef[] {
  let a = quantizedInput(n, 0);
  if (a.shape.length === 0) throw n.shapeError(`input a must be [N, K] or [N, ..., K], received ${shapeText(['N', ...a.shape])}`);
  if (a.shape.length > 1) a = toPlain(n, a);
  const k = a.shape[a.shape.length - 1]!;
  const rows = a.shape.slice(0, -1).reduce((x, y) => x * y, 1);
  const g = gemmWeight(n, k);
  const wScale = weightScale(n, 2, g.nOut);
  const bias = typedBias(n, 3, g.nOut, 'int32');
  const aScale = scaleAttr(n, 'a_scale');
  const aZp = zeroPointAttr(n, 'a_zero_point', a.quant.dtype);
  const y = outputQuant(n);
  const w = a.quant.perm ? permuteK(g.w, k, g.nOut, g.transB, a.quant.perm) : g.w;
  return [
    n.emit('QLinearGemm', [a], [...a.shape.slice(0, -1), g.nOut], {
      attrs: { transB: g.transB ? 1 : 0, out_features: g.nOut, a_scale: aScale, a_zero_point: storedZeroPoint(a.quant.dtype, aZp), relu: reluAttr(n), ...y.attrs, ...(n.sparseKernels !== 'never' ? { sparse: n.sparseKernels } : {}) },
      weights: { W: { data: w, shape: g.dims }, w_scale: wScale, ...(bias ? { B: bias } : {}) },
      macs: rows * k * g.nOut,
      int8: true,
      ...(y.quant ? { quant: y.quant } : {}),
    }),
  ];
}

export function lowerDynamicQGemm(n: NodeLowering): ValueRef[] {
  const a = n.value(0);
  if (a.shape.length !== 1) throw n.shapeError(`input a must be 2-D [N, K], received ${shapeText(['N', ...a.shape])}`);
  const g = gemmWeight(n, a.shape[0]);
  const wScale = weightScale(n, 2, g.nOut);
  const bias = typedBias(n, 3, g.nOut, 'float32');
  return [
    n.emit('DynamicQGemm', [a], [g.nOut], {
      attrs: { transB: g.transB ? 1 : 0, out_features: g.nOut, relu: reluAttr(n) },
      weights: { W: { data: g.w, shape: g.dims }, w_scale: wScale, ...(bias ? { B: bias } : {}) },
      macs: a.shape[0] * g.nOut,
      int8: true,
    }),
  ];
}

/** `<prefix>_scale` and `<prefix>_zero_point` of the input `v`, as the uint8 kernels read them. */
function inputParams(n: NodeLowering, prefix: string, v: ValueRef & { quant: QuantInfo }): Record<string, number> {
  return {
    [`${prefix}_scale`]: scaleAttr(n, `${prefix}_scale`),
    [`${prefix}_zero_point`]: storedZeroPoint(v.quant.dtype, zeroPointAttr(n, `${prefix}_zero_point`, v.quant.dtype)),
  };
}

/** Two values of one shape in one layout: as they are when their layouts agree, else both NCHW. */
function oneLayout(n: NodeLowering, a: ValueRef & { quant: QuantInfo }, b: ValueRef & { quant: QuantInfo }): [ValueRef & { quant: QuantInfo }, ValueRef & { quant: QuantInfo }] {
  const pa = a.quant.perm;
  const pb = b.quant.perm;
  return pa?.c === pb?.c && pa?.p === pb?.p ? [a, b] : [toPlain(n, a), toPlain(n, b)];
}

export function lowerQLinearAdd(n: NodeLowering): ValueRef[] {
  let a = quantizedInput(n, 0);
  let b = quantizedInput(n, 1);
  if (shapeText(a.shape) !== shapeText(b.shape)) {
    throw new Unsupported(`QLinearAdd of per-image shapes ${shapeText(a.shape)} and ${shapeText(b.shape)} (no broadcasting)`);
  }
  const attrs = { ...inputParams(n, 'a', a), ...inputParams(n, 'b', b) };
  const y = outputQuant(n);
  if (!y.quant) throw n.shapeError('attribute y_scale is required');
  [a, b] = oneLayout(n, a, b);
  const perm = a.quant.perm;
  return [
    n.emit('QLinearAdd', [a, b], a.shape, {
      attrs: { ...attrs, ...y.attrs, relu: reluAttr(n) },
      ...{ quant: { ...y.quant, ...(perm ? { perm } : {}) } },
    }),
  ];
}

/**
 * QLinearMul: a [C, H, W] times b of a's shape (both in one layout, as QLinearAdd) or a channel
 * gate [C, 1, 1] (a keeps its layout: NHWC stays NHWC).
 */
function lowerQLinearMul(n: NodeLowering): ValueRef[] {
  let a = quantizedInput(n, 0);
  let b = quantizedInput(n, 1);
  const gate = a.shape.length === 3 && shapeText(b.shape) === shapeText([a.shape[0], 1, 1]) && shapeText(a.shape) !== shapeText(b.shape);
  if (!gate && shapeText(a.shape) !== shapeText(b.shape)) {
    throw new Unsupported(`QLinearMul of per-image shapes ${shapeText(a.shape)} and ${shapeText(b.shape)} (b must be a's shape or [C, 1, 1])`);
  }
  const attrs = { ...inputParams(n, 'a', a), ...inputParams(n, 'b', b) };
  const y = outputQuant(n);
  if (!y.quant) throw n.shapeError('attribute y_scale is required');
  if (!gate) [a, b] = oneLayout(n, a, b);
  const perm = a.quant.perm;
  const channels = gate ? a.shape[0] : 1;
  return [n.emit('QLinearMul', [a, b], a.shape, { attrs: { ...attrs, ...y.attrs, channels, nhwc: gate && perm ? 1 : 0 }, macs: 0, quant: { ...y.quant, ...(perm ? { perm } : {}) } })];
}

/** QLinearGlobalAveragePool: per-channel means of a uint8 image, in its layout; [C, 1, 1] out. */
function lowerQLinearGlobalAveragePool(n: NodeLowering): ValueRef[] {
  const x = quantizedInput(n, 0);
  if (x.shape.length !== 3) throw new Unsupported(`QLinearGlobalAveragePool of a rank-${x.shape.length + 1} value (only NCHW)`);
  const attrs = inputParams(n, 'x', x);
  const y = outputQuant(n);
  if (!y.quant) throw n.shapeError('attribute y_scale is required');
  const shape = [x.shape[0], 1, 1];
  // One pixel: NHWC and NCHW are the same bytes, so readers that want NHWC take it as is.
  return [n.emit('GlobalAvgPoolU8', [x], shape, { attrs: { ...attrs, ...y.attrs, nhwc: x.quant.perm ? 1 : 0 }, macs: 0, quant: { ...y.quant, perm: { c: x.shape[0], p: 1 } } })];
}

function lowerMaxPoolU8(n: NodeLowering): ValueRef[] {
  let x = quantizedInput(n, 0);
  if (x.shape.length !== 3) throw new Unsupported(`${x.shape.length - 1}-D MaxPool on a quantized value (only 2-D)`);
  if (n.node.outputs.length > 1 && n.node.outputs[1]) throw new Unsupported('MaxPool indices of a quantized value');
  x = toNhwc(n, x);
  const p = poolStep(n, x.shape);
  const { perm: _, ...q } = x.quant;
  return [n.emit('MaxPoolU8', [x], p.shape, { attrs: p.attrs, macs: p.macs, quant: { ...q, perm: { c: p.shape[0], p: p.shape[1] * p.shape[2] } } })];
}

/**
 * QLinearAveragePool on a uint8 image, stored NHWC in and out (DenseNet's transitions keep the
 * int8 blocks on either side in NHWC codes).
 */
function lowerQLinearAveragePool(n: NodeLowering): ValueRef[] {
  let x = quantizedInput(n, 0);
  if (x.shape.length !== 3) throw new Unsupported(`a ${x.shape.length - 1}-D QLinearAveragePool (only 2-D)`);
  const xAttrs = inputParams(n, 'x', x);
  const y = outputQuant(n);
  if (!y.quant) throw n.shapeError('attribute y_scale is required');
  x = toNhwc(n, x);
  const p = poolStep(n, x.shape);
  const quant = { ...y.quant, perm: { c: p.shape[0], p: p.shape[1] * p.shape[2] } };
  return [n.emit('AvgPoolU8', [x], p.shape, { attrs: { ...p.attrs, ...xAttrs, ...y.attrs }, macs: p.macs, quant })];
}

/**
 * QLinearConcat: each input requantized to the output's parameters through a 256-entry table.
 * Images concatenated along channels stay NHWC (a pixel's channels from each input in turn);
 * any other axis runs on NCHW storage.
 */
function lowerQLinearConcat(n: NodeLowering): ValueRef[] {
  let xs = n.node.inputs.map((_, i) => quantizedInput(n, i));
  const rank = xs[0].shape.length + 1;
  const axis = n.axis(n.int('axis', 1), rank);
  if (axis === 0) throw new Unsupported('Concat along the batch axis');
  const scales = n.node.attrs.x_scales;
  const zps = n.node.attrs.x_zero_points;
  if (!Array.isArray(scales) || scales.length !== xs.length || !Array.isArray(zps) || zps.length !== xs.length) {
    throw n.shapeError(`x_scales and x_zero_points must hold one value per input (${xs.length})`);
  }
  const out = xs[0].shape.slice();
  out[axis - 1] = 0;
  for (const x of xs) {
    if (x.shape.length + 1 !== rank || x.shape.some((d, i) => i !== axis - 1 && d !== xs[0].shape[i])) {
      throw n.shapeError(`inputs ${xs.map((v) => shapeText(['N', ...v.shape])).join(', ')} differ outside axis ${axis}`);
    }
    out[axis - 1] += x.shape[axis - 1];
  }
  const nhwc = rank === 4 && axis === 1;
  xs = xs.map((x) => (nhwc ? toNhwc(n, x) : toPlain(n, x)));
  const y = outputQuant(n);
  if (!y.quant) throw n.shapeError('attribute y_scale is required');
  const attrs = {
    ...y.attrs,
    axis,
    nhwc: nhwc ? 1 : 0,
    x_scales: xs.map((_, i) => Math.fround(scales[i] as number)),
    x_zero_points: xs.map((x, i) => storedZeroPoint(x.quant.dtype, zps[i] as number)),
  };
  const quant = nhwc ? { ...y.quant, perm: { c: out[0], p: out[1] * out[2] } } : y.quant;
  return [n.emit('ConcatU8', xs, out, { attrs, macs: 0, quant })];
}

/**
 * QLinearLookup: each stored code through the node's 256-entry table (src/graph/int8-lookup.ts),
 * in whatever layout the input has (elementwise), so NHWC values stay NHWC.
 */
function lowerQLinearLookup(n: NodeLowering): ValueRef[] {
  const x = quantizedInput(n, 0);
  const { f, name, y } = lookupOf(new QuantAttrs(n.node), { scale: x.quant.scale, zeroPoint: x.quant.zeroPoint, dtype: x.quant.dtype });
  const table = storedTable(lookupTable(f, x.quant, y), y.dtype);
  const quant = x.quant.perm ? { ...y, perm: x.quant.perm } : y;
  return [n.emit('LookupU8', [x], x.shape, { attrs: { table, function: name }, macs: 0, quant })];
}

/** Nearest Resize of a quantized NCHW image: the stored codes are copied (NHWC), parameters kept. */
function lowerResizeU8(n: NodeLowering): ValueRef[] {
  let x = quantizedInput(n, 0);
  if (x.shape.length !== 3) throw new Unsupported(`a rank-${x.shape.length + 1} Resize of a quantized value (only NCHW)`);
  if (n.str('mode', 'nearest') !== 'nearest') throw new Unsupported(`a ${n.str('mode', 'nearest')} Resize of a quantized value (only nearest)`);
  if (n.hasAttr('roi')) throw new Unsupported('a tf_crop_and_resize Resize of a quantized value');
  const step = resizeStep(n, x);
  if (!step) return [x];
  x = toNhwc(n, x);
  const { perm: _, ...q } = x.quant;
  return [n.emit('ResizeU8', [x], step.out, { attrs: step.attrs, macs: 0, quant: { ...q, perm: { c: step.out[0], p: step.out[1] * step.out[2] } } })];
}

/** A SliceU8 of a quantized value (NHWC images stay NHWC), parameters kept. */
function sliceQ(n: NodeLowering, x: ValueRef & { quant: QuantInfo }, starts: number[], steps: number[], out: number[]): ValueRef {
  if (starts.every((s) => s === 0) && steps.every((s) => s === 1) && shapeText(out) === shapeText(x.shape)) return x;
  const nhwc = x.quant.perm !== undefined;
  const { perm: _, ...q } = x.quant;
  const quant = nhwc ? { ...q, perm: { c: out[0], p: out[1] * out[2] } } : q;
  return n.emit('SliceU8', [x], out, { attrs: { starts, steps, nhwc: nhwc ? 1 : 0 }, macs: 0, quant });
}

/** Slice of a quantized value: the stored codes are copied (NHWC images stay NHWC), parameters kept. */
function lowerSliceQ(n: NodeLowering): ValueRef[] {
  let x = quantizedInput(n, 0);
  if (x.quant.perm && x.shape.length !== 3) x = toPlain(n, x);
  const { starts, steps, out } = sliceSpec(n, x);
  return [sliceQ(n, x, starts, steps, out)];
}

/** Transpose of a quantized value: the stored codes moved, in the IR's own order, parameters kept. */
function lowerTransposeQ(n: NodeLowering): ValueRef[] {
  const stored = quantizedInput(n, 0);
  const { perm, out, identity } = transposeSpec(n, stored.shape);
  if (identity) return [stored];
  const { perm: layout, ...plain } = stored.quant;
  // NCHW -> NHWC of an image stored NHWC, and back: the bytes already are the result (a view).
  if (layout && layout.c === stored.shape[0] && perm.join() === '0,2,3,1') return [n.emit('Reshape', [stored], out, { macs: 0, quant: plain })];
  if (!layout && perm.join() === '0,3,1,2') {
    return [n.emit('Reshape', [stored], out, { macs: 0, quant: { ...plain, perm: { c: out[0]!, p: out[1]! * out[2]! } } })];
  }
  const x = toPlain(n, stored);
  return [n.emit('TransposeNdU8', [x], out, { attrs: { perm }, macs: 0, quant: x.quant })];
}

/**
 * ShuffleNet's channel shuffle on a quantized image stored NHWC: Reshape [C, H, W] -> [g, C/g, H, W],
 * Transpose [0, 2, 1, 3, 4], Reshape back to [C, H, W], as one ChannelShuffleU8 step (a byte
 * gather per pixel; the image stays NHWC). Unsupported (lowered node by node instead) otherwise.
 */
export function lowerChannelShuffleQ(first: NodeLowering, transpose: NodeLowering, last: NodeLowering): ValueRef {
  const x = quantizedInput(first, 0);
  const [c, h, w] = x.shape;
  if (x.shape.length !== 3 || !x.quant.perm || x.quant.perm.c !== c) throw new Unsupported('a channel shuffle of an image not stored NHWC');
  const grouped = reshapeTarget(first, x);
  const g = grouped[0]!;
  if (grouped.length !== 4 || g * grouped[1]! !== c || grouped[2] !== h || grouped[3] !== w) throw new Unsupported('not a channel shuffle');
  if (transpose.intList('perm', []).join() !== '0,2,1,3,4') throw new Unsupported('not a channel shuffle');
  const back = reshapeTarget(last, { id: -1, shape: [grouped[1]!, g, h!, w!] });
  if (shapeText(back) !== shapeText(x.shape)) throw new Unsupported('not a channel shuffle');
  return first.emit('ChannelShuffleU8', [x], x.shape.slice(), { attrs: { groups: g }, macs: 0, quant: x.quant });
}

/** Split of a quantized value: one SliceU8 per output. */
function lowerSplitQ(n: NodeLowering): ValueRef[] {
  let x = quantizedInput(n, 0);
  if (x.quant.perm && x.shape.length !== 3) x = toPlain(n, x);
  return splitParts(n, x).map((p) => sliceQ(n, x, p.starts, p.steps, p.out));
}

function lowerFlattenQ(n: NodeLowering): ValueRef[] {
  const x = quantizedInput(n, 0);
  // A flat view keeps the storage order: readers (QLinearGemm, DequantizeLinear) follow perm.
  return [n.view(x, flattenTarget(n, x), 'Flatten')];
}

function lowerReshapeQ(n: NodeLowering): ValueRef[] {
  let x = quantizedInput(n, 0);
  const target = reshapeTarget(n, x);
  if (shapeText(target) === shapeText(x.shape)) return [x];
  if (x.quant.perm && target.length !== 1) x = toPlain(n, x);
  return [n.view(x, target)];
}

/** The float lowering, or the quantized one when input 0 is a quantized value. */
function byInput(float: (n: NodeLowering) => ValueRef[], quantized: (n: NodeLowering) => ValueRef[]) {
  return (n: NodeLowering): ValueRef[] => (n.isQuantized(0) ? quantized(n) : float(n));
}

export const QUANT_LOWERINGS = {
  QuantizeLinear: lowerQuantize,
  DequantizeLinear: lowerDequantize,
  QLinearConv: lowerQLinearConv,
  QLinearGemm: lowerQLinearGemm,
  QLinearAdd: lowerQLinearAdd,
  QLinearConcat: lowerQLinearConcat,
  QLinearAveragePool: lowerQLinearAveragePool,
  QLinearLookup: lowerQLinearLookup,
  QLinearMul: lowerQLinearMul,
  QLinearGlobalAveragePool: lowerQLinearGlobalAveragePool,
  DynamicQGemm: lowerDynamicQGemm,
  MaxPool: byInput(lowerPool, lowerMaxPoolU8),
  Resize: byInput(lowerResize, lowerResizeU8),
  Slice: byInput(lowerSlice, lowerSliceQ),
  Split: byInput(lowerSplit, lowerSplitQ),
  Flatten: byInput(lowerFlatten, lowerFlattenQ),
  Reshape: byInput(lowerReshape, lowerReshapeQ),
  Transpose: byInput(lowerTranspose, lowerTransposeQ),
  Identity: byInput(lowerIdentity, (n) => [quantizedInput(n, 0)]),
  Dropout: byInput(lowerIdentity, (n) => [quantizedInput(n, 0)]),
} as const;

/**
 * DequantizeLinear -> BatchNormalization -> (Relu ->) QuantizeLinear on a uint8 image stored NHWC
 * (DenseNet's pre-activations between int8 layers), as one BatchNormU8 step on the codes with the
 * three steps' bits. Unsupported (lowered node by node instead) for other layouts.
 */
export function lowerBatchNormU8(dq: NodeLowering, bn: NodeLowering, relu: boolean, q: NodeLowering): ValueRef {
  const x = quantizedInput(dq, 0);
  const [c, h, w] = x.shape;
  if (x.shape.length !== 3 || !(x.quant.perm || h * w === 1) || c === 1) throw new Unsupported('BatchNormU8 on a value that is not a uint8 NHWC image');
  if (bn.int('training_mode', 0) !== 0) throw new Unsupported('training_mode=1');
  const weights = batchNormWeights(bn, c);
  const xScale = scaleAttr(dq, 'scale');
  const xZp = zeroPointAttr(dq, 'zero_point', x.quant.dtype);
  const dtype = dtypeAttr(q, 'dtype');
  const yScale = scaleAttr(q, 'scale');
  const yZp = zeroPointAttr(q, 'zero_point', dtype);
  const attrs = {
    x_scale: xScale, x_zero_point: storedZeroPoint(x.quant.dtype, xZp), y_scale: yScale, y_zero_point: storedZeroPoint(dtype, yZp),
    relu: relu ? 1 : 0, epsilon: bn.float('epsilon', 1e-5),
  };
  const quant: QuantInfo = { dtype, scale: yScale, zeroPoint: yZp, ...(x.quant.perm ? { perm: x.quant.perm } : {}) };
  return bn.emit('BatchNormU8', [x], x.shape, { attrs, weights, macs: numel(x.shape), quant });
}
