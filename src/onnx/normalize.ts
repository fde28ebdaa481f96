/**
 * ONNX nodes of any opset 1..28 rewritten into Kiln's canonical form (src/graph/ir.ts): constant
 * operator inputs (Reshape shape, Squeeze/Unsqueeze axes, Pad pads, Clip bounds, Slice starts...)
 * become attributes, defaults are filled in, axes made non-negative, `auto_pad` resolved into
 * explicit pads from the static spatial shape, and opset < 13 Softmax (which coerces its input
 * to 2-D at `axis`) expressed with opset-13 semantics.
 */
import type { GraphNode } from '../graph/ir.js';
import { isSymbolic, type KnownValue } from '../graph/constant-folding.js';
import { dimProduct, type Shape } from '../graph/shape-inference.js';
import { Tensor } from '../tensor.js';

/** A configuration Kiln cannot run; the importer lists it with the node. */
export class Unsupported extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

export interface NormalizeContext {
  /** Default-domain opset of the model. */
  opset: number;
  /** Value of a constant (or symbolic shape) input, if known at import. */
  known(name: string): KnownValue | undefined;
  /** Shape of a value, if known. */
  shape(name: string): Shape | undefined;
  /** Whether a later node or a graph output reads this value. */
  used(name: string): boolean;
  /** A name used nowhere in the model yet. */
  fresh(base: string): string;
  /** The ONNX element type a graph input, initializer or value_info declares for a value, if any. */
  elemType(name: string): number | undefined;
}

const FLT_MAX = 3.4028234663852886e38;

// ---------------------------------------------------------------------------------------------

function ints(node: GraphNode, name: string): number[] | undefined {
  const v = node.attrs[name];
  if (v === undefined) return undefined;
  if (typeof v === 'number') return [v];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number' || !Number.isInteger(x))) {
    throw new TypeError(`Expected a list of integers for attribute ${name} of ${node.op} '${node.name}' but received ${String(v)}`);
  }
  return v as number[];
}

function int(node: GraphNode, name: string, fallback: number): number {
  const v = node.attrs[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new TypeError(`Expected an integer for attribute ${name} of ${node.op} '${node.name}' but received ${String(v)}`);
  }
  return v;
}

function float(node: GraphNode, name: string, fallback: number): number {
  const v = node.attrs[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'number') throw new TypeError(`Expected a number for attribute ${name} of ${node.op} '${node.name}' but received ${String(v)}`);
  return v;
}

function str(node: GraphNode, name: string, fallback: string): string {
  const v = node.attrs[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'string') throw new TypeError(`Expected a string for attribute ${name} of ${node.op} '${node.name}' but received ${String(v)}`);
  return v;
}

function needShape(ctx: NormalizeContext, node: GraphNode, index = 0): Shape {
  const s = ctx.shape(node.inputs[index] ?? '');
  if (s === undefined) throw new TypeError(`Expected a known shape for input '${node.inputs[index]}' of ${node.op} '${node.name}' but received none`);
  return s;
}

/** A constant operator input (undefined when omitted); a computed one cannot be run. */
function param(ctx: NormalizeContext, node: GraphNode, index: number, what: string): KnownValue | undefined {
  const name = node.inputs[index];
  if (name === undefined || name === '') return undefined;
  const v = ctx.known(name);
  if (v === undefined) throw new Unsupported(`${what} computed at run time`);
  return v;
}

function paramInts(ctx: NormalizeContext, node: GraphNode, index: number, what: string): number[] | undefined {
  const v = param(ctx, node, index, what);
  if (v === undefined) return undefined;
  if (isSymbolic(v)) throw new Unsupported(`${what} that depends on a dynamic dimension`);
  if (v.type === 'float32') throw new TypeError(`Expected integers for the ${what} of ${node.op} '${node.name}' but received a float tensor`);
  return Array.from(v.data as ArrayLike<number>);
}

function paramScalar(ctx: NormalizeContext, node: GraphNode, index: number, what: string): number | undefined {
  const v = param(ctx, node, index, what);
  if (v === undefined) return undefined;
  if (isSymbolic(v) || v.size !== 1) throw new TypeError(`Expected a scalar for the ${what} of ${node.op} '${node.name}' but received ${isSymbolic(v) ? 'a shape' : `${v.size} values`}`);
  return v.data[0]!;
}

function axis(node: GraphNode, value: number, rank: number, what = 'axis'): number {
  if (!Number.isInteger(value) || value < -rank || value >= rank) {
    throw new RangeError(`Expected ${what} in [${-rank}, ${rank - 1}] for ${node.op} '${node.name}' but received ${value}`);
  }
  return value < 0 ? value + rank : value;
}

/** The node with only its first output, after checking the others are not read. */
function firstOutputOnly(ctx: NormalizeContext, node: GraphNode, what: string): string[] {
  for (const o of node.outputs.slice(1)) if (o !== '' && ctx.used(o)) throw new Unsupported(`its ${what} output`);
  return node.outputs.slice(0, 1);
}

function canonical(node: GraphNode, inputs: string[], attrs: GraphNode['attrs'], outputs = node.outputs): GraphNode {
  // Trailing omitted optional inputs are dropped.
  const ins = inputs.slice();
  while (ins.length > 0 && ins[ins.length - 1] === '') ins.pop();
  return { name: node.name, op: node.op, inputs: ins, outputs, attrs };
}

// ---------------------------------------------------------------------------------------------
// Sliding windows.

interface WindowAttrs {
  kernel_shape: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
}

function windowAttrs(ctx: NormalizeContext, node: GraphNode, kernel: number[]): WindowAttrs {
  const n = kernel.length;
  const isConv = node.op === 'Conv';
  const what = isConv ? 'convolution (Kiln runs 1-D and 2-D)' : node.op === 'ConvTranspose' ? 'transposed convolution (Kiln runs 1-D, 2-D and 3-D)' : 'pooling (Kiln runs 1-D, 2-D and 3-D)';
  if (n < 1 || n > (isConv ? 2 : 3)) throw new Unsupported(`${n}-D ${what}`);
  const strides = ints(node, 'strides') ?? new Array<number>(n).fill(1);
  const dilations = ints(node, 'dilations') ?? new Array<number>(n).fill(1);
  const mode = str(node, 'auto_pad', 'NOTSET');
  let pads = ints(node, 'pads') ?? new Array<number>(2 * n).fill(0);
  if (mode === 'VALID') pads = new Array<number>(2 * n).fill(0);
  else if (mode === 'SAME_UPPER' || mode === 'SAME_LOWER') {
    const x = needShape(ctx, node);
    pads = new Array<number>(2 * n).fill(0);
    for (let i = 0; i < n; i++) {
      const size = x[2 + i]!;
      const span = (kernel[i]! - 1) * (dilations[i] ?? 1) + 1;
      const stride = strides[i] ?? 1;
      let total: number;
      if (typeof size === 'number') total = Math.max(0, (Math.ceil(size / stride) - 1) * stride + span - size);
      else if (stride === 1) total = span - 1;
      else throw new Unsupported(`auto_pad ${mode} with stride ${stride} over a dynamic spatial size (give a static input shape)`);
      const small = Math.floor(total / 2);
      const [begin, end] = mode === 'SAME_UPPER' ? [small, total - small] : [total - small, small];
      pads[i] = begin;
      pads[i + n] = end;
    }
  } else if (mode !== 'NOTSET') {
    throw new RangeError(`Expected auto_pad NOTSET, SAME_UPPER, SAME_LOWER or VALID for ${node.op} '${node.name}' but received '${mode}'`);
  }
  if (strides.length !== n || dilations.length !== n || pads.length !== 2 * n) {
    throw new RangeError(`Expected ${n} strides, ${n} dilations and ${2 * n} pads for ${node.op} '${node.name}' but received ${strides.length}, ${dilations.length} and ${pads.length}`);
  }
  return { kernel_shape: kernel, strides, pads, dilations };
}

function weightKernel(ctx: NormalizeContext, node: GraphNode): number[] {
  const k = ints(node, 'kernel_shape');
  if (k !== undefined) return k;
  const w = ctx.shape(node.inputs[1] ?? '');
  if (w === undefined || w.length < 3 || w.slice(2).some((d) => typeof d !== 'number')) {
    throw new Unsupported('a weight whose shape is unknown at import (no kernel_shape)');
  }
  return w.slice(2) as number[];
}

function conv(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  const win = windowAttrs(ctx, node, weightKernel(ctx, node));
  return [canonical(node, node.inputs, { ...win, group: int(node, 'group', 1) })];
}

function convTranspose(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  const kernel = weightKernel(ctx, node);
  const mode = str(node, 'auto_pad', 'NOTSET');
  const outputShape = ints(node, 'output_shape');
  const plain = { ...node, attrs: { ...node.attrs, auto_pad: 'NOTSET' } };
  const win = windowAttrs(ctx, plain, kernel);
  const n = kernel.length;
  const outputPadding = ints(node, 'output_padding') ?? new Array<number>(n).fill(0);
  if (outputPadding.length !== n) throw new RangeError(`Expected ${n} output_padding values for ConvTranspose '${node.name}' but received ${outputPadding.length}`);
  if (outputShape !== undefined || mode === 'SAME_UPPER' || mode === 'SAME_LOWER') {
    const x = needShape(ctx, node);
    for (let i = 0; i < n; i++) {
      const size = x[2 + i]!;
      if (typeof size !== 'number') throw new Unsupported('output_shape or auto_pad over a dynamic spatial size');
      const stride = win.strides[i]!;
      const target = outputShape !== undefined ? outputShape[outputShape.length - n + i]! : size * stride;
      let total = stride * (size - 1) + outputPadding[i]! + (kernel[i]! - 1) * win.dilations[i]! + 1 - target;
      if (total < 0) {
        // A larger output_shape: onnxruntime and the ONNX reference pad nothing and add the rows at
        // the end (bias only), which is what output_padding does; both refuse a stride or more.
        outputPadding[i] = outputPadding[i]! - total;
        total = 0;
        if (outputPadding[i]! >= Math.max(stride, win.dilations[i]!)) throw new Unsupported(`output_shape ${target} on axis ${2 + i}, a stride or more beyond what the transposed convolution makes (onnxruntime and the ONNX reference refuse it)`);
      }
      // onnxruntime's split: SAME_UPPER puts the odd pixel at the end, otherwise at the start.
      const small = Math.floor(total / 2);
      const [begin, end] = mode === 'SAME_UPPER' ? [small, total - small] : [total - small, small];
      win.pads[i] = begin;
      win.pads[i + n] = end;
    }
  }
  return [canonical(node, node.inputs, { ...win, group: int(node, 'group', 1), output_padding: outputPadding })];
}

function pool(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  const kernel = ints(node, 'kernel_shape');
  if (kernel === undefined) throw new TypeError(`Expected attribute kernel_shape for ${node.op} '${node.name}' but received none`);
  const win = windowAttrs(ctx, node, kernel);
  const attrs: GraphNode['attrs'] = { ...win, ceil_mode: int(node, 'ceil_mode', 0) };
  let outputs = node.outputs;
  if (node.op === 'MaxPool') {
    outputs = firstOutputOnly(ctx, node, 'Indices');
  } else {
    // AveragePool has dilations from opset 19 on (the runtime's pooling kernels take them).
    if (ctx.opset < 19 && win.dilations.some((d) => d !== 1)) throw new Unsupported('dilated average pooling before opset 19');
    attrs.count_include_pad = int(node, 'count_include_pad', 0);
  }
  return [canonical(node, node.inputs.slice(0, 1), attrs, outputs)];
}

function softmax(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  const x = needShape(ctx, node);
  const r = x.length;
  if (ctx.opset >= 13) return [canonical(node, node.inputs, { axis: axis(node, int(node, 'axis', -1), r) })];
  const a = axis(node, int(node, 'axis', 1), r);
  // Before opset 13 the input is coerced to 2-D [prod(d<a), prod(d>=a)] and normalised per row:
  // the same as opset 13 over the last axis when a is the last axis. Otherwise the trailing axes
  // are merged into one (Reshape), normalised, and reshaped back; the leading axes, batch first,
  // stay where they are, so the runtime keeps the batch outermost. (a = 0 mixes the batch in:
  // Flatten to one row.)
  if (a === r - 1) return [canonical(node, node.inputs, { axis: a })];
  const back = reshapeTarget(ctx, node, x);
  const merged = ctx.fresh(`${node.inputs[0]}_rows`);
  const normed = ctx.fresh(`${node.outputs[0]}_rows`);
  const first: GraphNode = a === 0
    ? { name: ctx.fresh(`${node.name}_flatten`), op: 'Flatten', inputs: [node.inputs[0]!], outputs: [merged], attrs: { axis: 0 } }
    : { name: ctx.fresh(`${node.name}_merge`), op: 'Reshape', inputs: [node.inputs[0]!], outputs: [merged], attrs: { shape: mergeTarget(ctx, node, x, a) } };
  return [
    first,
    { name: node.name, op: node.op, inputs: [merged], outputs: [normed], attrs: { axis: a === 0 ? 1 : a } },
    { name: ctx.fresh(`${node.name}_restore`), op: 'Reshape', inputs: [normed], outputs: [node.outputs[0]!], attrs: { shape: back } },
  ];
}

/** Reshape target keeping axes < a and merging the rest into one. */
function mergeTarget(ctx: NormalizeContext, node: GraphNode, x: Shape, a: number): number[] {
  const lead = reshapeTarget(ctx, node, x.slice(0, a));
  const rest = dimProduct(x.slice(a));
  if (typeof rest === 'number') return [...lead, rest];
  if (lead.includes(-1)) throw new Unsupported(`opset-${ctx.opset} ${node.op} over several dynamic dimensions`);
  return [...lead, -1];
}

/**
 * A Reshape target that rebuilds `dims` (a prefix of the input's shape): 0 copies a symbolic
 * leading dimension, -1 stands for one other symbolic dimension.
 */
function reshapeTarget(ctx: NormalizeContext, node: GraphNode, dims: Shape): number[] {
  let inferred = 0;
  const target = dims.map((d, i) => {
    if (typeof d === 'number') return d;
    if (i === 0) return 0;
    inferred++;
    return -1;
  });
  if (inferred > 1) throw new Unsupported(`opset-${ctx.opset} ${node.op} over several dynamic dimensions`);
  return target;
}

function reshape(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  const v = param(ctx, node, 1, 'target shape');
  if (v === undefined) throw new TypeError(`Expected a shape input for Reshape '${node.name}' but received none`);
  let target: number[];
  if (isSymbolic(v)) {
    // A shape computed from a dynamic dimension: entries equal to the input's dimension at the
    // same index become 0 (copy); a single remaining dynamic entry becomes -1 (infer).
    const x = needShape(ctx, node);
    const dyn: number[] = [];
    target = v.dims.map((d, i) => {
      if (typeof d === 'number') return d;
      if (x[i] === d) return 0;
      dyn.push(i);
      return -1;
    });
    if (dyn.length > 1 || (dyn.length === 1 && target.filter((t) => t === -1).length > 1)) {
      throw new Unsupported('a target shape with several dynamic entries');
    }
  } else {
    target = Array.from(v.data as ArrayLike<number>);
  }
  if (int(node, 'allowzero', 0) === 1 && target.includes(0)) throw new Unsupported('allowzero=1 with a zero-size dimension');
  return [canonical(node, node.inputs.slice(0, 1), { shape: target })];
}

function squeezeAxes(node: GraphNode, ctx: NormalizeContext): number[] | undefined {
  return ctx.opset >= 13 ? paramInts(ctx, node, 1, 'axes') : ints(node, 'axes');
}

function squeeze(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  const x = needShape(ctx, node);
  const given = squeezeAxes(node, ctx);
  // No axes: every dimension of size 1 (a dynamic dimension is taken as not 1).
  const axes = given === undefined ? x.flatMap((d, i) => (d === 1 ? [i] : [])) : given.map((a) => axis(node, a, x.length, 'axes'));
  return [canonical(node, node.inputs.slice(0, 1), { axes: [...new Set(axes)].sort((p, q) => p - q) })];
}

function unsqueeze(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  const x = needShape(ctx, node);
  const given = squeezeAxes(node, ctx);
  if (given === undefined) throw new TypeError(`Expected axes for Unsqueeze '${node.name}' but received none`);
  const r = x.length + given.length;
  const axes = given.map((a) => axis(node, a, r, 'axes'));
  return [canonical(node, node.inputs.slice(0, 1), { axes: axes.sort((p, q) => p - q) })];
}

function pad(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  const x = needShape(ctx, node);
  const r = x.length;
  const mode = str(node, 'mode', 'constant');
  if (!['constant', 'reflect', 'edge', 'wrap'].includes(mode) || (mode === 'wrap' && ctx.opset < 19)) throw new Unsupported(`mode '${mode}'`);
  let pads: number[] | undefined;
  let value: number;
  if (ctx.opset < 11) {
    pads = ints(node, 'pads') ?? ints(node, 'paddings');
    value = float(node, 'value', 0);
  } else {
    pads = paramInts(ctx, node, 1, 'pads');
    value = paramScalar(ctx, node, 2, 'constant value') ?? 0;
    const axes = ctx.opset >= 18 ? paramInts(ctx, node, 3, 'axes') : undefined;
    if (axes !== undefined && pads !== undefined) {
      if (pads.length !== 2 * axes.length) throw new RangeError(`Expected ${2 * axes.length} pads for Pad '${node.name}' but received ${pads.length}`);
      const full = new Array<number>(2 * r).fill(0);
      axes.forEach((a, i) => {
        const k = axis(node, a, r, 'axes');
        full[k] = pads![i]!;
        full[k + r] = pads![i + axes.length]!;
      });
      pads = full;
    }
  }
  if (pads === undefined || pads.length !== 2 * r) {
    throw new RangeError(`Expected ${2 * r} pads for Pad '${node.name}' but received ${pads?.length ?? 'none'}`);
  }
  return [canonical(node, node.inputs.slice(0, 1), { pads, mode, value })];
}

function clip(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  let min: number;
  let max: number;
  if (ctx.opset < 11) {
    min = float(node, 'min', -FLT_MAX);
    max = float(node, 'max', FLT_MAX);
  } else {
    min = paramScalar(ctx, node, 1, 'min') ?? -FLT_MAX;
    max = paramScalar(ctx, node, 2, 'max') ?? FLT_MAX;
  }
  // min(max(x, min), max): bounds that cross leave every value at max (ONNX's reference, numpy.clip).
  if (min > max) min = max;
  return [canonical(node, node.inputs.slice(0, 1), { min, max })];
}

function batchNorm(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  if (int(node, 'spatial', 1) !== 1) throw new Unsupported('spatial=0 (per-activation statistics)');
  if (int(node, 'training_mode', 0) !== 0) throw new Unsupported('training_mode=1');
  const outputs = firstOutputOnly(ctx, node, 'running statistics');
  return [canonical(node, node.inputs, { epsilon: float(node, 'epsilon', 1e-5) }, outputs)];
}

function layerNorm(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  const attrs: GraphNode['attrs'] = { axis: axis(node, int(node, 'axis', -1), rank(ctx, node)), epsilon: float(node, 'epsilon', 1e-5) };
  // Unread Mean / InvStdDev outputs are dropped; read ones stay (the runtime computes them).
  const outputs = node.outputs.map((o, i) => (i > 0 && !ctx.used(o) ? '' : o));
  while (outputs.length > 1 && outputs[outputs.length - 1] === '') outputs.pop();
  return [canonical(node, node.inputs, attrs, outputs)];
}

function groupNorm(node: GraphNode): GraphNode[] {
  const groups = int(node, 'num_groups', 0);
  if (groups < 1) throw new RangeError(`Expected a positive num_groups for GroupNormalization '${node.name}' but received ${groups}`);
  return [canonical(node, node.inputs, { num_groups: groups, epsilon: float(node, 'epsilon', 1e-5) })];
}

function dropout(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  if (ctx.opset >= 12) {
    const training = paramScalar(ctx, node, 2, 'training_mode');
    // Training with a ratio of 0 drops nothing: the same identity as inference.
    if (training !== undefined && training !== 0 && (paramScalar(ctx, node, 1, 'ratio') ?? 0.5) !== 0) throw new Unsupported('training_mode=true');
  }
  const mask = node.outputs[1] ?? '';
  if (mask === '' || !ctx.used(mask)) return [canonical(node, node.inputs.slice(0, 1), {}, firstOutputOnly(ctx, node, 'mask'))];
  // Nothing is dropped, so the mask is all true: a constant when the input's shape is static.
  const shape = ctx.shape(node.inputs[0] ?? '');
  if (shape === undefined || !shape.every((d): d is number => typeof d === 'number')) throw new Unsupported('its mask output (over a dynamic shape)');
  const ones = new Tensor('uint8', new Uint8Array(shape.reduce((a, b) => a * b, 1)).fill(1), shape);
  return [
    canonical(node, node.inputs.slice(0, 1), {}, node.outputs.slice(0, 1)),
    { name: ctx.fresh(`${node.name}_mask`), op: 'Constant', inputs: [], outputs: [mask], attrs: { value: ones } },
  ];
}

function slice(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  let starts: number[] | undefined;
  let ends: number[] | undefined;
  let axes: number[] | undefined;
  let steps: number[] | undefined;
  if (ctx.opset < 10) {
    [starts, ends, axes] = [ints(node, 'starts'), ints(node, 'ends'), ints(node, 'axes')];
  } else {
    [starts, ends, axes, steps] = [paramInts(ctx, node, 1, 'starts'), paramInts(ctx, node, 2, 'ends'), paramInts(ctx, node, 3, 'axes'), paramInts(ctx, node, 4, 'steps')];
  }
  if (starts === undefined || ends === undefined) throw new TypeError(`Expected starts and ends for Slice '${node.name}' but received none`);
  const attrs: GraphNode['attrs'] = { starts, ends };
  if (axes !== undefined) attrs.axes = axes;
  if (steps !== undefined) attrs.steps = steps;
  return [canonical(node, node.inputs.slice(0, 1), attrs)];
}

// ---------------------------------------------------------------------------------------------
// Data movement: Resize / Upsample, Split, Expand, Tile, DepthToSpace / SpaceToDepth.

function paramFloats(ctx: NormalizeContext, node: GraphNode, index: number, what: string): number[] | undefined {
  const v = param(ctx, node, index, what);
  if (v === undefined) return undefined;
  if (isSymbolic(v)) throw new TypeError(`Expected floats for the ${what} of ${node.op} '${node.name}' but received a shape`);
  return Array.from(v.data as ArrayLike<number>, (x) => Math.fround(x));
}

function floats(node: GraphNode, name: string): number[] | undefined {
  const v = node.attrs[name];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) throw new TypeError(`Expected a list of numbers for attribute ${name} of ${node.op} '${node.name}' but received ${String(v)}`);
  return (v as number[]).map((x) => Math.fround(x));
}

/**
 * Resize (opsets 10-19) and Upsample (7-9) as one canonical Resize: attrs `scales` (float32
 * values, one per input dim: what coordinates divide by), `sizes` (the output shape, only when
 * the model gives sizes), mode, coordinate_transformation_mode, nearest_mode, cubic_coeff_a,
 * exclude_outside. Upsample and opset-10 Resize become asymmetric with nearest_mode floor
 * (upsampling) or ceil (downsampling), onnxruntime's reading of them.
 */
function resize(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  const x = needShape(ctx, node);
  const r = x.length;
  let mode = str(node, 'mode', 'nearest');
  if (mode === 'bilinear') mode = 'linear';
  if (!['nearest', 'linear', 'cubic'].includes(mode)) throw new Unsupported(`mode '${mode}'`);
  const legacy = node.op === 'Upsample' || ctx.opset < 11;
  let scales: number[] | undefined;
  let sizes: number[] | undefined;
  let roi: number[] | undefined;
  let antialias = false;
  if (node.op === 'Upsample') {
    scales = ctx.opset < 9 ? floats(node, 'scales') : paramFloats(ctx, node, 1, 'scales');
  } else if (ctx.opset < 11) {
    scales = paramFloats(ctx, node, 1, 'scales');
  } else {
    scales = paramFloats(ctx, node, 2, 'scales');
    if (scales !== undefined && scales.length === 0) scales = undefined;
    const sizesValue = param(ctx, node, 3, 'sizes');
    if (isSymbolic(sizesValue)) {
      // Sizes built from the input's own shape (PyTorch's interpolate(size=...) with a dynamic
      // batch): a symbolic entry must be the input's dimension itself, kept (-1).
      sizes = sizesValue.dims.map((d, i) => {
        if (typeof d === 'number') return d;
        if (d !== x[i]) throw new Unsupported(`sizes entry ${i} ('${d}') that is not the input's own dimension`);
        return -1;
      });
    } else {
      sizes = paramInts(ctx, node, 3, 'sizes');
    }
    if (sizes !== undefined && sizes.length === 0) sizes = undefined;
    const axesAttr = ctx.opset >= 18 ? ints(node, 'axes') : undefined;
    if (str(node, 'coordinate_transformation_mode', 'half_pixel') === 'tf_crop_and_resize') {
      // roi: starts then ends, one pair per resized axis (every axis without `axes`).
      const given = paramFloats(ctx, node, 1, 'roi');
      const axes = (axesAttr ?? x.map((_, i) => i)).map((a) => axis(node, a, r, 'axes'));
      if (given === undefined || given.length !== 2 * axes.length) throw new RangeError(`Expected ${2 * axes.length} roi values for the tf_crop_and_resize Resize '${node.name}' but received ${given?.length ?? 'none'}`);
      if (given.some((v) => !Number.isFinite(v))) throw new RangeError(`Expected finite roi values for Resize '${node.name}' but received [${given}]`);
      roi = [...new Array<number>(r).fill(0), ...new Array<number>(r).fill(1)];
      axes.forEach((a, i) => {
        roi![a] = given[i]!;
        roi![r + a] = given[axes.length + i]!;
      });
    }
    if (ctx.opset >= 18 && int(node, 'antialias', 0) !== 0 && mode !== 'nearest') antialias = true;
    if (axesAttr !== undefined) {
      const axes = axesAttr.map((a) => axis(node, a, r, 'axes'));
      const given = scales ?? sizes;
      if (given !== undefined && given.length !== axes.length) throw new RangeError(`Expected ${axes.length} scales or sizes for Resize '${node.name}' but received ${given.length}`);
      if (scales !== undefined) {
        const full = new Array<number>(r).fill(1);
        axes.forEach((a, i) => (full[a] = scales![i]!));
        scales = full;
      }
      if (sizes !== undefined) {
        const full = x.map((d) => (typeof d === 'number' ? d : -1));
        axes.forEach((a, i) => (full[a] = sizes![i]!));
        sizes = full;
      }
    }
    const policy = ctx.opset >= 18 ? str(node, 'keep_aspect_ratio_policy', 'stretch') : 'stretch';
    if (sizes !== undefined && policy !== 'stretch') {
      if (policy !== 'not_larger' && policy !== 'not_smaller') throw new RangeError(`Expected keep_aspect_ratio_policy stretch, not_larger or not_smaller for Resize '${node.name}' but received ${policy}`);
      const axes = (axesAttr ?? x.map((_, i) => i)).map((a) => axis(node, a, r, 'axes'));
      const ratios = axes.map((a) => Math.fround(sizes![a]! / (x[a] as number)));
      const scale = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
      sizes = x.map((d, i) => (axes.includes(i) ? Math.round(Math.fround(scale * (d as number))) : sizes![i]!));
      scales = x.map((_, i) => (axes.includes(i) ? scale : 1));
    }
  }
  if (scales === undefined && sizes === undefined) throw new TypeError(`Expected scales or sizes for ${node.op} '${node.name}' but received none`);
  if (scales !== undefined && sizes === undefined) {
    if (scales.length !== r) throw new RangeError(`Expected ${r} scales for ${node.op} '${node.name}' but received ${scales.length}`);
    if (scales.some((v) => !(v > 0))) throw new RangeError(`Expected positive scales for ${node.op} '${node.name}' but received [${scales}]`);
  }
  if (sizes !== undefined) {
    if (sizes.length !== r) throw new RangeError(`Expected ${r} sizes for ${node.op} '${node.name}' but received ${sizes.length}`);
    const given = scales;
    // A symbolic input dim keeps its size (scale 1).
    scales = x.map((d, i) => (given !== undefined && given.length === r ? given[i]! : typeof d === 'number' ? Math.fround(sizes![i]! / d) : 1));
  }
  const attrs: GraphNode['attrs'] = { mode, scales: scales! };
  if (sizes !== undefined) attrs.sizes = sizes;
  if (legacy) {
    const spatial = scales!.filter((v) => v !== 1);
    if (spatial.some((v) => v < 1) && spatial.some((v) => v > 1)) throw new Unsupported('an opset-10 nearest resize that grows one axis and shrinks another');
    attrs.coordinate_transformation_mode = 'asymmetric';
    attrs.nearest_mode = spatial.some((v) => v < 1) ? 'ceil' : 'floor';
  } else {
    attrs.coordinate_transformation_mode = str(node, 'coordinate_transformation_mode', 'half_pixel');
    // ONNX's align_corners divides by the unrounded scaled length (in * scale - 1), which a
    // fractional length makes differ from the whole output length the plan divides by.
    const fractional = sizes === undefined && x.findIndex((d, i) => typeof d === 'number' && d * scales![i]! !== Math.floor(d * scales![i]!));
    if (attrs.coordinate_transformation_mode === 'align_corners' && fractional !== false && fractional >= 0) {
      throw new Unsupported(`align_corners with scales that give axis ${fractional} a fractional length (${String(x[fractional])} x ${scales![fractional]})`);
    }
    attrs.nearest_mode = str(node, 'nearest_mode', 'round_prefer_floor');
  }
  attrs.cubic_coeff_a = float(node, 'cubic_coeff_a', -0.75);
  attrs.exclude_outside = int(node, 'exclude_outside', 0);
  if (antialias) attrs.antialias = 1;
  if (roi !== undefined) {
    attrs.roi = roi;
    attrs.extrapolation_value = float(node, 'extrapolation_value', 0);
  }
  return [{ ...canonical(node, node.inputs.slice(0, 1), attrs), op: 'Resize' }];
}

/** Split with the part sizes resolved: attrs `axis` (non-negative) and `split` (ints). */
function split(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  const x = needShape(ctx, node);
  const a = axis(node, int(node, 'axis', 0), x.length);
  let parts = ctx.opset < 13 ? ints(node, 'split') : paramInts(ctx, node, 1, 'split');
  if (parts === undefined) {
    const size = x[a];
    if (typeof size !== 'number') throw new Unsupported('an even split of a dynamic dimension');
    const n = ctx.opset >= 18 && node.attrs.num_outputs !== undefined ? int(node, 'num_outputs', 0) : node.outputs.length;
    if (n < 1) throw new RangeError(`Expected num_outputs >= 1 for Split '${node.name}' but received ${n}`);
    // Opset 18: ceil(size / n) each, the last one smaller.
    const each = Math.ceil(size / n);
    parts = Array.from({ length: n }, (_, i) => Math.max(0, Math.min(each, size - i * each)));
  }
  if (parts.length !== node.outputs.length) throw new RangeError(`Expected ${node.outputs.length} split sizes for Split '${node.name}' but received ${parts.length}`);
  return [canonical(node, node.inputs.slice(0, 1), { axis: a, split: parts })];
}

function depthToSpace(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  if (rank(ctx, node) !== 4) throw new Unsupported(`a rank-${rank(ctx, node)} input (NCHW only)`);
  const blocksize = int(node, 'blocksize', 0);
  if (blocksize < 1) throw new RangeError(`Expected blocksize >= 1 for ${node.op} '${node.name}' but received ${blocksize}`);
  const attrs: GraphNode['attrs'] = { blocksize };
  if (node.op === 'DepthToSpace') {
    const mode = str(node, 'mode', 'DCR');
    if (mode !== 'DCR' && mode !== 'CRD') throw new RangeError(`Expected mode DCR or CRD for DepthToSpace '${node.name}' but received ${mode}`);
    attrs.mode = mode;
  }
  return [canonical(node, node.inputs.slice(0, 1), attrs)];
}

function constant(node: GraphNode): GraphNode[] {
  const a = node.attrs;
  let value: Tensor | undefined;
  if (a.value instanceof Tensor) value = a.value;
  else if (typeof a.value_float === 'number') value = new Tensor('float32', [a.value_float], []);
  else if (Array.isArray(a.value_floats)) value = new Tensor('float32', a.value_floats as number[]);
  else if (typeof a.value_int === 'number') value = new Tensor('int32', [clampInt(a.value_int)], []);
  else if (Array.isArray(a.value_ints)) value = new Tensor('int32', (a.value_ints as number[]).map(clampInt));
  if (value === undefined) throw new Unsupported('a value Kiln cannot hold (string or sparse)');
  return [canonical(node, [], { value })];
}

const REDUCE_AXES_INPUT_SINCE: Record<string, number> = { ReduceSum: 13 };

/**
 * Reduce*: axes (attribute, or input 1 from opset 18 / ReduceSum 13) become the canonical
 * explicit `axes` (non-negative, sorted); `keepdims` filled; empty axes mean every axis, or an
 * Identity with noop_with_empty_axes.
 */
function reduce(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  const x = needShape(ctx, node);
  const given = ctx.opset >= (REDUCE_AXES_INPUT_SINCE[node.op] ?? 18) ? paramInts(ctx, node, 1, 'axes') : ints(node, 'axes');
  const keepdims = int(node, 'keepdims', 1) === 0 ? 0 : 1;
  if (given === undefined || given.length === 0) {
    if (int(node, 'noop_with_empty_axes', 0) !== 0) return [{ ...canonical(node, node.inputs.slice(0, 1), {}), op: 'Identity' }];
    return [canonical(node, node.inputs.slice(0, 1), { axes: x.map((_, i) => i), keepdims })];
  }
  const axes = [...new Set(given.map((a) => axis(node, a, x.length, 'axes')))].sort((p, q) => p - q);
  return [canonical(node, node.inputs.slice(0, 1), { axes, keepdims })];
}

/**
 * ArgMax / ArgMin: `axis` non-negative, `keepdims` 0 | 1 and `select_last_index` (opset 12+;
 * absent before, which means 0) filled.
 */
function argReduce(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  const x = needShape(ctx, node);
  const last = int(node, 'select_last_index', 0);
  if (last !== 0 && last !== 1) throw new TypeError(`Expected select_last_index 0 or 1 for ${node.op} '${node.name}' but received ${last}`);
  return [canonical(node, node.inputs.slice(0, 1), { axis: axis(node, int(node, 'axis', 0), x.length, 'axis'), keepdims: int(node, 'keepdims', 1) === 0 ? 0 : 1, select_last_index: last })];
}

function gelu(node: GraphNode): GraphNode[] {
  const approximate = str(node, 'approximate', 'none');
  if (approximate !== 'none' && approximate !== 'tanh') throw new TypeError(`Expected approximate 'none' or 'tanh' for Gelu '${node.name}' but received '${approximate}'`);
  return [canonical(node, node.inputs, { approximate })];
}

function clampInt(v: number): number {
  return Math.max(-2147483648, Math.min(2147483647, v));
}

function rank(ctx: NormalizeContext, node: GraphNode): number {
  return needShape(ctx, node).length;
}

type Normalizer = (node: GraphNode, ctx: NormalizeContext) => GraphNode[];

const keep = (names: readonly string[], defaults: Record<string, number> = {}): Normalizer => (node) => {
  const attrs: GraphNode['attrs'] = {};
  for (const n of names) {
    const v = node.attrs[n];
    if (v !== undefined) attrs[n] = v;
    else if (defaults[n] !== undefined) attrs[n] = defaults[n]!;
  }
  return [canonical(node, node.inputs, attrs)];
};

const NORMALIZERS: Record<string, Normalizer> = {
  Conv: conv,
  ConvTranspose: convTranspose,
  MaxPool: pool,
  AveragePool: pool,
  GlobalAveragePool: keep([]),
  GlobalMaxPool: keep([]),
  LRN: (node) => [canonical(node, node.inputs, {
    size: int(node, 'size', 0), alpha: float(node, 'alpha', 1e-4), beta: float(node, 'beta', 0.75), bias: float(node, 'bias', 1),
  })],
  BatchNormalization: batchNorm,
  LayerNormalization: layerNorm,
  InstanceNormalization: (node) => [canonical(node, node.inputs, { epsilon: float(node, 'epsilon', 1e-5) })],
  GroupNormalization: groupNorm,
  Gemm: (node) => [canonical(node, node.inputs, {
    alpha: float(node, 'alpha', 1), beta: float(node, 'beta', 1), transA: int(node, 'transA', 0), transB: int(node, 'transB', 0),
  })],
  MatMul: keep([]),
  Relu: keep([]),
  Sigmoid: keep([]),
  Tanh: keep([]),
  HardSwish: keep([]),
  LeakyRelu: (node) => [canonical(node, node.inputs, { alpha: float(node, 'alpha', 0.01) })],
  HardSigmoid: (node) => [canonical(node, node.inputs, { alpha: float(node, 'alpha', 0.2), beta: float(node, 'beta', 0.5) })],
  Clip: clip,
  Add: keep([]),
  Sub: keep([]),
  Mul: keep([]),
  Div: keep([]),
  Sum: keep([]),
  Neg: keep([]),
  Sqrt: keep([]),
  Exp: keep([]),
  Abs: keep([]),
  Log: keep([]),
  Reciprocal: keep([]),
  Floor: keep([]),
  Round: keep([]),
  Ceil: keep([]),
  Erf: keep([]),
  Softplus: keep([]),
  Softsign: keep([]),
  Mish: keep([]),
  Elu: keep(['alpha'], { alpha: 1 }),
  Celu: keep(['alpha'], { alpha: 1 }),
  ThresholdedRelu: keep(['alpha'], { alpha: 1 }),
  Selu: keep(['alpha', 'gamma'], { alpha: 1.67326319217681884765625, gamma: 1.05070102214813232421875 }),
  Gelu: gelu,
  PRelu: keep([]),
  Max: keep([]),
  Min: keep([]),
  Pow: keep([]),
  ReduceMean: reduce,
  ReduceMax: reduce,
  ReduceMin: reduce,
  ReduceSum: reduce,
  ReduceProd: reduce,
  ReduceL1: reduce,
  ReduceL2: reduce,
  ReduceSumSquare: reduce,
  ReduceLogSumExp: reduce,
  ReduceLogSum: reduce,
  ArgMax: argReduce,
  ArgMin: argReduce,
  Concat: (node, ctx) => [canonical(node, node.inputs, { axis: axis(node, int(node, 'axis', 0), rank(ctx, node)) })],
  Flatten: (node, ctx) => {
    const r = rank(ctx, node);
    const a = int(node, 'axis', 1);
    if (a < -r || a > r) throw new RangeError(`Expected axis in [${-r}, ${r}] for Flatten '${node.name}' but received ${a}`);
    return [canonical(node, node.inputs, { axis: a < 0 ? a + r : a })];
  },
  Reshape: reshape,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Transpose: (node, ctx) => {
    const r = rank(ctx, node);
    return [canonical(node, node.inputs, { perm: ints(node, 'perm') ?? Array.from({ length: r }, (_, i) => r - 1 - i) })];
  },
  Softmax: softmax,
  LogSoftmax: softmax,
  Pad: pad,
  Identity: keep([]),
  Dropout: dropout,
  Constant: constant,
  ConstantOfShape: (node) => [canonical(node, node.inputs, node.attrs.value instanceof Tensor ? { value: node.attrs.value } : {})],
  Shape: keep(['start', 'end']),
  Gather: keep(['axis'], { axis: 0 }),
  Range: keep([]),
  Cast: keep(['to', 'saturate']),
  CastLike: castLike,
  Size: keep([]),
  Slice: slice,
  Resize: resize,
  Upsample: resize,
  Split: split,
  Expand: (node, ctx) => {
    const shape = paramInts(ctx, node, 1, 'shape');
    if (shape === undefined) throw new TypeError(`Expected a shape for Expand '${node.name}' but received none`);
    return [canonical(node, node.inputs.slice(0, 1), { shape })];
  },
  Tile: (node, ctx) => {
    const repeats = paramInts(ctx, node, 1, 'repeats');
    if (repeats === undefined) throw new TypeError(`Expected repeats for Tile '${node.name}' but received none`);
    return [canonical(node, node.inputs.slice(0, 1), { repeats })];
  },
  DepthToSpace: depthToSpace,
  SpaceToDepth: depthToSpace,
  Equal: keep([]),
  Less: keep([]),
  LessOrEqual: keep([]),
  Greater: keep([]),
  GreaterOrEqual: keep([]),
  And: keep([]),
  Or: keep([]),
  Xor: keep([]),
  Not: keep([]),
  IsNaN: keep([]),
  IsInf: keep(['detect_negative', 'detect_positive'], { detect_negative: 1, detect_positive: 1 }),
  Where: keep([]),
};

/**
 * CastLike -> the Cast it means: the target type is the second input's declared (or stored)
 * element type, which the Cast then reads no more.
 */
function castLike(node: GraphNode, ctx: NormalizeContext): GraphNode[] {
  if (node.inputs.length !== 2 || node.inputs[1] === '') throw new TypeError(`Expected 2 inputs for CastLike '${node.name}' but received ${node.inputs.length}`);
  const like = node.inputs[1]!;
  const to = ctx.elemType(like);
  if (to === undefined || to === 0) throw new Unsupported(`its second input '${like}' declares no element type`);
  return [canonical({ ...node, op: 'Cast' }, node.inputs.slice(0, 1), { to, ...(node.attrs.saturate === undefined ? {} : { saturate: node.attrs.saturate }) })];
}

/**
 * The canonical node(s) for an ONNX node, or undefined when Kiln does not know the operator.
 * Throws `Unsupported` for a configuration Kiln cannot run, TypeError/RangeError for a malformed
 * node.
 */
export function normalizeNode(node: GraphNode, ctx: NormalizeContext): GraphNode[] | undefined {
  const f = NORMALIZERS[node.op];
  return f === undefined ? undefined : f(node, ctx);
}

/** Whether import knows a default-domain operator (has a canonical form for it). */
export function isKnownOp(op: string): boolean {
  return Object.prototype.hasOwnProperty.call(NORMALIZERS, op);
}
