/**
 * Constant folding over the canonical graph form: nodes whose inputs are all known are evaluated
 * once, at import, and replaced by initializers. Covers what exporters emit around weights and
 * shapes: Constant, ConstantOfShape, Shape/Gather/Unsqueeze/Squeeze/Concat/Slice/Cast chains,
 * Reshape/Flatten/Transpose of weights and elementwise arithmetic on constants.
 *
 * Shape chains over a symbolic (dynamic) batch evaluate to a `SymbolicValue`, a small integer
 * vector whose entries may be symbols, so `x.view(x.size(0), -1)` still folds to a static Reshape.
 */
import { ErrorCode, KilnRangeError } from '../errors.js';
import { Tensor, sizeOf, type DType } from '../tensor.js';
import { decodeBfloat16, decodeMiniFloat, encodeBfloat16, encodeMiniFloat, encodeNarrowInt } from '../tensor-formats.js';
import type { Dim, Graph, GraphNode } from './ir.js';
import { attrInt, attrInts, broadcastShapes, inferNodeShapes, inferShapes, isStatic, normalizeAxis, type Shape } from './shape-inference.js';

/** A 1-D integer vector (or a scalar) whose entries may be symbolic dimensions. */
export interface SymbolicValue {
  readonly kind: 'symbolic';
  readonly dims: readonly Dim[];
  readonly scalar: boolean;
}

export type KnownValue = Tensor | SymbolicValue;

/** Largest tensor folding may create (elements); beyond it the model is refused. */
export const MAX_FOLD_ELEMENTS = 2 ** 28;
/** Most elements folding may create in one graph (VGG-19's weights from ConstantOfShape: 1.4e8). */
export const MAX_FOLD_TOTAL = 2 ** 29;

/** Ops `foldNode` can evaluate. */
export const FOLDABLE_OPS: ReadonlySet<string> = new Set([
  'Constant', 'ConstantOfShape', 'Shape', 'Gather', 'Unsqueeze', 'Squeeze', 'Concat', 'Reshape', 'Flatten',
  'Cast', 'Slice', 'Identity', 'Dropout', 'Transpose', 'Add', 'Sub', 'Mul', 'Div', 'Neg', 'Sqrt', 'Exp',
  'Abs', 'Reciprocal', 'Floor', 'Ceil', 'Log', 'Pow', 'Max', 'Min',
  'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf', 'Where',
  'Size',
  'ArgMax', 'ArgMin',
]);

/** Comparisons and logic on constants; the result is a bool tensor (uint8 0/1, as Cast to BOOL folds). */
const BOOL_FOLDS: Readonly<Record<string, (a: number, b: number) => number>> = {
  Equal: (a, b) => (a === b ? 1 : 0),
  Less: (a, b) => (a < b ? 1 : 0),
  LessOrEqual: (a, b) => (a <= b ? 1 : 0),
  Greater: (a, b) => (a > b ? 1 : 0),
  GreaterOrEqual: (a, b) => (a >= b ? 1 : 0),
  And: (a, b) => (a !== 0 && b !== 0 ? 1 : 0),
  Or: (a, b) => (a !== 0 || b !== 0 ? 1 : 0),
  Xor: (a, b) => ((a !== 0) !== (b !== 0) ? 1 : 0),
};

function asBool(t: Tensor): Tensor {
  return new Tensor('uint8', Uint8Array.from(t.data as ArrayLike<number>), t.dims);
}

export function isSymbolic(v: KnownValue | undefined): v is SymbolicValue {
  return v !== undefined && !(v instanceof Tensor) && v.kind === 'symbolic';
}

function symbolic(dims: readonly Dim[], scalar: boolean): KnownValue {
  if (isStatic(dims)) return new Tensor('int32', Int32Array.from(dims), scalar ? [] : [dims.length]);
  return { kind: 'symbolic', dims, scalar };
}

function fail(node: GraphNode, what: string, expected: string, received: string): never {
  throw new KilnRangeError(`Expected ${expected} for ${what} of ${node.op} '${node.name}' but received ${received}`, ErrorCode.SHAPE_MISMATCH);
}

/**
 * Elements the node being folded may create: set by foldNode for the length of one synchronous
 * call, so every helper checks a size before allocating without threading it through.
 */
let foldLimit = MAX_FOLD_ELEMENTS;

function checkSize(node: GraphNode, shape: readonly number[]): number {
  const n = sizeOf(shape);
  if (!(n <= foldLimit)) fail(node, 'output', `at most ${foldLimit} elements`, `shape [${shape.join(', ')}] (${n} elements)`);
  return n;
}

function alloc(type: DType, n: number): Tensor['data'] {
  switch (type) {
    case 'float32': return new Float32Array(n);
    case 'int8': return new Int8Array(n);
    case 'uint8': return new Uint8Array(n);
    default: return new Int32Array(n);
  }
}

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

/** Copies `src` into a tensor of `shape` by an index map (output flat index -> input flat index). */
function gatherBy(node: GraphNode, src: Tensor, shape: number[], map: (out: number[]) => number): Tensor {
  const n = checkSize(node, shape);
  const out = alloc(src.type, n);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    out[i] = src.data[map(idx)]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return new Tensor(src.type, out as never, shape);
}

function toInts(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number>);
}

function elementwise(node: GraphNode, inputs: Tensor[], f: (...x: number[]) => number): Tensor {
  const type = inputs[0]!.type;
  if (inputs.some((t) => t.type !== type)) fail(node, 'inputs', 'one element type', inputs.map((t) => t.type).join(' and '));
  let shape: Shape = inputs[0]!.dims.slice();
  for (const t of inputs.slice(1)) shape = broadcastShapes(node, shape, t.dims.slice());
  const out = shape as number[];
  const outStrides = strides(out);
  const n = checkSize(node, out);
  const data = alloc(type, n);
  const maps = inputs.map((t) => {
    const off = out.length - t.dims.length;
    const s = strides(t.dims);
    return out.map((_, d) => (d < off || t.dims[d - off] === 1 ? 0 : s[d - off]!));
  });
  const args = new Array<number>(inputs.length);
  for (let i = 0; i < n; i++) {
    let rest = i;
    const offsets = new Array<number>(inputs.length).fill(0);
    for (let d = 0; d < out.length; d++) {
      const q = Math.floor(rest / outStrides[d]!);
      rest -= q * outStrides[d]!;
      for (let k = 0; k < inputs.length; k++) offsets[k]! += q * maps[k]![d]!;
    }
    for (let k = 0; k < inputs.length; k++) args[k] = inputs[k]!.data[offsets[k]!]!;
    data[i] = f(...args);
  }
  return new Tensor(type, data as never, out);
}

export function sliceParams(node: GraphNode, shape: readonly Dim[]): { axes: number[]; starts: number[]; ends: number[]; steps: number[] } {
  const starts = attrInts(node, 'starts');
  const ends = attrInts(node, 'ends');
  const axes = attrInts(node, 'axes', starts.map((_, i) => i)).map((a) => normalizeAxis(node, a, shape.length, 'axes'));
  const steps = attrInts(node, 'steps', starts.map(() => 1));
  if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length || steps.some((s) => s === 0)) {
    fail(node, 'attributes', 'starts, ends, axes and steps of one length with non-zero steps', `${starts.length}, ${ends.length}, ${axes.length}, ${steps.length}`);
  }
  return { axes, starts, ends, steps };
}

/** Indices one Slice axis keeps (ONNX clamping rules). */
export function sliceIndices(size: number, start: number, end: number, step: number): number[] {
  const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + size : start;
  let e = end < 0 ? end + size : end;
  const out: number[] = [];
  if (step > 0) {
    s = clamp(s, 0, size);
    e = clamp(e, 0, size);
    for (let i = s; i < e; i += step) out.push(i);
  } else {
    s = clamp(s, -1, size - 1);
    e = clamp(e, -1, size - 1);
    for (let i = s; i > e; i += step) out.push(i);
  }
  return out;
}

/** ONNX's narrow formats by TensorProto data type, for casts of constants (held as float32 / int32 values). */
const NARROW_CASTS: Readonly<Record<number, (v: number) => number>> = {
  16: (v) => decodeBfloat16(encodeBfloat16(v)),
  17: (v) => decodeMiniFloat('float8e4m3fn', encodeMiniFloat('float8e4m3fn', v)),
  18: (v) => decodeMiniFloat('float8e4m3fnuz', encodeMiniFloat('float8e4m3fnuz', v)),
  19: (v) => decodeMiniFloat('float8e5m2', encodeMiniFloat('float8e5m2', v)),
  20: (v) => decodeMiniFloat('float8e5m2fnuz', encodeMiniFloat('float8e5m2fnuz', v)),
  23: (v) => decodeMiniFloat('float4e2m1', encodeMiniFloat('float4e2m1', v)),
  21: (v) => encodeNarrowInt('uint4', v),
  22: (v) => encodeNarrowInt('int4', v),
  25: (v) => encodeNarrowInt('uint2', v),
  26: (v) => encodeNarrowInt('int2', v),
};

function castTo(node: GraphNode, t: Tensor, to: number): Tensor | undefined {
  const narrow = NARROW_CASTS[to];
  if (narrow !== undefined) {
    // The value the narrow type holds, kept as Kiln's float32 or int32 (as float16 is).
    const out = to >= 21 && to !== 23 ? new Int32Array(t.size) : new Float32Array(t.size);
    for (let i = 0; i < t.size; i++) out[i] = narrow(Number(t.data[i]!));
    return new Tensor(out instanceof Int32Array ? 'int32' : 'float32', out as never, t.dims);
  }
  // A valid type Kiln holds no value of (FLOAT8E8M0, STRING...): not folded, the runtime refuses it by name.
  if (to === 8 || to === 14 || to === 15 || to === 24) return undefined;
  // TensorProto data types: 1 float, 11 double, 10 float16 -> float32; 2 uint8, 9 bool -> uint8;
  // 3 int8 -> int8; other integers -> int32.
  const floatTypes = [1, 10, 11];
  const type: DType = floatTypes.includes(to) ? 'float32' : to === 2 || to === 9 ? 'uint8' : to === 3 ? 'int8' : 'int32';
  if (![1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13].includes(to)) fail(node, 'attribute to', 'a numeric data type', String(to));
  const out = alloc(type, t.size);
  for (let i = 0; i < t.size; i++) {
    const v = t.data[i]!;
    out[i] = to === 9 ? (v !== 0 ? 1 : 0) : type === 'float32' ? v : Math.trunc(v);
  }
  return new Tensor(type, out as never, t.dims);
}

function foldSymbolic(node: GraphNode, inputs: readonly (KnownValue | undefined)[]): KnownValue[] | undefined {
  const asDims = (v: KnownValue | undefined): { dims: Dim[]; scalar: boolean } | undefined => {
    if (v === undefined) return undefined;
    if (isSymbolic(v)) return { dims: v.dims.slice(), scalar: v.scalar };
    if (v.type !== 'int32' || v.dims.length > 1) return undefined;
    return { dims: toInts(v), scalar: v.dims.length === 0 };
  };
  if (ELEMENTWISE_SYMBOLIC[node.op] !== undefined) return foldSymbolicArithmetic(node, inputs.map(asDims));
  const x = asDims(inputs[0]);
  if (x === undefined) return undefined;
  switch (node.op) {
    case 'Identity':
    case 'Cast':
      return [symbolic(x.dims, x.scalar)];
    case 'Reshape':
    case 'Flatten': {
      // Exporters turn scalars into 1-element vectors and back with Reshape as often as with
      // (Un)squeeze: only those two forms carry a shape vector on.
      const shape = inferNodeShapes(node, [x.scalar ? [] : [x.dims.length]])![0]!;
      if (shape.length === 0) return [symbolic(x.dims, true)];
      return shape.length === 1 ? [symbolic(x.dims, false)] : undefined;
    }
    case 'Gather': {
      const idx = inputs[1];
      if (x.scalar || idx === undefined || isSymbolic(idx) || idx.dims.length > 1 || attrInt(node, 'axis', 0) !== 0) return undefined;
      const picked = toInts(idx).map((i) => {
        const j = i < 0 ? i + x.dims.length : i;
        if (j < 0 || j >= x.dims.length) fail(node, 'indices', `indices in [${-x.dims.length}, ${x.dims.length - 1}]`, String(i));
        return x.dims[j]!;
      });
      return [symbolic(picked, idx.dims.length === 0)];
    }
    case 'Unsqueeze':
      return x.scalar && attrInts(node, 'axes').length === 1 ? [symbolic(x.dims, false)] : undefined;
    case 'Squeeze':
      return !x.scalar && x.dims.length === 1 ? [symbolic(x.dims, true)] : undefined;
    case 'Concat': {
      const parts = inputs.map(asDims);
      if (parts.some((p) => p === undefined || p.scalar)) return undefined;
      return [symbolic(parts.flatMap((p) => p!.dims), false)];
    }
    case 'Slice': {
      if (x.scalar) return undefined;
      const p = sliceParams(node, x.dims);
      return [symbolic(sliceIndices(x.dims.length, p.starts[0]!, p.ends[0]!, p.steps[0]!).map((i) => x.dims[i]!), false)];
    }
    default:
      return undefined;
  }
}

/** Integer arithmetic on shape vectors, and each op's identity operand (what leaves a symbol as it is). */
const ELEMENTWISE_SYMBOLIC: Readonly<Record<string, { f: (a: number, b: number) => number; identity: number; commutes: boolean }>> = {
  Add: { f: (a, b) => a + b, identity: 0, commutes: true },
  Sub: { f: (a, b) => a - b, identity: 0, commutes: false },
  Mul: { f: (a, b) => a * b, identity: 1, commutes: true },
  Div: { f: (a, b) => (b === 0 ? 0 : Math.trunc(a / b)), identity: 1, commutes: false },
};

/**
 * Add/Sub/Mul/Div over shape vectors some of whose entries are symbols: entries with both
 * operands static are computed, a symbol against the identity operand stays that symbol (the
 * batch entry of `shape // [1, 2, 1, 1]`); anything else is not folded.
 */
function foldSymbolicArithmetic(node: GraphNode, inputs: ({ dims: Dim[]; scalar: boolean } | undefined)[]): KnownValue[] | undefined {
  const op = ELEMENTWISE_SYMBOLIC[node.op]!;
  const [a, b] = inputs;
  if (a === undefined || b === undefined || inputs.length !== 2) return undefined;
  const n = Math.max(a.dims.length, b.dims.length);
  const at = (v: { dims: Dim[] }, i: number): Dim | undefined => (v.dims.length === 1 ? v.dims[0] : v.dims.length === n ? v.dims[i] : undefined);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = at(a, i);
    const y = at(b, i);
    if (x === undefined || y === undefined) return undefined;
    if (typeof x === 'number' && typeof y === 'number') out.push(op.f(x, y));
    else if (typeof x === 'string' && y === op.identity) out.push(x);
    else if (typeof y === 'string' && x === op.identity && op.commutes) out.push(y);
    else return undefined;
  }
  return [symbolic(out, a.scalar && b.scalar)];
}

/**
 * Evaluates a canonical node whose inputs are known (`inputs[i]` undefined for an omitted
 * optional input); `shapes` gives the input shapes (Shape folds from a static or symbolic shape
 * alone). Returns undefined when the node cannot be folded. Throws a shape-mismatch RangeError
 * before allocating an output larger than `limit` elements (at most MAX_FOLD_ELEMENTS).
 */
export function foldNode(
  node: GraphNode,
  inputs: readonly (KnownValue | undefined)[],
  shapes: readonly (Shape | undefined)[] = [],
  limit = MAX_FOLD_ELEMENTS,
): KnownValue[] | undefined {
  const outer = foldLimit;
  foldLimit = Math.min(limit, MAX_FOLD_ELEMENTS);
  try {
    return evaluate(node, inputs, shapes);
  } finally {
    foldLimit = outer;
  }
}

/** ArgMax / ArgMin of a constant: int32 indices, with the plan kernel's comparisons (native/src/elementwise/arg-reduce.h). */
function argReduce(node: GraphNode, x: Tensor): Tensor {
  const rank = x.dims.length;
  const axis = normalizeAxis(node, attrInt(node, 'axis', 0), rank);
  const keep = attrInt(node, 'keepdims', 1) !== 0;
  const last = attrInt(node, 'select_last_index', 0) !== 0;
  const max = node.op === 'ArgMax';
  const count = x.dims[axis]!;
  if (count === 0) fail(node, 'input', 'a non-empty reduced axis', 'an empty one');
  const outer = sizeOf(x.dims.slice(0, axis));
  const inner = sizeOf(x.dims.slice(axis + 1));
  const v = Array.from(x.data as ArrayLike<number | bigint>, Number);
  const out = new Int32Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * count * inner + i;
      let best = v[base]!;
      let at = 0;
      for (let r = 1; r < count; r++) {
        const c = v[base + r * inner]!;
        if (max ? (last ? c >= best : c > best) : last ? c <= best : c < best) {
          best = c;
          at = r;
        }
      }
      out[o * inner + i] = at;
    }
  }
  return new Tensor('int32', out, x.dims.flatMap((d, i) => (i !== axis ? [d] : keep ? [1] : [])));
}

function evaluate(node: GraphNode, inputs: readonly (KnownValue | undefined)[], shapes: readonly (Shape | undefined)[]): KnownValue[] | undefined {
  if (!FOLDABLE_OPS.has(node.op)) return undefined;
  if (node.op === 'Constant') {
    const value = node.attrs.value;
    return value instanceof Tensor ? [value] : undefined;
  }
  if (node.op === 'Shape') {
    const s = shapes[0] ?? (inputs[0] instanceof Tensor ? inputs[0].dims.slice() : undefined);
    if (s === undefined) return undefined;
    const r = s.length;
    const clampAxis = (a: number): number => Math.min(Math.max(a < 0 ? a + r : a, 0), r);
    const start = clampAxis(attrInt(node, 'start', 0));
    const end = clampAxis(attrInt(node, 'end', r));
    return [symbolic(s.slice(start, Math.max(start, end)), false)];
  }
  if (node.op === 'Size') {
    // Like Shape, only the input's shape matters; a symbolic dimension leaves the count unknown.
    const s = shapes[0] ?? (inputs[0] instanceof Tensor ? inputs[0].dims.slice() : undefined);
    if (s === undefined || !isStatic(s)) return undefined;
    return [new Tensor('int32', Int32Array.of(sizeOf(s as number[])), [])];
  }
  const present = node.inputs.map((name, i) => (name === '' ? undefined : inputs[i]));
  if (node.inputs.some((name, i) => name !== '' && inputs[i] === undefined)) return undefined;
  if (present.some(isSymbolic)) return foldSymbolic(node, present);
  const t = present as (Tensor | undefined)[];
  const x = t[0];
  if (x === undefined) return undefined;
  const boolFold = Object.hasOwn(BOOL_FOLDS, node.op) ? BOOL_FOLDS[node.op] : undefined;
  if (boolFold) return [asBool(elementwise(node, t as Tensor[], boolFold as (...x: number[]) => number))];
  switch (node.op) {
    case 'ArgMax':
    case 'ArgMin':
      return [argReduce(node, x)];
    case 'ConstantOfShape': {
      const shape = toInts(x);
      if (x.type !== 'int32' || shape.some((d) => d < 0)) fail(node, 'shape', 'non-negative integers', `[${shape.join(', ')}]`);
      const n = checkSize(node, shape);
      const value = node.attrs.value instanceof Tensor ? node.attrs.value : new Tensor('float32', [0], [1]);
      if (value.size !== 1) fail(node, 'attribute value', 'one element', `${value.size}`);
      const data = alloc(value.type, n);
      data.fill(value.data[0]!);
      return [new Tensor(value.type, data as never, shape)];
    }
    case 'Identity':
    case 'Dropout':
      return [x];
    case 'Cast': {
      const cast = castTo(node, x, attrInt(node, 'to'));
      return cast === undefined ? undefined : [cast];
    }
    case 'Reshape':
    case 'Flatten':
    case 'Unsqueeze':
    case 'Squeeze': {
      const shape = inferNodeShapes(node, [x.dims.slice()])![0]!;
      return [new Tensor(x.type, x.data, shape as number[])];
    }
    case 'Transpose': {
      const shape = inferNodeShapes(node, [x.dims.slice()])![0]! as number[];
      const perm = attrInts(node, 'perm', x.dims.map((_, i) => x.dims.length - 1 - i));
      const s = strides(x.dims);
      return [gatherBy(node, x, shape, (idx) => idx.reduce((acc, v, d) => acc + v * s[perm[d]!]!, 0))];
    }
    case 'Concat': {
      const parts = t as Tensor[];
      if (parts.some((p) => p.type !== x.type)) fail(node, 'inputs', 'one element type', parts.map((p) => p.type).join(' and '));
      const shape = inferNodeShapes(node, parts.map((p) => p.dims.slice()))![0]! as number[];
      const axis = normalizeAxis(node, attrInt(node, 'axis'), shape.length);
      const outer = sizeOf(shape.slice(0, axis));
      const out = alloc(x.type, checkSize(node, shape));
      let o = 0;
      for (let i = 0; i < outer; i++) {
        for (const p of parts) {
          const inner = sizeOf(p.dims.slice(axis));
          out.set(p.data.subarray(i * inner, (i + 1) * inner) as never, o);
          o += inner;
        }
      }
      return [new Tensor(x.type, out as never, shape)];
    }
    case 'Gather': {
      const indices = t[1];
      if (indices === undefined || indices.type !== 'int32') return undefined;
      const axis = normalizeAxis(node, attrInt(node, 'axis', 0), x.dims.length);
      const size = x.dims[axis]!;
      const idx = toInts(indices).map((i) => {
        if (i < -size || i >= size) fail(node, 'indices', `indices in [${-size}, ${size - 1}]`, String(i));
        return i < 0 ? i + size : i;
      });
      const shape = [...x.dims.slice(0, axis), ...indices.dims, ...x.dims.slice(axis + 1)];
      const s = strides(x.dims);
      const ir = indices.dims.length;
      const is = strides(indices.dims);
      return [gatherBy(node, x, shape, (o) => {
        let flat = 0;
        for (let d = 0; d < axis; d++) flat += o[d]! * s[d]!;
        let k = 0;
        for (let d = 0; d < ir; d++) k += o[axis + d]! * is[d]!;
        flat += idx[k]! * s[axis]!;
        for (let d = axis + 1; d < x.dims.length; d++) flat += o[d + ir - 1]! * s[d]!;
        return flat;
      })];
    }
    case 'Slice': {
      const p = sliceParams(node, x.dims);
      const keep = x.dims.map((d) => Array.from({ length: d }, (_, i) => i));
      p.axes.forEach((a, i) => { keep[a] = sliceIndices(x.dims[a]!, p.starts[i]!, p.ends[i]!, p.steps[i]!); });
      const s = strides(x.dims);
      return [gatherBy(node, x, keep.map((k) => k.length), (o) => o.reduce((acc, v, d) => acc + keep[d]![v]! * s[d]!, 0))];
    }
    case 'Add':
      return [elementwise(node, t as Tensor[], (a, b) => a! + b!)];
    case 'Sub':
      return [elementwise(node, t as Tensor[], (a, b) => a! - b!)];
    case 'Mul':
      return [elementwise(node, t as Tensor[], (a, b) => a! * b!)];
    case 'Div':
      return [elementwise(node, t as Tensor[], x.type === 'float32' ? (a, b) => a! / b! : (a, b) => (b === 0 ? 0 : Math.trunc(a! / b!)))];
    case 'Neg':
      return [elementwise(node, [x], (a) => -a!)];
    case 'Sqrt':
      return [elementwise(node, [x], (a) => Math.sqrt(a!))];
    case 'Exp':
      return [elementwise(node, [x], (a) => Math.exp(a!))];
    case 'Abs':
      return [elementwise(node, [x], (a) => Math.abs(a!))];
    case 'Reciprocal':
      return [elementwise(node, [x], (a) => 1 / a!)];
    case 'Floor':
      return [elementwise(node, [x], (a) => Math.floor(a!))];
    case 'Ceil':
      return [elementwise(node, [x], (a) => Math.ceil(a!))];
    case 'Log':
      return [elementwise(node, [x], (a) => Math.log(a!))];
    case 'Pow': {
      // The exponent may have another element type than the base (the result has the base's).
      const e = t[1]!;
      const exponent = e.type === x.type ? e : new Tensor(x.type, Array.from(e.data as ArrayLike<number>) as never, e.dims);
      return [elementwise(node, [x, exponent], (a, b) => Math.pow(a!, b!))];
    }
    case 'Max':
      return [elementwise(node, t as Tensor[], (...v) => (v.some(Number.isNaN) ? Number.NaN : Math.max(...v)))];
    case 'Min':
      return [elementwise(node, t as Tensor[], (...v) => (v.some(Number.isNaN) ? Number.NaN : Math.min(...v)))];
    case 'Not':
      return [asBool(elementwise(node, [x], (a) => (a === 0 ? 1 : 0)))];
    case 'IsNaN':
      return [asBool(elementwise(node, [x], (a) => (Number.isNaN(a) ? 1 : 0)))];
    case 'IsInf': {
      const neg = attrInt(node, 'detect_negative', 1) !== 0;
      const pos = attrInt(node, 'detect_positive', 1) !== 0;
      return [asBool(elementwise(node, [x], (a) => ((a === -Infinity && neg) || (a === Infinity && pos) ? 1 : 0)))];
    }
    case 'Where': {
      // The condition takes X's element type so that one broadcast serves the three operands.
      const [cond, a, b] = t as Tensor[];
      const c = new Tensor(a!.type, Array.from(cond!.data as ArrayLike<number>) as never, cond!.dims);
      return [elementwise(node, [c, a!, b!], (k, u, v) => (k !== 0 ? u! : v!))];
    }
    default:
      return undefined;
  }
}

/**
 * Folds every foldable node of a canonical graph whose inputs are initializers (or, for Shape,
 * whose input shape is static) into initializers; graph outputs are never folded away. Nodes that
 * fold to a symbolic value stay (their users may still need them) unless nothing reads them any
 * more; initializers no node reads any more are dropped.
 */
export function foldConstants(graph: Graph): Graph {
  const shapes = inferShapes(graph);
  const known = new Map<string, KnownValue>(graph.initializers);
  const outputs = new Set(graph.outputs.map((o) => o.name));
  let nodes: GraphNode[] = [];
  for (const node of graph.nodes) {
    const folded = node.outputs.some((o) => outputs.has(o))
      ? undefined
      : foldNode(node, node.inputs.map((n) => known.get(n)), node.inputs.map((n) => shapes.get(n)));
    const complete = folded !== undefined && node.outputs.every((o, i) => o === '' || folded[i] !== undefined);
    if (!complete) {
      nodes.push(node);
      continue;
    }
    node.outputs.forEach((o, i) => { if (o !== '') known.set(o, folded[i]!); });
    if (folded.some(isSymbolic)) nodes.push(node);
  }
  nodes = pruneFolded(nodes, known, outputs);
  const used = new Set(nodes.flatMap((n) => n.inputs));
  for (const o of graph.outputs) used.add(o.name);
  const initializers = new Map<string, Tensor>();
  for (const [name, value] of known) {
    if (used.has(name) && value instanceof Tensor && !nodes.some((n) => n.outputs.includes(name))) initializers.set(name, value);
  }
  return { ...graph, nodes, initializers };
}

/** Drops kept symbolic producers nobody reads (walking backwards so chains go at once). */
function pruneFolded(nodes: GraphNode[], known: Map<string, KnownValue>, outputs: Set<string>): GraphNode[] {
  const reads = new Map<string, number>();
  for (const n of nodes) for (const i of n.inputs) reads.set(i, (reads.get(i) ?? 0) + 1);
  const keep = new Array<boolean>(nodes.length).fill(true);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k]!;
    const symbolicProducer = n.outputs.some((o) => isSymbolic(known.get(o)));
    const read = n.outputs.some((o) => outputs.has(o) || (reads.get(o) ?? 0) > 0);
    if (symbolicProducer && !read) {
      keep[k] = false;
      for (const i of n.inputs) reads.set(i, (reads.get(i) ?? 0) - 1);
    }
  }
  return nodes.filter((_, k) => keep[k]);
}
