/**
 * `runInt8Reference`: a plain-JS interpreter of the int8 graph IR (docs/int8-ir.md) and of the float
 * ops a SeedCNN-like graph needs around it. It is the oracle the int8 runtime, the ONNX exporter and
 * importer and the quantizer are tested against: naive loops, float64 / exact-integer accumulators,
 * and the rounding the contract prescribes (QuantizeLinear divides in float32 and rounds half to
 * even; requantization multiplies float32(acc) by the float32 multiplier
 * fround(fround(x_scale * w_scale[o]) / y_scale); a float output is float32(acc) * fround(x_scale *
 * w_scale[o])). Float ops accumulate in float64 and store float32, as the runtime's values are.
 *
 * Supported ops: QuantizeLinear, DequantizeLinear, QLinearConv, QLinearGemm, QLinearAdd,
 * QLinearConcat, QLinearLookup, QLinearMul, QLinearGlobalAveragePool, QLinearAveragePool,
 * DynamicQGemm, and Conv, Gemm, MatMul, MaxPool, AveragePool, Flatten, Reshape, Transpose, Identity, Dropout, Add, Max,
 * Min, Pow, PRelu (broadcasting), Reduce*, the element-wise activations / math of the runtime (Relu,
 * Sigmoid, Tanh, Gelu, Erf, ...), nearest Resize of the last two dims, Slice, Split (Conv/Gemm with
 * `kiln_activation`). MaxPool/Flatten/Reshape/Identity/Dropout/Resize/Slice/Split keep the input's dtype.
 */
import { ErrorCode, KilnError } from '../errors.js';
import { lookupFunction } from '../graph/int8-lookup.js';
import type { Attrs, Graph, GraphNode } from '../graph/ir.js';
import { sliceIndices, sliceParams } from '../graph/constant-folding.js';
import { REDUCE_OPS } from '../graph/shape-inference.js';
import { Tensor } from '../tensor.js';
import { erf } from '../util/erf.js';
import { typeError } from '../validate.js';
import { quantParams, roundHalfEven, storageRange, type QuantKind } from './qparams.js';
import { avgPool2d, conv2d, matmul, maxPool2d, windowOf } from './reference-kernels.js';

export interface Int8ReferenceOptions {
  /** Extra value names to return besides the graph outputs (e.g. intermediate activations). */
  values?: readonly string[];
}

type Values = Map<string, Tensor>;

function fail(node: GraphNode, what: string): never {
  throw new KilnError(ErrorCode.UNSUPPORTED_OP, `Expected a node the int8 reference can run but received ${node.op} '${node.name}': ${what}`);
}

function num(node: GraphNode, name: string, fallback?: number): number {
  const v = node.attrs[name];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(node, `attribute ${name} must be a finite number, found ${String(v)}`);
  return v as number;
}

function kindOf(node: GraphNode, name: string): QuantKind {
  const v = node.attrs[name] ?? 'uint8';
  if (v !== 'uint8' && v !== 'int8') fail(node, `attribute ${name} must be 'uint8' or 'int8', found ${String(v)}`);
  return v as QuantKind;
}

function quantizedTensor(kind: QuantKind, data: ArrayLike<number>, dims: readonly number[]): Tensor {
  return kind === 'uint8' ? new Tensor('uint8', Uint8Array.from(data), dims) : new Tensor('int8', Int8Array.from(data), dims);
}

/** ONNX QuantizeLinear of one value: saturate(roundHalfEven(x / scale) + zero_point), division in float32. */
export function quantizeValue(x: number, scale: number, zeroPoint: number, kind: QuantKind): number {
  const { qmin, qmax } = storageRange(kind);
  const q = roundHalfEven(Math.fround(x / scale)) + zeroPoint;
  return q < qmin ? qmin : q > qmax ? qmax : Number.isNaN(q) ? zeroPoint : q;
}

/** Requantize an exact accumulator (docs/int8-ir.md), with the fused ReLU clamping at the zero point. */
export function requantize(acc: number, multiplier: number, yZeroPoint: number, kind: QuantKind, relu: boolean): number {
  const { qmin, qmax } = storageRange(kind);
  const r = roundHalfEven(Math.fround(Math.fround(acc) * multiplier));
  const lo = relu ? Math.max(qmin - yZeroPoint, 0) : qmin - yZeroPoint;
  const hi = qmax - yZeroPoint;
  return (r < lo ? lo : r > hi ? hi : r) + yZeroPoint;
}

function floatActivation(v: number, attrs: Attrs): number {
  switch (attrs.kiln_activation) {
    case undefined:
      return v;
    case 'Relu':
      return v < 0 ? 0 : v;
    case 'Relu6':
      return v < 0 ? 0 : v > 6 ? 6 : v;
    case 'LeakyRelu':
      return v < 0 ? v * Number(attrs.kiln_activation_alpha ?? 0.01) : v;
    case 'Clip': {
      const lo = Number(attrs.kiln_activation_min ?? -Infinity);
      const hi = Number(attrs.kiln_activation_max ?? Infinity);
      return v < lo ? lo : v > hi ? hi : v;
    }
    default:
      throw new Error(`kiln_activation ${String(attrs.kiln_activation)}`);
  }
}

function input(values: Values, node: GraphNode, i: number): Tensor {
  const name = node.inputs[i];
  const t = name ? values.get(name) : undefined;
  if (!t) fail(node, `input ${i} ('${name ?? ''}') is missing`);
  return t!;
}

function optionalInput(values: Values, node: GraphNode, i: number): Tensor | undefined {
  return node.inputs[i] ? input(values, node, i) : undefined;
}

function expectType(node: GraphNode, t: Tensor, types: readonly string[], what: string): void {
  if (!types.includes(t.type)) fail(node, `${what} must be ${types.join(' or ')}, found ${t.type}`);
}

/** Per-output-channel weight scales (w_scale has O values or 1). */
function channelScale(node: GraphNode, wScale: Tensor, channels: number): (o: number) => number {
  expectType(node, wScale, ['float32'], 'w_scale');
  const s = wScale.data as Float32Array;
  if (s.length !== channels && s.length !== 1) fail(node, `w_scale has ${s.length} values for ${channels} output channels`);
  return s.length === 1 ? () => s[0] : (o) => s[o];
}

function int32Bias(node: GraphNode, bias: Tensor | undefined, channels: number): Int32Array | undefined {
  if (!bias) return undefined;
  expectType(node, bias, ['int32'], 'bias');
  if (bias.size !== channels) fail(node, `bias has ${bias.size} values for ${channels} output channels`);
  return bias.data as Int32Array;
}

/**
 * The epilogue shared by QLinearConv and QLinearGemm: requantize to y_dtype when y_scale is given,
 * else dequantize to float32. `channelOf(i)` is the output channel of accumulator i.
 */
function qlinearEpilogue(node: GraphNode, acc: Float64Array, dims: number[], channelOf: (i: number) => number, xScale: number, wScale: (o: number) => number, bias: Int32Array | undefined): Tensor {
  const relu = node.attrs.kiln_activation === 'Relu';
  if (node.attrs.kiln_activation !== undefined && !relu) fail(node, `kiln_activation ${String(node.attrs.kiln_activation)} (only 'Relu' on int8 nodes)`);
  const quantizedOut = node.attrs.y_scale !== undefined;
  if (quantizedOut) {
    const yScale = num(node, 'y_scale');
    const kind = kindOf(node, 'y_dtype');
    const yZp = num(node, 'y_zero_point', 0);
    const out = new Array<number>(acc.length);
    for (let i = 0; i < acc.length; i++) {
      const o = channelOf(i);
      const multiplier = Math.fround(Math.fround(xScale * wScale(o)) / yScale);
      out[i] = requantize(acc[i] + (bias ? bias[o] : 0), multiplier, yZp, kind, relu);
    }
    return quantizedTensor(kind, out, dims);
  }
  const out = new Float32Array(acc.length);
  for (let i = 0; i < acc.length; i++) {
    const o = channelOf(i);
    const v = Math.fround(Math.fround(acc[i] + (bias ? bias[o] : 0)) * Math.fround(xScale * wScale(o)));
    out[i] = relu && v < 0 ? 0 : v;
  }
  return new Tensor('float32', out, dims);
}

function qlinearConv(values: Values, node: GraphNode): Tensor {
  const x = input(values, node, 0);
  const w = input(values, node, 1);
  expectType(node, x, ['uint8', 'int8'], 'x');
  expectType(node, w, ['int8'], 'w');
  if (x.dims.length !== 4 || w.dims.length !== 4) fail(node, 'only 2-D convolutions (4-D x and w)');
  const o = w.dims[0];
  const wScale = channelScale(node, input(values, node, 2), o);
  const bias = int32Bias(node, optionalInput(values, node, 3), o);
  const { acc, dims } = conv2d(x.data, x.dims, num(node, 'x_zero_point', 0), w.data, w.dims, num(node, 'group', 1), windowOf(node.attrs, w.dims.slice(2)));
  const plane = dims[2] * dims[3];
  return qlinearEpilogue(node, acc, dims, (i) => Math.floor(i / plane) % o, num(node, 'x_scale'), wScale, bias);
}

function qlinearGemm(values: Values, node: GraphNode): Tensor {
  const a = input(values, node, 0);
  const w = input(values, node, 1);
  expectType(node, a, ['uint8', 'int8'], 'a');
  expectType(node, w, ['int8'], 'w');
  if (a.dims.length < 2 || w.dims.length !== 2) fail(node, 'a must be [M, K] or [..., K] and w 2-D');
  const transB = num(node, 'transB', 0) !== 0;
  // [..., K]: every row of the last axis through the same product.
  const k = a.dims[a.dims.length - 1]!;
  const lead = a.dims.slice(0, -1);
  const { acc, n } = matmul(a.data, [a.data.length / k, k], num(node, 'a_zero_point', 0), w.data, w.dims, false, transB);
  const wScale = channelScale(node, input(values, node, 2), n);
  const bias = int32Bias(node, optionalInput(values, node, 3), n);
  return qlinearEpilogue(node, acc, [...lead, n], (i) => i % n, num(node, 'a_scale'), wScale, bias);
}

function qlinearAdd(values: Values, node: GraphNode): Tensor {
  const a = input(values, node, 0);
  const b = input(values, node, 1);
  expectType(node, a, ['uint8', 'int8'], 'a');
  expectType(node, b, ['uint8', 'int8'], 'b');
  if (a.size !== b.size) fail(node, `a and b must have the same shape, found [${a.dims.join(', ')}] and [${b.dims.join(', ')}]`);
  const [as, az, bs, bz, ys] = ['a_scale', 'a_zero_point', 'b_scale', 'b_zero_point', 'y_scale'].map((k) => num(node, k, k.endsWith('zero_point') ? 0 : undefined));
  const yz = num(node, 'y_zero_point', 0);
  const kind = kindOf(node, 'y_dtype');
  const relu = node.attrs.kiln_activation === 'Relu';
  const { qmin, qmax } = storageRange(kind);
  const lo = relu ? Math.max(qmin, yz) : qmin;
  // The sum in y's steps: each scale over y_scale once (float32), as the convolutions requantize;
  // capped at 1e36 so that no product is infinite and no sum NaN.
  const cap = Math.fround(1e36);
  const ar = Math.min(Math.fround(as / ys), cap);
  const br = Math.min(Math.fround(bs / ys), cap);
  const out = new Array<number>(a.size);
  for (let i = 0; i < a.size; i++) {
    const q = roundHalfEven(Math.fround(Math.fround(ar * (a.data[i] - az)) + Math.fround(br * (b.data[i] - bz)))) + yz;
    out[i] = q < lo ? lo : q > qmax ? qmax : q;
  }
  return quantizedTensor(kind, out, a.dims);
}

/**
 * QLinearMul: a [C, H, W] value times b of the same shape or [C, 1, 1] (a channel gate), each
 * dequantized and the product rounded in float32 before the division by y_scale.
 */
function qlinearMul(values: Values, node: GraphNode): Tensor {
  const a = input(values, node, 0);
  const b = input(values, node, 1);
  expectType(node, a, ['uint8', 'int8'], 'a');
  expectType(node, b, ['uint8', 'int8'], 'b');
  const batch = a.dims[0]!;
  const per = a.size / batch;
  const channels = a.dims[1]!;
  const gate = b.size === batch * channels && a.size !== b.size;
  if (!gate && a.size !== b.size) fail(node, `b must have a's shape or [N, C, 1, 1], found [${a.dims.join(', ')}] and [${b.dims.join(', ')}]`);
  const [as, az, bs, bz, ys] = ['a_scale', 'a_zero_point', 'b_scale', 'b_zero_point', 'y_scale'].map((k) => num(node, k, k.endsWith('zero_point') ? 0 : undefined));
  const yz = num(node, 'y_zero_point', 0);
  const kind = kindOf(node, 'y_dtype');
  const { qmin, qmax } = storageRange(kind);
  const plane = per / channels;
  const out = new Array<number>(a.size);
  for (let i = 0; i < a.size; i++) {
    const j = gate ? Math.floor(i / per) * channels + Math.floor((i % per) / plane) : i;
    const real = Math.fround(Math.fround(as * (a.data[i] - az)) * Math.fround(bs * (b.data[j] - bz)));
    const q = roundHalfEven(Math.fround(real / ys)) + yz;
    out[i] = q < qmin ? qmin : q > qmax ? qmax : q;
  }
  return quantizedTensor(kind, out, a.dims);
}

/** QLinearGlobalAveragePool: y = Q(x_scale * float32(sum(x - x_zp)) / float32(H * W)) per channel. */
function qlinearGlobalAveragePool(values: Values, node: GraphNode): Tensor {
  const x = input(values, node, 0);
  expectType(node, x, ['uint8', 'int8'], 'x');
  if (x.dims.length !== 4) fail(node, 'only NCHW inputs');
  const [n, c, h, w] = x.dims as number[];
  const [xs, xz, ys] = [num(node, 'x_scale'), num(node, 'x_zero_point', 0), num(node, 'y_scale')];
  const yz = num(node, 'y_zero_point', 0);
  const kind = kindOf(node, 'y_dtype');
  const { qmin, qmax } = storageRange(kind);
  const plane = h! * w!;
  const out: number[] = [];
  for (let i = 0; i < n! * c!; i++) {
    let sum = 0;
    for (let p = 0; p < plane; p++) sum += x.data[i * plane + p]! - xz;
    const real = Math.fround(Math.fround(Math.fround(sum) / plane) * Math.fround(xs));
    const q = roundHalfEven(Math.fround(real / ys)) + yz;
    out.push(q < qmin ? qmin : q > qmax ? qmax : q);
  }
  return quantizedTensor(kind, out, [n!, c!, 1, 1]);
}

/**
 * QLinearAveragePool: per window, y = Q(x_scale * float32(sum(x - x_zp)) / float32(divisor)), the
 * sum over the taps inside the image, the divisor as AveragePool's (count_include_pad, ceil_mode).
 */
function qlinearAveragePool(values: Values, node: GraphNode): Tensor {
  const x = input(values, node, 0);
  expectType(node, x, ['uint8', 'int8'], 'x');
  if (x.dims.length !== 4) fail(node, 'only 2-D pooling');
  const [xs, xz, ys] = [num(node, 'x_scale'), num(node, 'x_zero_point', 0), num(node, 'y_scale')];
  const yz = num(node, 'y_zero_point', 0);
  const kind = kindOf(node, 'y_dtype');
  const { qmin, qmax } = storageRange(kind);
  const centred = Array.from(x.data as ArrayLike<number>, (v) => v - xz);
  const code = (sum: number, divisor: number): number => {
    // A window over padding only averages nothing: the real value 0.
    const real = divisor === 0 ? 0 : Math.fround(Math.fround(Math.fround(sum) / divisor) * Math.fround(xs));
    const q = roundHalfEven(Math.fround(real / ys)) + yz;
    return q < qmin ? qmin : q > qmax ? qmax : q;
  };
  const { out, dims } = avgPool2d(centred, x.dims, windowOf(node.attrs), num(node, 'count_include_pad', 0) !== 0, code);
  return quantizedTensor(kind, Array.from(out), dims);
}

/** QLinearLookup element by element: Q_y(f(DQ_x(q))), without the runtime's table. */
function qlinearLookup(values: Values, node: GraphNode): Tensor {
  const x = input(values, node, 0);
  expectType(node, x, ['uint8', 'int8'], 'x');
  const attrs = node.attrs as Record<string, unknown>;
  const params = { alpha: attrs.alpha as number | undefined, beta: attrs.beta as number | undefined, gamma: attrs.gamma as number | undefined };
  const f = lookupFunction(String(attrs.kiln_function), params);
  if (!f) fail(node, `unknown kiln_function '${String(attrs.kiln_function)}'`);
  const [xs, xz] = [Math.fround(num(node, 'x_scale')), num(node, 'x_zero_point', 0)];
  const [ys, yz] = [Math.fround(num(node, 'y_scale')), num(node, 'y_zero_point', 0)];
  const kind = kindOf(node, 'y_dtype');
  const { qmin, qmax } = storageRange(kind);
  return quantizedTensor(kind, Array.from(x.data, (q) => {
    const v = Math.fround(f!(Math.fround(Math.fround(q - xz) * xs)));
    if (Number.isNaN(v)) return yz;
    const c = roundHalfEven(Math.fround(v / ys)) + yz;
    return c < qmin ? qmin : c > qmax ? qmax : c;
  }), x.dims);
}

/** Each input requantized to the output's parameters (float32 arithmetic, as QLinearAdd), then concatenated. */
function qlinearConcat(values: Values, node: GraphNode): Tensor {
  const xs = node.inputs.map((_, i) => input(values, node, i));
  const scales = node.attrs.x_scales as number[];
  const zps = node.attrs.x_zero_points as number[];
  const ys = num(node, 'y_scale');
  const yz = num(node, 'y_zero_point', 0);
  const kind = kindOf(node, 'y_dtype');
  const { qmin, qmax } = storageRange(kind);
  const r = xs[0]!.dims.length;
  const axis = num(node, 'axis', 1);
  const a = axis < 0 ? axis + r : axis;
  const outer = xs[0]!.dims.slice(0, a).reduce((p, q) => p * q, 1);
  const dims = xs[0]!.dims.slice();
  dims[a] = xs.reduce((t, x) => t + x.dims[a]!, 0);
  const out: number[] = [];
  for (let o = 0; o < outer; o++) {
    xs.forEach((x, i) => {
      expectType(node, x, ['uint8', 'int8'], `input ${i}`);
      const slab = x.size / outer;
      for (let k = 0; k < slab; k++) {
        const real = Math.fround(Math.fround(scales[i]!) * (x.data[o * slab + k]! - zps[i]!));
        const q = roundHalfEven(Math.fround(real / ys)) + yz;
        out.push(q < qmin ? qmin : q > qmax ? qmax : q);
      }
    });
  }
  return quantizedTensor(kind, out, dims);
}

/** ONNX DynamicQuantizeLinear of the whole input, then an int8 product dequantized with a float bias. */
function dynamicQGemm(values: Values, node: GraphNode): Tensor {
  const a = input(values, node, 0);
  const w = input(values, node, 1);
  expectType(node, a, ['float32'], 'a');
  expectType(node, w, ['int8'], 'w');
  if (a.dims.length !== 2 || w.dims.length !== 2) fail(node, 'a and w must be 2-D');
  let min = 0;
  let max = 0;
  for (const v of a.data as Float32Array) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const p = quantParams({ min, max }, 'uint8');
  const q = Array.from(a.data as Float32Array, (v) => quantizeValue(v, p.scale, p.zeroPoint, 'uint8'));
  const transB = num(node, 'transB', 0) !== 0;
  const { acc, m, n } = matmul(q, a.dims, p.zeroPoint, w.data, w.dims, false, transB);
  const wScale = channelScale(node, input(values, node, 2), n);
  const bias = optionalInput(values, node, 3);
  if (bias) {
    expectType(node, bias, ['float32'], 'bias');
    if (bias.size !== n) fail(node, `bias has ${bias.size} values for ${n} outputs`);
  }
  const out = new Float32Array(m * n);
  for (let i = 0; i < out.length; i++) {
    const o = i % n;
    let v = Math.fround(Math.fround(acc[i]) * Math.fround(p.scale * wScale(o)));
    if (bias) v = Math.fround(v + bias.data[o]);
    out[i] = floatActivation(v, node.attrs);
  }
  return new Tensor('float32', out, [m, n]);
}

function floatConv(values: Values, node: GraphNode): Tensor {
  const x = input(values, node, 0);
  const w = input(values, node, 1);
  expectType(node, x, ['float32'], 'x');
  if (x.dims.length !== 4 || w.dims.length !== 4) fail(node, 'only 2-D convolutions');
  const bias = optionalInput(values, node, 2);
  const { acc, dims } = conv2d(x.data, x.dims, 0, w.data, w.dims, num(node, 'group', 1), windowOf(node.attrs, w.dims.slice(2)));
  const plane = dims[2] * dims[3];
  const out = new Float32Array(acc.length);
  for (let i = 0; i < acc.length; i++) out[i] = floatActivation(acc[i] + (bias ? bias.data[Math.floor(i / plane) % dims[1]] : 0), node.attrs);
  return new Tensor('float32', out, dims);
}

function floatGemm(values: Values, node: GraphNode): Tensor {
  const a = input(values, node, 0);
  const w = input(values, node, 1);
  expectType(node, a, ['float32'], 'a');
  const isMatMul = node.op === 'MatMul';
  if (a.dims.length !== 2 || w.dims.length !== 2) fail(node, 'only 2-D operands');
  const { acc, m, n } = matmul(a.data, a.dims, 0, w.data, w.dims, !isMatMul && num(node, 'transA', 0) !== 0, !isMatMul && num(node, 'transB', 0) !== 0);
  const alpha = isMatMul ? 1 : num(node, 'alpha', 1);
  const beta = isMatMul ? 0 : num(node, 'beta', 1);
  const c = isMatMul ? undefined : optionalInput(values, node, 2);
  const cAt = (i: number, j: number): number => {
    if (!c) return 0;
    if (c.size === 1) return c.data[0];
    if (c.size === n) return c.data[j];
    if (c.size === m * n) return c.data[i * n + j];
    return fail(node, `C has ${c.size} values for a ${m}x${n} output`);
  };
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[i * n + j] = floatActivation(alpha * acc[i * n + j] + beta * cAt(i, j), node.attrs);
  return new Tensor('float32', out, [m, n]);
}

/** Numpy broadcasting of two float tensors. */
/** A float op over numpy-broadcast inputs (Add, Max, Min, Pow, PRelu), f folded left to right. */
function floatBroadcast(values: Values, node: GraphNode, f: (x: number, y: number) => number): Tensor {
  const ts = node.inputs.map((_, i) => input(values, node, i));
  ts.forEach((t, i) => expectType(node, t, ['float32'], `input ${i}`));
  const rank = Math.max(...ts.map((t) => t.dims.length));
  const pad = (d: readonly number[]) => [...new Array<number>(rank - d.length).fill(1), ...d];
  const padded = ts.map((t) => pad(t.dims));
  const dims = padded[0].map((_, i) => {
    const sizes = padded.map((d) => d[i]);
    const d = Math.max(...sizes);
    if (sizes.some((x) => x !== d && x !== 1)) fail(node, `shapes ${ts.map((t) => `[${t.dims.join(', ')}]`).join(' and ')} do not broadcast`);
    return d;
  });
  const size = dims.reduce((x, y) => x * y, 1);
  const out = new Float32Array(size);
  const index = new Array<number>(rank).fill(0);
  for (let i = 0; i < size; i++) {
    let acc = 0;
    padded.forEach((pd, t) => {
      let at = 0;
      for (let k = 0; k < rank; k++) at = at * pd[k] + (pd[k] === 1 ? 0 : index[k]);
      const v = ts[t].data[at];
      acc = t === 0 ? v : f(acc, v);
    });
    out[i] = acc;
    for (let k = rank - 1; k >= 0 && ++index[k] === dims[k]; k--) index[k] = 0;
  }
  return new Tensor('float32', out, dims);
}

const softplus = (v: number): number => (v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v)));

/** The element-wise float ops (Relu and Sigmoid included), by op, with the node's attributes. */
const UNARY: Record<string, (v: number, node: GraphNode) => number> = {
  Relu: (v) => (v < 0 ? 0 : v),
  Sigmoid: (v) => 1 / (1 + Math.exp(-v)),
  Tanh: Math.tanh,
  LeakyRelu: (v, n) => (v < 0 ? v * num(n, 'alpha', 0.01) : v),
  HardSigmoid: (v, n) => Math.max(0, Math.min(1, num(n, 'alpha', 0.2) * v + num(n, 'beta', 0.5))),
  HardSwish: (v) => v * Math.max(0, Math.min(1, v / 6 + 0.5)),
  Clip: (v, n) => Math.min(num(n, 'max', Infinity), Math.max(num(n, 'min', -Infinity), v)),
  Abs: Math.abs,
  Neg: (v) => -v,
  Sqrt: Math.sqrt,
  Exp: Math.exp,
  Log: Math.log,
  Reciprocal: (v) => 1 / v,
  Floor: Math.floor,
  Round: roundHalfEven,
  Ceil: Math.ceil,
  Erf: erf,
  Softplus: softplus,
  Softsign: (v) => v / (1 + Math.abs(v)),
  Elu: (v, n) => (v < 0 ? num(n, 'alpha', 1) * Math.expm1(v) : v),
  Selu: (v, n) => num(n, 'gamma', 1.05070102214813232421875) * (v <= 0 ? num(n, 'alpha', 1.67326319217681884765625) * Math.expm1(v) : v),
  Celu: (v, n) => (v < 0 ? num(n, 'alpha', 1) * Math.expm1(v / num(n, 'alpha', 1)) : v),
  Mish: (v) => v * Math.tanh(softplus(v)),
  Gelu: (v, n) => (n.attrs.approximate === 'tanh'
    ? 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))
    : 0.5 * v * (1 + erf(v / Math.SQRT2))),
  ThresholdedRelu: (v, n) => (v > num(n, 'alpha', 1) ? v : 0),
};

/** Reduce* over the canonical `axes` with `keepdims`. */
function floatReduce(values: Values, node: GraphNode): Tensor {
  const x = input(values, node, 0);
  expectType(node, x, ['float32'], 'x');
  const axes = node.attrs.axes;
  if (!Array.isArray(axes)) fail(node, 'its axes attribute');
  const reduced = x.dims.map((_, i) => (axes as number[]).includes(i));
  const outFull = x.dims.map((d, i) => (reduced[i] ? 1 : d));
  const groups: number[][] = Array.from({ length: outFull.reduce((a, b) => a * b, 1) }, () => []);
  const index = new Array<number>(x.dims.length).fill(0);
  for (let i = 0; i < x.size; i++) {
    let o = 0;
    for (let k = 0; k < x.dims.length; k++) o = o * outFull[k] + (reduced[k] ? 0 : index[k]);
    groups[o].push(x.data[i]);
    for (let k = x.dims.length - 1; k >= 0 && ++index[k] === x.dims[k]; k--) index[k] = 0;
  }
  const sum = (v: number[], f: (x: number) => number) => v.reduce((a, b) => a + f(b), 0);
  const fns: Record<string, (v: number[]) => number> = {
    ReduceSum: (v) => sum(v, (a) => a),
    ReduceMean: (v) => sum(v, (a) => a) / v.length,
    ReduceMax: (v) => (v.some(Number.isNaN) ? Number.NaN : Math.max(...v)),
    ReduceMin: (v) => (v.some(Number.isNaN) ? Number.NaN : Math.min(...v)),
    ReduceProd: (v) => v.reduce((a, b) => a * b, 1),
    ReduceL1: (v) => sum(v, Math.abs),
    ReduceL2: (v) => Math.sqrt(sum(v, (a) => a * a)),
    ReduceSumSquare: (v) => sum(v, (a) => a * a),
    ReduceLogSum: (v) => Math.log(sum(v, (a) => a)),
    ReduceLogSumExp: (v) => {
      const m = Math.max(...v);
      return Number.isFinite(m) ? m + Math.log(sum(v, (a) => Math.exp(a - m))) : m;
    },
  };
  const dims = num(node, 'keepdims', 1) !== 0 ? outFull : x.dims.filter((_, i) => !reduced[i]);
  return new Tensor('float32', Float32Array.from(groups, fns[node.op]!), dims);
}

function sameData(x: Tensor, data: ArrayLike<number>, dims: readonly number[]): Tensor {
  if (x.type === 'float32') return new Tensor('float32', Float32Array.from(data), dims);
  if (x.type === 'uint8' || x.type === 'int8') return quantizedTensor(x.type, data, dims);
  return new Tensor('int32', Int32Array.from(data), dims);
}

function reshape(node: GraphNode, x: Tensor): number[] {
  const shape = node.attrs.shape;
  if (!Array.isArray(shape)) fail(node, 'attribute shape must be an int array (canonical form)');
  const dims = (shape as number[]).map((d, i) => (d === 0 ? x.dims[i] : d));
  const known = dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const out = dims.map((d) => (d === -1 ? x.size / known : d));
  if (out.reduce((a, b) => a * b, 1) !== x.size || out.some((d) => !Number.isInteger(d))) fail(node, `cannot reshape [${x.dims.join(', ')}] to [${dims.join(', ')}]`);
  return out;
}

function runNode(values: Values, node: GraphNode): Tensor {
  if (REDUCE_OPS.has(node.op)) return floatReduce(values, node);
  switch (node.op) {
    case 'QuantizeLinear': {
      const x = input(values, node, 0);
      expectType(node, x, ['float32'], 'x');
      const kind = kindOf(node, 'dtype');
      const scale = num(node, 'scale');
      const zp = num(node, 'zero_point', 0);
      return quantizedTensor(kind, Array.from(x.data as Float32Array, (v) => quantizeValue(v, scale, zp, kind)), x.dims);
    }
    case 'DequantizeLinear': {
      const q = input(values, node, 0);
      expectType(node, q, ['uint8', 'int8'], 'q');
      const scale = num(node, 'scale');
      const zp = num(node, 'zero_point', 0);
      return new Tensor('float32', Float32Array.from(q.data, (v) => (v - zp) * scale), q.dims);
    }
    case 'QLinearConv':
      return qlinearConv(values, node);
    case 'QLinearGemm':
      return qlinearGemm(values, node);
    case 'QLinearAdd':
      return qlinearAdd(values, node);
    case 'QLinearConcat':
      return qlinearConcat(values, node);
    case 'QLinearLookup':
      return qlinearLookup(values, node);
    case 'QLinearMul':
      return qlinearMul(values, node);
    case 'QLinearGlobalAveragePool':
      return qlinearGlobalAveragePool(values, node);
    case 'QLinearAveragePool':
      return qlinearAveragePool(values, node);
    case 'DynamicQGemm':
      return dynamicQGemm(values, node);
    case 'Conv':
      return floatConv(values, node);
    case 'Gemm':
    case 'MatMul':
      return floatGemm(values, node);
    case 'Add':
      return floatBroadcast(values, node, (a, b) => a + b);
    case 'Mul':
      return floatBroadcast(values, node, (a, b) => a * b);
    case 'Max':
      return floatBroadcast(values, node, (a, b) => (Number.isNaN(a) || a > b ? a : b));
    case 'Min':
      return floatBroadcast(values, node, (a, b) => (Number.isNaN(a) || a < b ? a : b));
    case 'Pow':
      return floatBroadcast(values, node, (a, b) => a ** b);
    case 'PRelu':
      return floatBroadcast(values, node, (a, b) => (a < 0 ? a * b : a));
    case 'MaxPool': {
      const x = input(values, node, 0);
      if (x.dims.length !== 4) fail(node, 'only 2-D pooling');
      const { out, dims } = maxPool2d(x.data, x.dims, windowOf(node.attrs));
      return sameData(x, out, dims);
    }
    case 'Resize':
      return resizeNearest(node, input(values, node, 0));
    case 'Slice': {
      const x = input(values, node, 0);
      return sliceOf(x, sliceParams(node, x.dims));
    }
    case 'AveragePool': {
      const x = input(values, node, 0);
      expectType(node, x, ['float32'], 'x');
      if (x.dims.length !== 4) fail(node, 'only 2-D pooling');
      const { out, dims } = avgPool2d(x.data, x.dims, windowOf(node.attrs), num(node, 'count_include_pad', 0) !== 0);
      return new Tensor('float32', Float32Array.from(out), dims);
    }
    case 'Flatten': {
      const x = input(values, node, 0);
      const axis = num(node, 'axis', 1);
      const lead = x.dims.slice(0, axis).reduce((a, b) => a * b, 1);
      return sameData(x, x.data, [lead, x.size / lead]);
    }
    case 'Reshape': {
      const x = input(values, node, 0);
      return sameData(x, x.data, reshape(node, x));
    }
    case 'Transpose':
      return transposeOf(node, input(values, node, 0));
    case 'Identity':
    case 'Dropout':
      return input(values, node, 0);
    default: {
      const f = UNARY[node.op];
      if (f === undefined) return fail(node, 'op not implemented in the reference');
      const x = input(values, node, 0);
      expectType(node, x, ['float32'], 'x');
      return new Tensor('float32', Float32Array.from(x.data as Float32Array, (v) => f(v, node)), x.dims);
    }
  }
}

/** Transpose (any dtype): output index (i_0 .. i_r) reads input index with i_d at axis perm[d]. */
function transposeOf(node: GraphNode, x: Tensor): Tensor {
  const rank = x.dims.length;
  const perm = (node.attrs.perm as number[] | undefined) ?? Array.from({ length: rank }, (_, d) => rank - 1 - d);
  if (perm.length !== rank || [...perm].sort((a, b) => a - b).some((p, d) => p !== d)) fail(node, `perm [${perm}] is not a permutation of ${rank} axes`);
  const dims = perm.map((p) => x.dims[p]!);
  const strides = x.dims.map((_, d) => x.dims.slice(d + 1).reduce((a, b) => a * b, 1));
  const out: number[] = new Array(x.size);
  const index = new Array<number>(rank).fill(0);
  for (let o = 0; o < x.size; o++) {
    let from = 0;
    for (let d = 0; d < rank; d++) from += index[d]! * strides[perm[d]!]!;
    out[o] = x.data[from]!;
    for (let d = rank - 1; d >= 0 && ++index[d]! === dims[d]; d--) index[d] = 0;
  }
  return sameData(x, out, dims);
}

/** The elements a Slice keeps (any dtype). */
function sliceOf(x: Tensor, p: { axes: number[]; starts: number[]; ends: number[]; steps: number[] }): Tensor {
  const keep = x.dims.map((d) => Array.from({ length: d }, (_, i) => i));
  p.axes.forEach((a, i) => (keep[a] = sliceIndices(x.dims[a]!, p.starts[i]!, p.ends[i]!, p.steps[i]!)));
  const strides = x.dims.map((_, d) => x.dims.slice(d + 1).reduce((a, b) => a * b, 1));
  const out: number[] = [];
  const walk = (d: number, offset: number): void => {
    if (d === keep.length) {
      out.push(x.data[offset]!);
      return;
    }
    for (const i of keep[d]!) walk(d + 1, offset + i * strides[d]!);
  };
  walk(0, 0);
  return sameData(x, out, keep.map((k) => k.length));
}

/** Split: each part a Slice along `axis`. */
function splitOf(node: GraphNode, x: Tensor): Tensor[] {
  const axis = num(node, 'axis', 0);
  const a = axis < 0 ? axis + x.dims.length : axis;
  const parts = node.attrs.split as number[];
  let at = 0;
  return parts.map((size) => {
    const t = sliceOf(x, { axes: [a], starts: [at], ends: [at + size], steps: [1] });
    at += size;
    return t;
  });
}

/** Input coordinate of output position x (float32 arithmetic, as onnxruntime computes it). */
function originalCoordinate(mode: string, x: number, scale: number, outLen: number, inLen: number): number {
  const f = Math.fround;
  switch (mode) {
    case 'half_pixel':
      return f(f(f(x + 0.5) / scale) - 0.5);
    case 'pytorch_half_pixel':
      return outLen > 1 ? f(f(f(x + 0.5) / scale) - 0.5) : 0;
    case 'align_corners':
      return outLen === 1 ? 0 : f(f(x * (inLen - 1)) / (outLen - 1));
    case 'tf_half_pixel_for_nn':
      return f(f(x + 0.5) / scale);
    case 'asymmetric':
      return f(x / scale);
    default:
      throw new Error(mode);
  }
}

function nearestIndex(mode: string, x: number): number {
  switch (mode) {
    case 'floor':
      return Math.floor(x);
    case 'ceil':
      return Math.ceil(x);
    case 'round_prefer_ceil':
      return x < 0 ? -Math.round(-x) : Math.round(x); // half away from zero, as std::round
    default: // round_prefer_floor
      return x === Math.trunc(x) + 0.5 ? Math.floor(x) : x < 0 ? -Math.round(-x) : Math.round(x);
  }
}

/** Nearest Resize of the last two dims (any dtype: codes are copied). */
function resizeNearest(node: GraphNode, x: Tensor): Tensor {
  if ((node.attrs.mode ?? 'nearest') !== 'nearest') fail(node, 'only nearest Resize');
  const coord = String(node.attrs.coordinate_transformation_mode ?? 'half_pixel');
  if (!['half_pixel', 'pytorch_half_pixel', 'align_corners', 'tf_half_pixel_for_nn', 'asymmetric'].includes(coord)) fail(node, `coordinate_transformation_mode ${coord}`);
  const nearest = String(node.attrs.nearest_mode ?? 'round_prefer_floor');
  const scales = node.attrs.scales as number[] | undefined;
  const sizes = node.attrs.sizes as number[] | undefined;
  const r = x.dims.length;
  if (r < 2 || scales === undefined || scales.length !== r) fail(node, 'scales for every dim of a rank >= 2 input');
  const outDims = x.dims.map((d, i) => (i < r - 2 ? d : sizes !== undefined ? sizes[i]! : Math.floor(Math.fround(Math.fround(scales[i]!) * d))));
  const table = (axis: number): number[] =>
    Array.from({ length: outDims[axis]! }, (_, j) => {
      const inLen = x.dims[axis]!;
      if (inLen === 1) return 0;
      const i = nearestIndex(nearest, originalCoordinate(coord, j, Math.fround(scales[axis]!), outDims[axis]!, inLen));
      return Math.max(0, Math.min(inLen - 1, i));
    });
  const [hs, ws] = [table(r - 2), table(r - 1)];
  const [h, w] = [x.dims[r - 2]!, x.dims[r - 1]!];
  const planes = x.size / (h * w);
  const out = new (x.data.constructor as new (n: number) => typeof x.data)(planes * hs.length * ws.length);
  let o = 0;
  for (let p = 0; p < planes; p++) {
    for (const ih of hs) for (const iw of ws) out[o++] = x.data[p * h * w + ih * w + iw]!;
  }
  return sameData(x, out, outDims);
}

/**
 * Runs `graph` on `feeds` with naive float64 / exact-integer loops.
 * @param feeds one tensor per graph input (batch first), by input name
 * @returns the graph outputs (and any `options.values`) by name: float32 tensors, or uint8/int8
 *   tensors for values still quantized
 * @throws KilnError ERR_KILN_UNSUPPORTED_OP for an op or attribute the reference does not know
 */
export function runInt8Reference(graph: Graph, feeds: Record<string, Tensor>, options: Int8ReferenceOptions = {}): Record<string, Tensor> {
  if (feeds === null || typeof feeds !== 'object') throw typeError('feeds', 'an object of tensors by input name', feeds);
  const values: Values = new Map(graph.initializers);
  for (const v of graph.inputs) {
    if (graph.initializers.has(v.name)) continue;
    const t = feeds[v.name];
    if (!(t instanceof Tensor)) throw typeError(`feeds.${v.name}`, 'a Tensor', t);
    values.set(v.name, t);
  }
  for (const node of graph.nodes) {
    if (node.op === 'Split') {
      splitOf(node, input(values, node, 0)).forEach((t, i) => {
        if (node.outputs[i]) values.set(node.outputs[i]!, t);
      });
      continue;
    }
    const out = runNode(values, node);
    values.set(node.outputs[0], out);
  }
  const result: Record<string, Tensor> = {};
  for (const name of [...graph.outputs.map((o) => o.name), ...(options.values ?? [])]) {
    const t = values.get(name);
    if (!t) throw new KilnError(ErrorCode.INVALID_ARG, `Expected a value of the graph for options.values but received '${name}'`);
    result[name] = t;
  }
  return result;
}
