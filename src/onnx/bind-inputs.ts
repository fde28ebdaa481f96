/**
 * Binding graph inputs to given values: each bound input becomes an initializer of the decoded
 * model before it is read, so the importer sees exactly what it would see had the model stored the
 * value as a constant (integers held as int32, floats as float32, see tensor-proto.ts).
 *
 * Used by importModel's `bindInputs` and by InferenceSession for parameter inputs
 * (parameter-inputs.ts, runtime/bound-session.ts).
 */
import { ErrorCode, KilnError } from '../errors.js';
import type { Dim } from '../graph/ir.js';
import { DTYPE_BYTES, type DType } from '../tensor.js';
import { describe, rangeError, shapeError, typeError } from '../validate.js';
import { DataType, dataTypeName, type IModelProto, type ITensorProto } from './proto.js';
import { declaredType } from './read-graph.js';

/** A graph input as the model declares it (initializers excluded). */
export interface DeclaredInput {
  name: string;
  /** TensorProto data type; 0 when the input is not a tensor. */
  elemType: number;
  /** Declared dims (names for symbolic ones); undefined when the model declares none. */
  shape: Dim[] | undefined;
}

/** What may be bound: a Tensor of any dtype (or an object with its fields). */
export interface BindableTensor {
  readonly type: DType;
  readonly data: ArrayLike<number | bigint>;
  readonly dims: readonly number[];
}

/** The dtype that holds an ONNX element type exactly, per TensorProto data type. */
const EXACT_DTYPE: Readonly<Partial<Record<number, DType>>> = {
  [DataType.FLOAT]: 'float32', [DataType.UINT8]: 'uint8', [DataType.INT8]: 'int8', [DataType.UINT16]: 'uint16',
  [DataType.INT16]: 'int16', [DataType.INT32]: 'int32', [DataType.INT64]: 'int64', [DataType.BOOL]: 'bool',
  [DataType.FLOAT16]: 'float16', [DataType.DOUBLE]: 'float64', [DataType.UINT32]: 'uint32', [DataType.UINT64]: 'uint64',
};

/** The storage dtype Kiln reads an ONNX element type as (tensor-proto.ts), also accepted as a feed. */
const STORAGE_DTYPE: Readonly<Partial<Record<number, DType>>> = {
  [DataType.FLOAT]: 'float32', [DataType.DOUBLE]: 'float32', [DataType.FLOAT16]: 'float32',
  [DataType.UINT8]: 'uint8', [DataType.BOOL]: 'uint8', [DataType.INT8]: 'int8',
  [DataType.UINT16]: 'int32', [DataType.INT16]: 'int32', [DataType.INT32]: 'int32', [DataType.INT64]: 'int32',
  [DataType.UINT32]: 'int32', [DataType.UINT64]: 'int32',
};

/** TensorProto data type of each dtype (the proto a bound value is written as). */
const PROTO_TYPE: Readonly<Partial<Record<DType, number>>> = {
  float32: DataType.FLOAT, float64: DataType.DOUBLE, float16: DataType.FLOAT16, int8: DataType.INT8, uint8: DataType.UINT8,
  int16: DataType.INT16, uint16: DataType.UINT16, int32: DataType.INT32, uint32: DataType.UINT32, int64: DataType.INT64,
  uint64: DataType.UINT64, bool: DataType.BOOL,
};

const ARRAY_OF: Readonly<Partial<Record<DType, new (n: number) => ArrayLike<number | bigint>>>> = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array,
  uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array, bool: Uint8Array,
};

/** The graph inputs of a decoded model that are not initializers, with their declared types. */
export function declaredInputs(model: IModelProto): DeclaredInput[] {
  const g = model.graph;
  const initializers = new Set((g?.initializer ?? []).map((t) => t.name ?? ''));
  return (g?.input ?? [])
    .filter((v) => !initializers.has(v.name ?? ''))
    .map((v) => {
      const t = declaredType(v, `graph input '${v.name ?? ''}'`);
      return { name: v.name ?? '', elemType: t?.elemType ?? 0, shape: t?.shape };
    });
}

/** The dtypes a feed of this declared input may have: its exact dtype, then its storage dtype. */
export function acceptedDtypes(elemType: number): DType[] {
  const out: DType[] = [];
  const exact = EXACT_DTYPE[elemType];
  const storage = STORAGE_DTYPE[elemType];
  if (exact !== undefined) out.push(exact);
  if (storage !== undefined && storage !== exact) out.push(storage);
  return out;
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/**
 * Checks a value for a declared input (dtype, dims, data) and returns it as a TensorProto
 * initializer named after the input. `where` names the value in errors (e.g. "feeds['axes']").
 * @throws TypeError (ERR_KILN_INVALID_ARG) for a dtype the input does not take; RangeError
 *   (ERR_KILN_SHAPE_MISMATCH) for dims off the declaration, (ERR_KILN_INVALID_ARG) for an integer
 *   that Kiln's int32 constants cannot hold
 */
export function boundInitializer(input: DeclaredInput, value: BindableTensor, where: string): ITensorProto {
  if (value === null || typeof value !== 'object' || !('data' in value) || !('dims' in value) || !('type' in value)) throw typeError(where, 'a Tensor', value);
  const accepted = acceptedDtypes(input.elemType);
  if (accepted.length === 0) {
    // A valid parameter type Kiln holds no constants of (a FLOAT8 zero point: float8 quantization).
    throw new KilnError(ErrorCode.UNSUPPORTED_OP, `Kiln cannot bind ${dataTypeName(input.elemType) ?? `type ${input.elemType}`} values as constants (${where}): its constants are float32 and 8- to 32-bit integers`);
  }
  const type = value.type;
  if (!accepted.includes(type)) throw typeError(where, `a Tensor of type ${accepted.map((t) => `'${t}'`).join(' or ')} (the model declares ${dataTypeName(input.elemType)})`, typeof type === 'string' ? `a ${type} Tensor` : value);
  // acceptedDtypes only names dtypes these tables hold (no narrow format is a parameter).
  const Ctor = ARRAY_OF[type]!;
  if (!(value.data instanceof Ctor)) throw typeError(where, `a ${Ctor.name} for a ${type} Tensor`, value.data);
  const dims = Array.from(value.dims ?? []);
  const text = `[${dims.join(', ')}]`;
  if (!dims.every((d) => Number.isInteger(d) && d >= 0)) throw shapeError(where, 'non-negative integer dims', text);
  const want = input.shape;
  if (want !== undefined && (want.length !== dims.length || want.some((d, i) => typeof d === 'number' && d !== dims[i]))) {
    throw shapeError(where, `dims [${want.join(', ')}]`, text);
  }
  let size = 1;
  for (const d of dims) size *= d;
  const data = value.data as ArrayLike<number | bigint> & ArrayBufferView;
  if (data.length !== size) throw shapeError(where, `${size} elements for dims ${text}`, describe(data));
  // Kiln holds integers as int32: a value it would have to saturate is refused, not changed.
  if (type === 'int64' || type === 'uint64' || type === 'uint32') {
    for (let i = 0; i < size; i++) {
      const v = data[i]!;
      if (v < INT32_MIN || v > INT32_MAX) throw rangeError(`${where}[${i}]`, `an integer in [${INT32_MIN}, ${INT32_MAX}] (Kiln holds integer parameters as int32)`, v);
    }
  }
  // Copied: the caller may reuse its buffer after the import.
  const rawData = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + size * DTYPE_BYTES[type]));
  return { name: input.name, dims, dataType: PROTO_TYPE[type]!, rawData };
}

/**
 * Makes each bound input an initializer of `model` (edited in place). `what` names the option in
 * errors, e.g. 'options.bindInputs' or 'feeds'.
 */
export function bindModelInputs(model: IModelProto, values: Readonly<Record<string, BindableTensor>>, what: string): void {
  const g = model.graph;
  if (!g) return;
  const inputs = declaredInputs(model);
  for (const [name, value] of Object.entries(values)) {
    const input = inputs.find((i) => i.name === name);
    if (input === undefined) throw rangeError(`${what}['${name}']`, `the name of a graph input (${inputs.map((i) => `'${i.name}'`).join(', ')})`, name);
    const proto = boundInitializer(input, value, `${what}['${name}']`);
    g.initializer = [...(g.initializer ?? []), proto];
  }
}
