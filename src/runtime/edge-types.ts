/**
 * Typed model inputs and outputs at the session edge, the way TensorRT treats I/O formats: the plan
 * computes in float32 whatever the model declares, and values are converted where they enter and
 * leave it.
 *
 * - float16 and float64 inputs are converted to float32 on entry (float16 widens exactly; float64
 *   rounds to nearest), float16/float64 outputs on exit (float64 widens exactly; float16 rounds to
 *   nearest even). A float64 model therefore computes at float32 precision (about 7 significant
 *   digits), not float64's: Kiln says so here and in the README rather than pretending otherwise.
 * - A Cast whose input is a graph input, or whose output is a graph output, is that conversion:
 *   it becomes an Identity in the plan and its ONNX semantics are applied in JavaScript (see
 *   {@link castElements}). Integer and bool inputs are accepted only when every reader is such a
 *   Cast (or a parameter slot, see {@link EdgeOptions.parameterSlot}): integer arithmetic itself
 *   is refused (ERR_KILN_UNSUPPORTED_OP naming the dtype and the op).
 * - An input nothing reads (CastLike's `like`, once CastLike is a Cast) is still fed, type-checked,
 *   and otherwise ignored.
 *
 * The conversions run on the JavaScript thread in O(elements) and always copy into a fresh array
 * (a native run never reads the caller's buffer of a converted input): cheap at model I/O sizes.
 */
import { ErrorCode, KilnError } from '../errors.js';
import { INT8_OPS } from '../graph/int8-ir.js';
import type { Dim, Graph, GraphNode, ValueInfo } from '../graph/ir.js';
import { type DataTypeMap, type DType, fromFloat16Bits, Tensor, toFloat16Bits } from '../tensor.js';
import { decodeBfloat16, decodeMiniFloat, encodeBfloat16, encodeMiniFloat, encodeNarrowInt, MINI_FLOATS, type MiniFloatType, type NarrowIntType } from '../tensor-formats.js';
import { typeError } from '../validate.js';

/** The Tensor dtype of each ONNX TensorProto data type that has one. */
export const ONNX_TYPE_DTYPES: Readonly<Partial<Record<number, DType>>> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64',
  16: 'bfloat16', 17: 'float8e4m3fn', 18: 'float8e4m3fnuz', 19: 'float8e5m2', 20: 'float8e5m2fnuz', 21: 'uint4', 22: 'int4', 23: 'float4e2m1', 25: 'uint2', 26: 'int2',
};

/** ONNX names of the data types with no Tensor dtype (for refusals). */
const UNHELD_TYPE_NAMES: Readonly<Record<number, string>> = {
  8: 'STRING', 14: 'COMPLEX64', 15: 'COMPLEX128', 16: 'BFLOAT16', 17: 'FLOAT8E4M3FN', 18: 'FLOAT8E4M3FNUZ', 19: 'FLOAT8E5M2', 20: 'FLOAT8E5M2FNUZ',
  21: 'UINT4', 22: 'INT4', 23: 'FLOAT4E2M1', 24: 'FLOAT8E8M0', 25: 'UINT2', 26: 'INT2',
};

/** The ONNX data type number of a dtype (inverse of {@link ONNX_TYPE_DTYPES}). */
export function onnxTypeOf(dtype: DType): number {
  for (const [k, v] of Object.entries(ONNX_TYPE_DTYPES)) if (v === dtype) return Number(k);
  throw typeError('dtype', `one of ${Object.values(ONNX_TYPE_DTYPES).map((t) => `'${t}'`).join(', ')}`, dtype);
}

/**
 * Why an ONNX data type cannot cross the session edge ("no JavaScript tensor type for BFLOAT16"),
 * or undefined when it has a Tensor dtype.
 */
export function unheldTypeReason(onnxType: number): string | undefined {
  if (ONNX_TYPE_DTYPES[onnxType] !== undefined) return undefined;
  return `no JavaScript tensor type for ${UNHELD_TYPE_NAMES[onnxType] ?? `ONNX data type ${onnxType}`}`;
}

const FLOATING: ReadonlySet<DType> = new Set(['float32', 'float64', 'float16']);

/** Whether values of this dtype are floating point. */
export function isFloating(dtype: DType): boolean {
  return FLOATING.has(dtype);
}

/** Integer ranges of the integer dtypes (bool is handled apart). */
const INT_RANGE: Readonly<Partial<Record<DType, readonly [bigint, bigint]>>> = {
  int2: [-2n, 1n], uint2: [0n, 3n], int4: [-8n, 7n], uint4: [0n, 15n],
  int8: [-128n, 127n], uint8: [0n, 255n], int16: [-32768n, 32767n], uint16: [0n, 65535n],
  int32: [-2147483648n, 2147483647n], uint32: [0n, 4294967295n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n], uint64: [0n, 2n ** 64n - 1n],
};

/**
 * IEEE binary16 bits of any number, rounded once to nearest even (toFloat16Bits goes through
 * float32 first, which would round a float64 twice).
 */
export function halfBitsOfNumber(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // 65520 is halfway to 2^16 and rounds (to even) up: infinity
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24); // subnormal (2048 * 2^-24 carries into the normal range correctly)
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; // log2 may be off by one ulp near powers of two
  else if (2 ** (e + 1) <= a) e++;
  const m = roundHalfEven(a * 2 ** (10 - e)); // in [1024, 2048]: exact scaling by a power of two
  return sign | (((e + 15) << 10) + (m - 1024)); // m = 2048 carries into the exponent
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** A 64-bit integer as the nearest float32, rounded once (Number() then fround would round twice). */
export function bigintToFloat32(v: bigint): number {
  const neg = v < 0n;
  let a = neg ? -v : v;
  if (a < 2n ** 53n) return Math.fround(neg ? -Number(a) : Number(a));
  const bits = a.toString(2).length;
  const shift = BigInt(bits - 24);
  const q = a >> shift;
  const rest = a - (q << shift);
  const half = 1n << (shift - 1n);
  a = rest > half || (rest === half && (q & 1n) === 1n) ? q + 1n : q;
  const r = Number(a) * 2 ** Number(shift);
  return Math.fround(neg ? -r : r);
}

/** Elements of any dtype as numbers or bigints, in the value they stand for (float16 decoded, bool 0/1). */
function elementAt(data: DataTypeMap[DType], dtype: DType, i: number): number | bigint {
  const v = data[i]!;
  if (dtype === 'float16') return fromFloat16Bits(v as number);
  if (dtype === 'bfloat16') return decodeBfloat16(v as number);
  if (dtype in MINI_FLOATS) return decodeMiniFloat(dtype as MiniFloatType, v as number);
  if (dtype === 'bool') return v ? 1 : 0;
  return v;
}

/**
 * A float to an integer dtype with ONNX Cast semantics: truncated toward zero (numpy astype).
 * ONNX leaves out-of-range values undefined (numpy's result depends on the CPU): Kiln saturates to
 * the type's range and maps NaN to 0, as WebAssembly's trunc_sat and Rust's `as` do.
 */
function floatToInt(x: number, dtype: DType): bigint {
  const [lo, hi] = INT_RANGE[dtype]!;
  if (Number.isNaN(x)) return 0n;
  if (x === Infinity) return hi;
  if (x === -Infinity) return lo;
  const t = BigInt(Math.trunc(x));
  return t < lo ? lo : t > hi ? hi : t;
}

/** An integer to an integer dtype as numpy's astype does: two's-complement wrap-around. */
function wrapInt(v: bigint, dtype: DType): bigint {
  const [lo, hi] = INT_RANGE[dtype]!;
  const span = hi - lo + 1n;
  let r = (v - lo) % span;
  if (r < 0n) r += span;
  return r + lo;
}

/**
 * Casts `source` (of dtype `from`) into a fresh array of dtype `to` with ONNX Cast semantics:
 * float to integer truncates toward zero (saturating out of range, NaN to 0, see floatToInt);
 * integer to narrower integer wraps; anything to bool is `x != 0` (NaN is true); bool to numbers
 * is 0/1; to float32/float16 rounds to nearest even once, from the exact source value.
 */
export function castElements<F extends DType, T extends DType>(source: DataTypeMap[F], from: F, to: T, saturate = true): DataTypeMap[T] {
  const n = source.length;
  const fromInt = INT_RANGE[from] !== undefined || from === 'bool';
  switch (to) {
    case 'bfloat16':
      // From the exact source value (a float64 one rounds through float32 first, like ORT's cast).
      return Uint16Array.from({ length: n }, (_, i) => encodeBfloat16(Number(elementAt(source, from, i)))) as DataTypeMap[T];
    case 'float8e4m3fn':
    case 'float8e4m3fnuz':
    case 'float8e5m2':
    case 'float8e5m2fnuz':
    case 'float4e2m1':
      return Uint8Array.from({ length: n }, (_, i) => encodeMiniFloat(to as MiniFloatType, Number(elementAt(source, from, i)), saturate)) as DataTypeMap[T];
    case 'int4':
    case 'int2':
    case 'uint4':
    case 'uint2': {
      // Low bits of the value truncated toward zero (tensor-formats.ts), integers wrapped alike.
      const out = to === 'int4' || to === 'int2' ? new Int8Array(n) : new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = elementAt(source, from, i);
        out[i] = typeof v === 'bigint' ? Number(wrapInt(v, to)) : encodeNarrowInt(to as NarrowIntType, v);
      }
      return out as DataTypeMap[T];
    }
    case 'float32': {
      const out = new Float32Array(n);
      if (from === 'int64' || from === 'uint64') for (let i = 0; i < n; i++) out[i] = bigintToFloat32(source[i] as bigint);
      else for (let i = 0; i < n; i++) out[i] = elementAt(source, from, i) as number;
      return out as DataTypeMap[T];
    }
    case 'float64': {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(elementAt(source, from, i));
      return out as DataTypeMap[T];
    }
    case 'float16': {
      const out = new Uint16Array(n);
      if (from === 'float16') out.set(source as Uint16Array);
      else if (from === 'float32') for (let i = 0; i < n; i++) out[i] = toFloat16Bits(source[i] as number);
      else for (let i = 0; i < n; i++) out[i] = halfBitsOfNumber(Number(elementAt(source, from, i)));
      return out as DataTypeMap[T];
    }
    case 'bool': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = elementAt(source, from, i);
        out[i] = typeof v === 'bigint' ? (v !== 0n ? 1 : 0) : v !== 0 ? 1 : 0; // NaN !== 0: true, as numpy
      }
      return out as DataTypeMap[T];
    }
    default: {
      const Ctor = { int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array }[to as 'int8'];
      const out = new Ctor(n) as unknown as { [i: number]: number | bigint; length: number };
      const big = to === 'int64' || to === 'uint64';
      for (let i = 0; i < n; i++) {
        const v = elementAt(source, from, i);
        const r = fromInt ? wrapInt(BigInt(v), to) : floatToInt(v as number, to);
        out[i] = big ? r : Number(r);
      }
      return out as unknown as DataTypeMap[T];
    }
  }
}

/** Whether input `index` of `node` takes a bool value in the plan (lowering/compare.ts). */
function readsBool(node: GraphNode, index: number): boolean {
  return (node.op === 'Where' && index === 0) || ['Not', 'And', 'Or', 'Xor'].includes(node.op);
}

/** How one user-facing input meets the plan. */
export interface EdgeInput {
  name: string;
  /** The dtype feeds must have (the model's declared type). */
  dtype: DType;
  /** The declared shape. */
  shape: Dim[];
  /**
   * The type the graph's readers see (an input-side Cast's target, else the input's own): feeds
   * are cast to it, then to float32. Undefined: the input is left as it is (nothing of this module
   * reads it: a parameter slot, bound elsewhere).
   */
  via: DType | undefined;
  /** Whether the plan reads it at all (an unread input is type-checked and ignored). */
  read: boolean;
  /** False when the Cast it goes through to `via` (a float8 type) has saturate=0. */
  saturate?: boolean;
  /** uint8/int8 codes that int8 ops read: converted to float32 values, declared type kept in the graph. */
  codes?: true;
}

/** Typed I/O of a session, and the float32 graph the plan is built from. */
export interface EdgeTypes {
  graph: Graph;
  inputs: EdgeInput[];
  /** Declared dtype of each graph output, in order; `saturate: false` from a float8 Cast ending there. */
  outputs: { name: string; dtype: DType; saturate?: boolean }[];
}

export interface EdgeOptions {
  /**
   * Whether input `index` of `node` is a parameter slot (axes, shape, scales: bound as a constant
   * per run by whoever handles those), which a non-float32 input may feed without being integer
   * arithmetic. Default: none is.
   */
  parameterSlot?: (node: GraphNode, index: number) => boolean;
}

/** The key of what a reader of input dtype `from` sees after a Cast to `to`: the f32 image of cast_to(x). */
function castKey(from: DType, to: DType): DType {
  if (to === 'float32' || to === 'float64') return 'float32';
  if (to === 'float16' && from === 'float16') return 'float32';
  return to;
}

/**
 * Rewrites a graph with typed inputs and outputs into the float32 graph the plan computes, and
 * says how to convert feeds and outputs (see the module comment).
 * @throws KilnError ERR_KILN_UNSUPPORTED_OP for integer arithmetic on integer/bool inputs or a
 *   Cast to a non-float32 type inside the graph, every problem listed
 */
export function edgeTypes(graph: Graph, options: EdgeOptions = {}): EdgeTypes {
  const inputs = graph.inputs.filter((v) => !graph.initializers.has(v.name));
  const outputs: EdgeTypes['outputs'] = graph.outputs.map((o) => ({ name: o.name, dtype: (o.dtype ?? 'float32') as DType }));
  const plainGraph = inputs.every((v) => v.dtype === 'float32') && outputs.every((o) => o.dtype === 'float32') && !graph.nodes.some((n) => n.op === 'Cast');
  if (plainGraph) {
    return { graph, inputs: inputs.map((v) => ({ name: v.name, dtype: 'float32', shape: v.shape.slice(), via: 'float32', read: true })), outputs };
  }
  const outputNames = new Set(graph.outputs.map((o) => o.name));
  const readers = new Map<string, { node: GraphNode; index: number }[]>();
  for (const node of graph.nodes) {
    node.inputs.forEach((v, index) => {
      if (v === '') return;
      const list = readers.get(v);
      if (list) list.push({ node, index });
      else readers.set(v, [{ node, index }]);
    });
  }
  const isParameter = options.parameterSlot ?? (() => false);
  const problems: string[] = [];
  const absorbed = new Set<GraphNode>();
  const edgeInputs: EdgeInput[] = [];
  /** Casts to BOOL that remake bool inputs in the plan, and the readers that now read them. */
  const boolCasts: GraphNode[] = [];
  const renamed = new Map<GraphNode, GraphNode>();
  const taken = new Set(graph.nodes.flatMap((n) => [n.name, ...n.outputs]).concat(graph.inputs.map((i) => i.name)));
  const freshName = (base: string): string => {
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  };
  for (const v of inputs) {
    const dtype = v.dtype as DType;
    const all = readers.get(v.name) ?? [];
    const rs = all.filter((r) => !isParameter(r.node, r.index));
    if (rs.length === 0) {
      edgeInputs.push({ name: v.name, dtype, shape: v.shape.slice(), via: all.length > 0 ? undefined : dtype, read: all.length > 0 });
      continue;
    }
    if ((dtype === 'uint8' || dtype === 'int8') && rs.every((r) => INT8_OPS.has(r.node.op))) {
      // Quantized codes read by int8 ops (DequantizeLinear, QLinearConv...): fed to the plan as
      // exact float32 integers; the graph keeps the declared type, so compile stores them as codes.
      edgeInputs.push({ name: v.name, dtype, shape: v.shape.slice(), via: 'float32', read: true, codes: true });
      continue;
    }
    if (dtype === 'bool' && rs.every((r) => readsBool(r.node, r.index))) {
      // A mask the plan's bool ops read (Where's condition, Not/And/Or/Xor): fed as 0/1 float32
      // and made a bool value again by a Cast in the plan (x != 0).
      const masked = freshName(`${v.name}_bool`);
      boolCasts.push({ name: freshName(`${v.name}_to_bool`), op: 'Cast', inputs: [v.name], outputs: [masked], attrs: { to: 9 } });
      for (const r of rs) renamed.set(r.node, { ...(renamed.get(r.node) ?? r.node), inputs: (renamed.get(r.node) ?? r.node).inputs.map((x, i) => (i === r.index ? masked : x)) });
      edgeInputs.push({ name: v.name, dtype, shape: v.shape.slice(), via: 'float32', read: true });
      continue;
    }
    const plainKey = isFloating(dtype) ? 'float32' : undefined;
    const plainReaders = rs.filter((r) => r.node.op !== 'Cast');
    let key: DType | undefined = plainReaders.length > 0 ? plainKey : undefined;
    for (const r of plainReaders) {
      if (plainKey === undefined) {
        problems.push(`${r.node.op} '${r.node.name}' (${INT_RANGE[dtype] !== undefined || dtype === 'bool' ? 'integer arithmetic: ' : ''}it reads the ${dtype} input '${v.name}' and Kiln computes in float32 only${INT_RANGE[dtype] !== undefined || dtype === 'bool' ? '' : `, converting ${dtype} only through a Cast`})`);
      }
    }
    let saturate = true;
    for (const r of rs) {
      if (r.node.op !== 'Cast') continue;
      const to = castTarget(r.node);
      if (to === undefined) continue; // reported below with the other Casts
      const k = castKey(dtype, to);
      key ??= k;
      if (k === key) {
        absorbed.add(r.node);
        if (r.node.attrs.saturate === 0) saturate = false;
      }
    }
    edgeInputs.push({ name: v.name, dtype, shape: v.shape.slice(), via: key ?? plainKey ?? dtype, read: true, ...(saturate ? {} : { saturate: false }) });
  }

  // Casts absorbed at an input that produce integers or bools may only end the graph.
  const nodes: GraphNode[] = [...boolCasts];
  for (const original of graph.nodes) {
    const node = renamed.get(original) ?? original;
    if (node.op !== 'Cast') {
      nodes.push(node);
      continue;
    }
    const to = castTarget(node);
    if (to === undefined) {
      problems.push(`Cast '${node.name}' (${unheldTypeReason(Number(node.attrs.to))})`);
      nodes.push(node);
      continue;
    }
    const out = node.outputs[0]!;
    const nodeReaders = readers.get(out) ?? [];
    const exact = to === 'float32' || to === 'float64';
    if (outputNames.has(out) && node.attrs.saturate === 0) {
      const o = outputs.find((x) => x.name === out);
      if (o) o.saturate = false;
    }
    if (absorbed.has(node) || exact || outputNames.has(out)) {
      // Readers inside the graph see float32 values: right for float targets only (or when the
      // input edge already rounded through the target).
      if (!exact && !(absorbed.has(node) && isFloating(to))) {
        for (const r of nodeReaders) {
          if (!isParameter(r.node, r.index)) problems.push(`${r.node.op} '${r.node.name}' (${isFloating(to) ? `reads a Cast to ${to} computed inside the graph: Kiln converts to ${to} only where values leave the model` : `integer arithmetic: it reads a Cast to ${to} and Kiln computes in float32 only`})`);
        }
      }
      nodes.push({ name: node.name, op: 'Identity', inputs: [node.inputs[0]!], outputs: [out], attrs: {} });
      continue;
    }
    // The plan computes a Cast between float32 and bool itself (lowering/compare.ts).
    if (to !== 'bool') problems.push(`Cast '${node.name}' (to ${to} on values computed at run time: Kiln computes in float32 and converts types only where values enter or leave the model)`);
    nodes.push(node);
  }
  if (problems.length > 0) {
    throw new KilnError(ErrorCode.UNSUPPORTED_OP, `Kiln cannot run ${problems.length} node(s) of this model at its typed inputs and outputs: ${problems.join('; ')}`);
  }
  const read = new Set(edgeInputs.filter((e) => e.read).map((e) => e.name));
  const floatInputs: ValueInfo[] = graph.inputs
    .filter((v) => graph.initializers.has(v.name) || read.has(v.name))
    .map((v) => {
      const e = edgeInputs.find((x) => x.name === v.name);
      return e === undefined || e.via === undefined || e.codes === true ? v : { ...v, dtype: 'float32' };
    });
  // uint8/int8 outputs keep their type: compile hands out a quantized value's codes for them.
  const floatOutputs: ValueInfo[] = graph.outputs.map((o) => (o.dtype === 'uint8' || o.dtype === 'int8' ? o : { ...o, dtype: 'float32' }));
  return { graph: { ...graph, inputs: floatInputs, outputs: floatOutputs, nodes }, inputs: edgeInputs, outputs };
}

/** The dtype a Cast node converts to, or undefined when no Tensor dtype holds it. */
function castTarget(node: GraphNode): DType | undefined {
  return ONNX_TYPE_DTYPES[Number(node.attrs.to)];
}

/**
 * One feed as the float32 array the plan reads: the dtype checked against the input's declared
 * type, converted through `via` into a fresh array (float32 feeds of a float32 input pass as they
 * are, as before).
 * @throws TypeError (ERR_KILN_INVALID_ARG) naming feeds['x'], the expected and the received dtype
 */
export function edgeFeed(input: EdgeInput, tensor: unknown): Tensor<'float32'> | undefined {
  const where = `feeds['${input.name}']`;
  if (tensor === undefined || tensor === null || typeof tensor !== 'object' || !('data' in tensor) || !('dims' in tensor)) throw typeError(where, 'a Tensor', tensor);
  const t = tensor as Tensor<DType>;
  if (t.type !== input.dtype || !matchesArray(t.data, input.dtype)) {
    throw typeError(where, `a ${input.dtype} Tensor`, typeof t.type === 'string' ? `a ${t.type} Tensor` : t);
  }
  if (!input.read) return undefined;
  if (input.dtype === 'float32' && input.via === 'float32') return t as Tensor<'float32'>;
  const via = input.via ?? input.dtype;
  const cast = via === input.dtype ? t.data : castElements(t.data, input.dtype, via, input.saturate !== false);
  const data = via === 'float32' && cast !== t.data ? (cast as Float32Array) : castElements(cast, via, 'float32');
  return new Tensor('float32', data, Array.from(t.dims));
}

function matchesArray(data: unknown, dtype: DType): boolean {
  switch (dtype) {
    case 'float32': return data instanceof Float32Array;
    case 'float64': return data instanceof Float64Array;
    case 'float16': case 'uint16': return data instanceof Uint16Array;
    case 'int8': return data instanceof Int8Array;
    case 'uint8': case 'bool': return data instanceof Uint8Array;
    case 'int16': return data instanceof Int16Array;
    case 'int32': return data instanceof Int32Array;
    case 'uint32': return data instanceof Uint32Array;
    case 'int64': return data instanceof BigInt64Array;
    case 'uint64': return data instanceof BigUint64Array;
    case 'bfloat16': return data instanceof Uint16Array;
    case 'int4': case 'int2': return data instanceof Int8Array;
    default: return data instanceof Uint8Array; // float8, float4 codes; uint4, uint2 values
  }
}

/** Plan outputs (float32) as Tensors of the declared dtypes (float32 ones returned as they are). */
export function edgeOutputs(edges: Pick<EdgeTypes, 'outputs'>, tensors: Record<string, Tensor<'float32'>>): Record<string, Tensor<DType>> {
  if (edges.outputs.every((o) => o.dtype === 'float32')) return tensors; // every model Kiln builds: nothing to convert
  const out: Record<string, Tensor<DType>> = {};
  for (const { name, dtype, saturate } of edges.outputs) {
    const t = tensors[name];
    if (t === undefined) continue;
    out[name] = dtype === 'float32' ? t : new Tensor(dtype, castElements(t.data, 'float32', dtype, saturate !== false), t.dims);
  }
  return out;
}

/** A Tensor cast to another dtype with ONNX Cast semantics (a fresh array; the same Tensor when the dtype is its own). */
export function castTensor<T extends DType>(tensor: Tensor<DType>, to: T): Tensor<T> {
  if (tensor.type === to) return tensor as Tensor<T>;
  return new Tensor(to, castElements(tensor.data as never, tensor.type, to), tensor.dims);
}
