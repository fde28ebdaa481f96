/**
 * Shape inference over the canonical graph form (see ir.ts): the output shapes of each node from
 * its input shapes and attributes. Dimensions may be symbolic (a string such as 'N'); products of
 * symbols stay symbolic ('N*3'), so a dynamic batch survives Flatten and Reshape.
 *
 * A shape that does not fit an operator throws a RangeError with code ERR_KILN_SHAPE_MISMATCH
 * naming the node.
 */
import type { AttrValue, Dim, Graph, GraphNode } from './ir.js';
import { shapeError } from '../validate.js';

export type Shape = Dim[];

// ---------------------------------------------------------------------------------------------
// Symbolic dimensions: a positive integer coefficient times a multiset of named symbols.

interface Monomial {
  coef: number;
  symbols: string[];
}

function parseDim(d: Dim): Monomial {
  if (typeof d === 'number') return { coef: d, symbols: [] };
  let coef = 1;
  const symbols: string[] = [];
  for (const part of d.split('*')) {
    if (/^\d+$/.test(part)) coef *= Number(part);
    else symbols.push(part);
  }
  return { coef, symbols: symbols.sort() };
}

function formatDim(m: Monomial): Dim {
  if (m.symbols.length === 0 || m.coef === 0) return m.coef;
  return (m.coef === 1 ? [] : [String(m.coef)]).concat(m.symbols).join('*');
}

/** Product of dimensions, symbolic when any is. */
export function dimProduct(dims: readonly Dim[]): Dim {
  let coef = 1;
  const symbols: string[] = [];
  for (const d of dims) {
    const m = parseDim(d);
    coef *= m.coef;
    symbols.push(...m.symbols);
  }
  return formatDim({ coef, symbols: symbols.sort() });
}

/** a / b when exact (b's symbols all in a, coefficients divisible), else undefined. */
export function dimDivide(a: Dim, b: Dim): Dim | undefined {
  const ma = parseDim(a);
  const mb = parseDim(b);
  if (mb.coef === 0 || ma.coef % mb.coef !== 0) return undefined;
  const rest = ma.symbols.slice();
  for (const s of mb.symbols) {
    const i = rest.indexOf(s);
    if (i < 0) return undefined;
    rest.splice(i, 1);
  }
  return formatDim({ coef: ma.coef / mb.coef, symbols: rest });
}

/** Whether every dimension is a number. */
export function isStatic(shape: readonly Dim[]): shape is number[] {
  return shape.every((d) => typeof d === 'number');
}

export function formatShape(shape: readonly Dim[]): string {
  return `[${shape.join(', ')}]`;
}

// ---------------------------------------------------------------------------------------------
// Attribute access (canonical graphs hold every attribute; defaults cover hand-built graphs).

export function attrInts(node: GraphNode, name: string, fallback?: number[]): number[] {
  const v = node.attrs[name];
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw shapeError(`${node.op} '${node.name}' attribute ${name}`, 'a list of integers', 'nothing');
  }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x))) {
    throw shapeError(`${node.op} '${node.name}' attribute ${name}`, 'a list of integers', describeAttr(v));
  }
  return v as number[];
}

export function attrNumber(node: GraphNode, name: string, fallback?: number): number {
  const v = node.attrs[name];
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw shapeError(`${node.op} '${node.name}' attribute ${name}`, 'a number', 'nothing');
  }
  if (typeof v !== 'number' || Number.isNaN(v)) throw shapeError(`${node.op} '${node.name}' attribute ${name}`, 'a number', describeAttr(v));
  return v;
}

export function attrInt(node: GraphNode, name: string, fallback?: number): number {
  const v = attrNumber(node, name, fallback);
  if (!Number.isInteger(v)) throw shapeError(`${node.op} '${node.name}' attribute ${name}`, 'an integer', String(v));
  return v;
}

function describeAttr(v: AttrValue): string {
  if (Array.isArray(v)) return `[${v.slice(0, 8).join(', ')}${v.length > 8 ? ', ...' : ''}]`;
  if (typeof v === 'object') return String(v);
  return JSON.stringify(v);
}

// ---------------------------------------------------------------------------------------------

/** Broadcasting ops of exactly two inputs (three for Where); the others are variadic or checked elsewhere. */
const FIXED_ARITY_BROADCAST: ReadonlySet<string> = new Set(['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Where']);

function fail(node: GraphNode, what: string, expected: string, received: string): never {
  throw shapeError(`${what} of ${node.op} '${node.name}'`, expected, received);
}

function rank(node: GraphNode, shape: Shape, what: string, r: number): void {
  if (shape.length !== r) fail(node, what, `rank ${r}`, `shape ${formatShape(shape)}`);
}

/** Normalises an axis in [-r, r) to [0, r). */
export function normalizeAxis(node: GraphNode, axis: number, r: number, what = 'axis'): number {
  if (!Number.isInteger(axis) || axis < -r || axis >= r) fail(node, what, `an integer in [${-r}, ${r - 1}]`, String(axis));
  return axis < 0 ? axis + r : axis;
}

/** Two dimensions known to be equal (numbers equal, or the same symbol). */
function sameDim(a: Dim, b: Dim): boolean {
  return a === b;
}

/** Numpy (multidirectional) broadcasting of two shapes. */
export function broadcastShapes(node: GraphNode, a: Shape, b: Shape): Shape {
  const r = Math.max(a.length, b.length);
  const out: Shape = [];
  for (let i = 0; i < r; i++) {
    const x = i - (r - a.length) >= 0 ? a[i - (r - a.length)]! : 1;
    const y = i - (r - b.length) >= 0 ? b[i - (r - b.length)]! : 1;
    if (x === 1) out.push(y);
    else if (y === 1 || sameDim(x, y)) out.push(x);
    else if (typeof x === 'string' && typeof y === 'number') out.push(y);
    else if (typeof y === 'string' && typeof x === 'number') out.push(x);
    else if (typeof x === 'string' && typeof y === 'string') out.push(x);
    else fail(node, 'inputs', 'shapes that broadcast', `${formatShape(a)} and ${formatShape(b)}`);
  }
  return out;
}

/** A fresh symbol for a dimension that depends on a symbolic spatial size. */
function derived(node: GraphNode, axis: number): string {
  return `${node.outputs[0] ?? node.name}_d${axis}`;
}

/** Output spatial size of a sliding window; `ceil` for pooling with ceil_mode. */
function windowOutput(node: GraphNode, size: Dim, kernel: number, stride: number, padBegin: number, padEnd: number, dilation: number, ceil: boolean, axis: number): Dim {
  const span = (kernel - 1) * dilation + 1;
  if (typeof size !== 'number') {
    // A 'same' window (stride 1, padding span - 1) keeps a symbolic size; anything else is new.
    return stride === 1 && padBegin + padEnd === span - 1 && !ceil ? size : derived(node, axis);
  }
  const room = size + padBegin + padEnd - span;
  if (room < 0) fail(node, 'input', `a spatial size >= ${span - padBegin - padEnd} on axis ${axis}`, String(size));
  let out = (ceil ? Math.ceil(room / stride) : Math.floor(room / stride)) + 1;
  // The last window must start inside the input or its leading padding (ONNX and PyTorch rule).
  if (ceil && (out - 1) * stride >= size + padBegin) out -= 1;
  return out;
}

interface Window {
  kernel: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
}

function windowAttrs(node: GraphNode, kernelDefault?: number[]): Window {
  const kernel = attrInts(node, 'kernel_shape', kernelDefault);
  const n = kernel.length;
  const strides = attrInts(node, 'strides', new Array(n).fill(1));
  const pads = attrInts(node, 'pads', new Array(2 * n).fill(0));
  const dilations = attrInts(node, 'dilations', new Array(n).fill(1));
  if (strides.length !== n || pads.length !== 2 * n || dilations.length !== n) {
    fail(node, 'attributes', `strides/dilations of length ${n} and pads of length ${2 * n}`, `${strides.length}, ${dilations.length} and ${pads.length}`);
  }
  if (kernel.some((k) => k < 1) || strides.some((s) => s < 1) || dilations.some((d) => d < 1) || pads.some((p) => p < 0)) {
    fail(node, 'attributes', 'kernel, strides and dilations >= 1 and pads >= 0', `kernel [${kernel}], strides [${strides}], dilations [${dilations}], pads [${pads}]`);
  }
  return { kernel, strides, pads, dilations };
}

function conv(node: GraphNode, x: Shape, w: Shape | undefined, b: Shape | undefined): Shape {
  if (w === undefined) fail(node, 'weight', 'a weight input', 'none');
  if (x.length < 3) fail(node, 'input', 'rank >= 3 (N, C, spatial...)', formatShape(x));
  rank(node, w, 'weight', x.length);
  const group = attrInt(node, 'group', 1);
  const spatial = x.length - 2;
  const win = windowAttrs(node, w.slice(2).map((d) => (typeof d === 'number' ? d : 0)));
  if (win.kernel.length !== spatial) fail(node, 'kernel_shape', `${spatial} sizes`, `[${win.kernel}]`);
  const [m, cg] = [w[0]!, w[1]!];
  for (let i = 0; i < spatial; i++) if (w[2 + i] !== win.kernel[i]) fail(node, 'weight', `kernel size ${win.kernel[i]} on axis ${2 + i}`, formatShape(w));
  if (group < 1 || (typeof m === 'number' && m % group !== 0)) fail(node, 'group', `a divisor of the ${String(m)} output channels`, String(group));
  const c = x[1]!;
  if (typeof c === 'number' && typeof cg === 'number' && c !== cg * group) {
    fail(node, 'weight', `${c / group} input channels per group (input has ${c}, group ${group})`, formatShape(w));
  }
  if (b !== undefined && (b.length !== 1 || (typeof m === 'number' && typeof b[0] === 'number' && b[0] !== m))) fail(node, 'bias', `shape [${String(m)}]`, formatShape(b));
  const out: Shape = [x[0]!, m];
  for (let i = 0; i < spatial; i++) {
    out.push(windowOutput(node, x[2 + i]!, win.kernel[i]!, win.strides[i]!, win.pads[i]!, win.pads[i + spatial]!, win.dilations[i]!, false, 2 + i));
  }
  return out;
}

function convTranspose(node: GraphNode, x: Shape, w: Shape | undefined, b: Shape | undefined): Shape {
  if (w === undefined) fail(node, 'weight', 'a weight input', 'none');
  if (x.length < 3) fail(node, 'input', 'rank >= 3 (N, C, spatial...)', formatShape(x));
  rank(node, w, 'weight', x.length);
  const group = attrInt(node, 'group', 1);
  const spatial = x.length - 2;
  const win = windowAttrs(node, w.slice(2).map((d) => (typeof d === 'number' ? d : 0)));
  const outputPadding = attrInts(node, 'output_padding', new Array(spatial).fill(0));
  if (win.kernel.length !== spatial || outputPadding.length !== spatial) fail(node, 'kernel_shape/output_padding', `${spatial} sizes`, `[${win.kernel}] / [${outputPadding}]`);
  const c = x[1]!;
  if (typeof c === 'number' && typeof w[0] === 'number' && c !== w[0]) fail(node, 'weight', `${c} input channels on axis 0`, formatShape(w));
  if (group < 1 || (typeof w[0] === 'number' && w[0] % group !== 0)) fail(node, 'group', `a divisor of the ${String(w[0])} input channels`, String(group));
  const m = typeof w[1] === 'number' ? w[1] * group : dimProduct([w[1]!, group]);
  if (b !== undefined && (b.length !== 1 || (typeof b[0] === 'number' && b[0] !== m))) fail(node, 'bias', `shape [${String(m)}]`, formatShape(b));
  const out: Shape = [x[0]!, m];
  for (let i = 0; i < spatial; i++) {
    const size = x[2 + i]!;
    if (typeof size !== 'number') { out.push(derived(node, 2 + i)); continue; }
    const o = win.strides[i]! * (size - 1) + outputPadding[i]! + (win.kernel[i]! - 1) * win.dilations[i]! + 1 - win.pads[i]! - win.pads[i + spatial]!;
    if (o < 1) fail(node, 'attributes', 'an output size >= 1', `${o} on axis ${2 + i}`);
    out.push(o);
  }
  return out;
}

function pool(node: GraphNode, x: Shape): Shape {
  if (x.length < 3) fail(node, 'input', 'rank >= 3 (N, C, spatial...)', formatShape(x));
  const spatial = x.length - 2;
  const win = windowAttrs(node);
  if (win.kernel.length !== spatial) fail(node, 'kernel_shape', `${spatial} sizes`, `[${win.kernel}]`);
  const ceil = attrInt(node, 'ceil_mode', 0) === 1;
  const out: Shape = [x[0]!, x[1]!];
  for (let i = 0; i < spatial; i++) {
    if (win.pads[i]! >= win.kernel[i]! || win.pads[i + spatial]! >= win.kernel[i]!) {
      fail(node, 'pads', `pads smaller than the kernel (${win.kernel[i]}) on axis ${2 + i}`, `[${win.pads}]`);
    }
    out.push(windowOutput(node, x[2 + i]!, win.kernel[i]!, win.strides[i]!, win.pads[i]!, win.pads[i + spatial]!, win.dilations[i]!, ceil, 2 + i));
  }
  return out;
}

function gemm(node: GraphNode, a: Shape, b: Shape, c: Shape | undefined): Shape {
  rank(node, a, 'input A', 2);
  rank(node, b, 'input B', 2);
  const [m, ka] = attrInt(node, 'transA', 0) ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
  const [kb, n] = attrInt(node, 'transB', 0) ? [b[1]!, b[0]!] : [b[0]!, b[1]!];
  if (typeof ka === 'number' && typeof kb === 'number' && ka !== kb) fail(node, 'input B', `${ka} rows (after transB) to match A`, formatShape(b));
  const out: Shape = [m, n];
  if (c !== undefined) {
    const bc = broadcastShapes(node, out, c);
    if (bc.length !== 2 || !sameDim(bc[0]!, m) || !sameDim(bc[1]!, n)) fail(node, 'input C', `a shape that broadcasts to ${formatShape(out)}`, formatShape(c));
  }
  return out;
}

function matmul(node: GraphNode, a: Shape, b: Shape): Shape {
  if (a.length === 0 || b.length === 0) fail(node, 'inputs', 'rank >= 1', `${formatShape(a)} and ${formatShape(b)}`);
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const k1 = a2[a2.length - 1]!;
  const k2 = b2[b2.length - 2]!;
  if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) fail(node, 'inputs', 'inner dimensions that agree', `${formatShape(a)} and ${formatShape(b)}`);
  const batch = broadcastShapes(node, a2.slice(0, -2), b2.slice(0, -2));
  const out = batch.concat([a2[a2.length - 2]!, b2[b2.length - 1]!]);
  if (a.length === 1) out.splice(out.length - 2, 1);
  if (b.length === 1) out.splice(out.length - 1, 1);
  return out;
}

function concat(node: GraphNode, shapes: Shape[]): Shape {
  const first = shapes[0]!;
  const axis = normalizeAxis(node, attrInt(node, 'axis'), first.length);
  const sizes: Dim[] = [];
  for (const s of shapes) {
    rank(node, s, 'inputs', first.length);
    for (let i = 0; i < s.length; i++) {
      if (i !== axis && typeof s[i] === 'number' && typeof first[i] === 'number' && s[i] !== first[i]) {
        fail(node, 'inputs', `equal sizes outside axis ${axis}`, shapes.map(formatShape).join(' and '));
      }
    }
    sizes.push(s[axis]!);
  }
  const out = first.slice();
  out[axis] = sizes.every((d) => typeof d === 'number') ? (sizes as number[]).reduce((x, y) => x + y, 0) : sizes.join('+');
  return out;
}

/** Output of Reshape with a target that may hold 0 (copy) and one -1 (infer). */
export function reshapeShape(node: GraphNode, x: Shape, target: readonly number[]): Shape {
  const out: Shape = [];
  let inferAt = -1;
  for (const [i, t] of target.entries()) {
    if (t === -1) {
      if (inferAt >= 0) fail(node, 'shape', 'at most one -1', `[${target.join(', ')}]`);
      inferAt = i;
      out.push(1);
    } else if (t === 0) {
      if (i >= x.length) fail(node, 'shape', `0 only where the input (rank ${x.length}) has a dimension`, `[${target.join(', ')}]`);
      out.push(x[i]!);
    } else if (t > 0) {
      out.push(t);
    } else {
      fail(node, 'shape', 'entries >= -1', `[${target.join(', ')}]`);
    }
  }
  const total = dimProduct(x);
  if (inferAt >= 0) {
    const known = dimProduct(out);
    const rest = known === 0 ? undefined : dimDivide(total, known);
    if (rest === undefined) fail(node, 'shape', `a shape that divides ${String(total)} elements`, `[${target.join(', ')}]`);
    out[inferAt] = rest;
  } else {
    const produced = dimProduct(out);
    if (typeof total === 'number' && typeof produced === 'number' && total !== produced) {
      fail(node, 'shape', `${total} elements like the input ${formatShape(x)}`, `[${target.join(', ')}]`);
    }
  }
  return out;
}

function squeeze(node: GraphNode, x: Shape): Shape {
  const axes = attrInts(node, 'axes').map((a) => normalizeAxis(node, a, x.length, 'axes'));
  for (const a of axes) if (x[a] !== 1 && typeof x[a] === 'number') fail(node, 'input', `size 1 on axis ${a}`, formatShape(x));
  return x.filter((_, i) => !axes.includes(i));
}

function unsqueeze(node: GraphNode, x: Shape): Shape {
  const r = x.length + attrInts(node, 'axes').length;
  const axes = attrInts(node, 'axes').map((a) => normalizeAxis(node, a, r, 'axes'));
  if (new Set(axes).size !== axes.length) fail(node, 'axes', 'distinct axes', `[${axes}]`);
  const out: Shape = [];
  let j = 0;
  for (let i = 0; i < r; i++) out.push(axes.includes(i) ? 1 : x[j++]!);
  return out;
}

function transpose(node: GraphNode, x: Shape): Shape {
  const perm = attrInts(node, 'perm', x.map((_, i) => x.length - 1 - i));
  const sorted = perm.slice().sort((p, q) => p - q);
  if (perm.length !== x.length || sorted.some((p, i) => p !== i)) fail(node, 'perm', `a permutation of 0..${x.length - 1}`, `[${perm}]`);
  return perm.map((p) => x[p]!);
}

function pad(node: GraphNode, x: Shape): Shape {
  const pads = attrInts(node, 'pads');
  if (pads.length !== 2 * x.length) fail(node, 'pads', `${2 * x.length} values`, `[${pads}]`);
  return x.map((d, i) => {
    if (typeof d !== 'number') return pads[i] === 0 && pads[i + x.length] === 0 ? d : derived(node, i);
    const o = d + pads[i]! + pads[i + x.length]!;
    if (o < 0) fail(node, 'pads', `pads that keep axis ${i} non-negative`, `[${pads}]`);
    return o;
  });
}

/** Reduce*: canonical `axes` (explicit, non-negative) and `keepdims`. */
function reduce(node: GraphNode, x: Shape): Shape {
  const axes = new Set(attrInts(node, 'axes').map((a) => normalizeAxis(node, a, x.length, 'axes')));
  const keep = attrInt(node, 'keepdims', 1) !== 0;
  return x.flatMap((d, i) => (!axes.has(i) ? [d] : keep ? [1] : []));
}

/** Indices one Slice axis keeps (ONNX clamping rules; the same as constant folding's). */
function sliceCount(size: number, start: number, end: number, step: number): number {
  const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + size : start;
  let e = end < 0 ? end + size : end;
  if (step > 0) {
    s = clamp(s, 0, size);
    e = clamp(e, 0, size);
    return e > s ? Math.ceil((e - s) / step) : 0;
  }
  s = clamp(s, -1, size - 1);
  e = clamp(e, -1, size - 1);
  return s > e ? Math.ceil((s - e) / -step) : 0;
}

function slice(node: GraphNode, x: Shape): Shape {
  const starts = attrInts(node, 'starts');
  const ends = attrInts(node, 'ends');
  const axes = attrInts(node, 'axes', starts.map((_, i) => i)).map((a) => normalizeAxis(node, a, x.length, 'axes'));
  const steps = attrInts(node, 'steps', starts.map(() => 1));
  if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length || steps.some((v) => v === 0)) {
    fail(node, 'attributes', 'starts, ends, axes and steps of one length with non-zero steps', `${starts.length}, ${ends.length}, ${axes.length}, ${steps.length}`);
  }
  const out = x.slice();
  axes.forEach((a, i) => {
    const d = x[a]!;
    if (typeof d !== 'number') {
      // The whole of a dynamic dimension keeps it.
      out[a] = starts[i] === 0 && steps[i] === 1 && ends[i]! >= 2147483647 ? d : derived(node, a);
      return;
    }
    out[a] = sliceCount(d, starts[i]!, ends[i]!, steps[i]!);
  });
  return out;
}

function resize(node: GraphNode, x: Shape): Shape {
  const scales = node.attrs.scales as number[] | undefined;
  const sizes = node.attrs.sizes === undefined ? undefined : attrInts(node, 'sizes');
  if ((scales === undefined || scales.length !== x.length) && sizes === undefined) fail(node, 'scales', `${x.length} scales`, String(scales));
  if (sizes !== undefined && sizes.length !== x.length) fail(node, 'sizes', `${x.length} sizes`, `[${sizes}]`);
  return x.map((d, i) => {
    // A dynamic dimension keeps its size (scale 1) or becomes a new one.
    if (typeof d !== 'number') return scales?.[i] === 1 ? d : derived(node, i);
    if (sizes !== undefined) return sizes[i]!;
    return Math.floor(Math.fround(Math.fround(scales![i]!) * d));
  });
}

function gather(node: GraphNode, x: Shape, indices: Shape): Shape {
  const a = normalizeAxis(node, attrInt(node, 'axis', 0), x.length);
  return [...x.slice(0, a), ...indices, ...x.slice(a + 1)];
}

function split(node: GraphNode, x: Shape): Shape[] {
  const a = normalizeAxis(node, attrInt(node, 'axis', 0), x.length);
  const parts = attrInts(node, 'split');
  if (typeof x[a] === 'number' && parts.reduce((p, q) => p + q, 0) !== x[a]) fail(node, 'split', `sizes adding up to ${x[a]}`, `[${parts}]`);
  return parts.map((p) => x.map((d, i) => (i === a ? p : d)));
}

function expand(node: GraphNode, x: Shape): Shape {
  return broadcastShapes(node, x, attrInts(node, 'shape'));
}

function tile(node: GraphNode, x: Shape): Shape {
  const repeats = attrInts(node, 'repeats');
  if (repeats.length !== x.length) fail(node, 'repeats', `${x.length} repeats`, `[${repeats}]`);
  return x.map((d, i) => (repeats[i] === 1 ? d : typeof d === 'number' ? d * repeats[i]! : derived(node, i)));
}

function depthToSpace(node: GraphNode, x: Shape): Shape {
  rank(node, x, 'input', 4);
  const b = attrInt(node, 'blocksize');
  const [n, c, h, w] = x as [Dim, Dim, Dim, Dim];
  const times = (d: Dim, k: number, i: number): Dim => (typeof d === 'number' ? d * k : derived(node, i));
  if (node.op === 'DepthToSpace') {
    if (typeof c === 'number' && c % (b * b) !== 0) fail(node, 'input', `channels divisible by ${b * b}`, formatShape(x));
    return [n, typeof c === 'number' ? c / (b * b) : derived(node, 1), times(h, b, 2), times(w, b, 3)];
  }
  for (const [d, i] of [[h, 2], [w, 3]] as const) {
    if (typeof d === 'number' && d % b !== 0) fail(node, 'input', `spatial sizes divisible by ${b}`, formatShape(x));
    void i;
  }
  const over = (d: Dim, i: number): Dim => (typeof d === 'number' ? d / b : derived(node, i));
  return [n, times(c, b * b, 1), over(h, 2), over(w, 3)];
}

function flatten(node: GraphNode, x: Shape): Shape {
  const axis = attrInt(node, 'axis', 1);
  if (axis < -x.length || axis > x.length) fail(node, 'axis', `an integer in [${-x.length}, ${x.length}]`, String(axis));
  const a = axis < 0 ? axis + x.length : axis;
  return [dimProduct(x.slice(0, a)), dimProduct(x.slice(a))];
}

function channelParams(node: GraphNode, x: Shape, params: Shape[]): void {
  if (x.length < 2) fail(node, 'input', 'rank >= 2 (N, C, ...)', formatShape(x));
  for (const p of params) {
    if (p.length !== 1 || (typeof p[0] === 'number' && typeof x[1] === 'number' && p[0] !== x[1])) fail(node, 'parameters', `shape [${String(x[1])}]`, formatShape(p));
  }
}

/**
 * Output shapes of one node from its input shapes (undefined entries for omitted inputs), or
 * undefined when the op is not one this module knows.
 */
/** The reductions over `axes` (canonical form: axes and keepdims attributes). */
export const REDUCE_OPS: ReadonlySet<string> = new Set([
  'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceSum', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSumExp', 'ReduceLogSum',
]);

export function inferNodeShapes(node: GraphNode, inputs: readonly (Shape | undefined)[]): Shape[] | undefined {
  const x = inputs[0];
  const need = (i: number): Shape => {
    const s = inputs[i];
    if (s === undefined) fail(node, `input ${i}`, 'a value', 'none');
    return s;
  };
  if (REDUCE_OPS.has(node.op)) return [reduce(node, need(0))];
  switch (node.op) {
    case 'Conv':
      return [conv(node, need(0), inputs[1], inputs[2])];
    case 'ConvTranspose':
      return [convTranspose(node, need(0), inputs[1], inputs[2])];
    case 'MaxPool':
    case 'AveragePool':
      return [pool(node, need(0))];
    case 'GlobalAveragePool':
    case 'GlobalMaxPool': {
      const s = need(0);
      if (s.length < 3) fail(node, 'input', 'rank >= 3 (N, C, spatial...)', formatShape(s));
      return [[s[0]!, s[1]!, ...s.slice(2).map(() => 1)]];
    }
    case 'Gemm':
      return [gemm(node, need(0), need(1), inputs[2])];
    case 'MatMul':
      return [matmul(node, need(0), need(1))];
    case 'Relu':
    case 'LeakyRelu':
    case 'Clip':
    case 'Sigmoid':
    case 'HardSigmoid':
    case 'HardSwish':
    case 'Tanh':
    case 'Identity':
    case 'Dropout':
    // The int8 IR's per-tensor boundary ops (int8-ir.ts) keep the shape too.
    case 'QuantizeLinear':
    case 'DequantizeLinear':
    case 'Neg':
    case 'Sqrt':
    case 'Exp':
    case 'Cast':
    case 'Abs':
    case 'Log':
    case 'Reciprocal':
    case 'Floor':
    case 'Round':
    case 'Ceil':
    case 'Erf':
    case 'Softplus':
    case 'Softsign':
    case 'Elu':
    case 'Selu':
    case 'Celu':
    case 'Mish':
    case 'Gelu':
    case 'ThresholdedRelu':
    case 'Not':
    case 'IsNaN':
    case 'IsInf':
      return [need(0).slice()];
    case 'PRelu': {
      // The slope broadcasts to X (unidirectionally).
      const s = need(0);
      const out = broadcastShapes(node, s, need(1));
      if (formatShape(out) !== formatShape(s)) fail(node, 'slope', `a shape that broadcasts to ${formatShape(s)}`, formatShape(need(1)));
      return [s.slice()];
    }
    case 'ArgMax':
    case 'ArgMin': {
      const s = need(0);
      const a = normalizeAxis(node, attrInt(node, 'axis', 0), s.length);
      return [s.flatMap((d, i) => (i !== a ? [d] : attrInt(node, 'keepdims', 1) !== 0 ? [1] : []))];
    }
    case 'LRN': {
      const s = need(0);
      if (s.length < 3) fail(node, 'input', 'rank >= 3 (N, C, spatial...)', formatShape(s));
      return [s.slice()];
    }
    case 'Softmax':
    case 'LogSoftmax': {
      const s = need(0);
      normalizeAxis(node, attrInt(node, 'axis', -1), s.length);
      return [s.slice()];
    }
    case 'BatchNormalization':
      channelParams(node, need(0), [need(1), need(2), need(3), need(4)]);
      return [need(0).slice()];
    case 'InstanceNormalization':
      channelParams(node, need(0), [need(1), need(2)]);
      return [need(0).slice()];
    case 'LayerNormalization': {
      const s = need(0);
      const a = normalizeAxis(node, attrInt(node, 'axis', -1), s.length);
      const stats = s.map((d, i) => (i < a ? d : 1));
      return [s.slice(), stats, stats.slice()].slice(0, Math.max(1, node.outputs.length));
    }
    case 'GroupNormalization': {
      const s = need(0);
      if (s.length < 2) fail(node, 'input', 'rank >= 2 (N, C, ...)', formatShape(s));
      return [s.slice()];
    }
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div':
    case 'Sum':
    case 'Max':
    case 'Min':
    case 'Pow':
    case 'Equal':
    case 'Less':
    case 'LessOrEqual':
    case 'Greater':
    case 'GreaterOrEqual':
    case 'And':
    case 'Or':
    case 'Xor':
    case 'Where': {
      if (inputs.length === 0) fail(node, 'inputs', 'at least one input', 'none');
      const arity = node.op === 'Where' ? 3 : 2;
      if (FIXED_ARITY_BROADCAST.has(node.op) && inputs.length !== arity) fail(node, 'inputs', `${arity} inputs`, String(inputs.length));
      let s = need(0);
      for (let i = 1; i < inputs.length; i++) s = broadcastShapes(node, s, need(i));
      return [s];
    }
    case 'Concat':
      if (inputs.length === 0) fail(node, 'inputs', 'at least one input', 'none');
      return [concat(node, inputs.map((_, i) => need(i)))];
    case 'Flatten':
      return [flatten(node, need(0))];
    case 'Reshape':
      return [reshapeShape(node, need(0), attrInts(node, 'shape'))];
    case 'Squeeze':
      return [squeeze(node, need(0))];
    case 'Unsqueeze':
      return [unsqueeze(node, need(0))];
    case 'Transpose':
      return [transpose(node, need(0))];
    case 'Pad':
      return [pad(node, need(0))];
    case 'Shape':
      return [[need(0).length]];
    case 'Slice':
      return [slice(node, need(0))];
    case 'Resize':
      return [resize(node, need(0))];
    case 'Gather':
      return [gather(node, need(0), need(1))];
    case 'Split':
      return split(node, need(0));
    case 'Expand':
      return [expand(node, need(0))];
    case 'Tile':
      return [tile(node, need(0))];
    case 'DepthToSpace':
    case 'SpaceToDepth':
      return [depthToSpace(node, need(0))];
    default:
      void x;
      return undefined;
  }
}

/**
 * Shapes of every value of a canonical graph: inputs, initializers and node outputs, in one
 * forward pass. Values of ops this module does not know are left out (and so are their users).
 * `nodeShapes` extends the op set (the int8 IR's shapes in src/graph/int8-ir.ts).
 */
export function inferShapes(
  graph: Graph,
  nodeShapes: (node: GraphNode, inputs: readonly (Shape | undefined)[]) => Shape[] | undefined = inferNodeShapes,
): Map<string, Shape> {
  const shapes = new Map<string, Shape>();
  for (const input of graph.inputs) shapes.set(input.name, input.shape.slice());
  for (const [name, t] of graph.initializers) shapes.set(name, t.dims.slice());
  for (const node of graph.nodes) {
    const ins = node.inputs.map((n) => (n === '' ? undefined : shapes.get(n)));
    if (node.inputs.some((n, i) => n !== '' && ins[i] === undefined)) continue;
    const outs = nodeShapes(node, ins);
    if (outs === undefined) continue;
    outs.forEach((s, i) => {
      const name = node.outputs[i];
      if (name) shapes.set(name, s);
    });
  }
  return shapes;
}
