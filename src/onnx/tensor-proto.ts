/**
 * TensorProto <-> Tensor. Every size is checked against the data actually present before a typed
 * array is allocated, so a corrupt header cannot make Kiln allocate absurd memory.
 */
import { Tensor, type DType as FullDType, type NarrowDType, type StorageDType as DType } from '../tensor.js';
import { ONNX_TYPE_DTYPES, unheldTypeReason } from '../runtime/edge-types.js';
import { corrupt, DataType, dataTypeName, int64ToInt32Saturating, int64ToNumber, type Int64Like, type ITensorProto } from './proto.js';
import { ErrorCode, KilnError } from '../errors.js';

/** Largest dimension and element count a tensor may declare (typed-array limits). */
export const MAX_DIM = 2 ** 31 - 1;
export const MAX_ELEMENTS = 2 ** 31 - 1;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Bytes per element in raw_data, for the types Kiln reads. */
const RAW_SIZE: Partial<Record<number, number>> = {
  [DataType.FLOAT]: 4,
  [DataType.DOUBLE]: 8,
  [DataType.FLOAT16]: 2,
  [DataType.INT64]: 8,
  [DataType.UINT64]: 8,
  [DataType.INT32]: 4,
  [DataType.UINT32]: 4,
  [DataType.INT16]: 2,
  [DataType.UINT16]: 2,
  [DataType.INT8]: 1,
  [DataType.UINT8]: 1,
  [DataType.BOOL]: 1,
};

/** The Kiln dtype a TensorProto data type is held as. */
function kilnType(dataType: number): DType {
  switch (dataType) {
    case DataType.FLOAT:
    case DataType.DOUBLE:
    case DataType.FLOAT16:
      return 'float32';
    case DataType.INT8:
      return 'int8';
    case DataType.UINT8:
    case DataType.BOOL:
      return 'uint8';
    default:
      return 'int32';
  }
}

/** Throws unless Kiln can hold tensors of this type. */
export function checkDataType(dataType: number, what: string): void {
  if (RAW_SIZE[dataType] !== undefined) return;
  const name = dataTypeName(dataType);
  if (name === undefined) throw corrupt(`Expected a TensorProto data type for ${what} but received ${dataType}, which onnx.proto does not define`);
  throw new KilnError(ErrorCode.UNSUPPORTED_OP, `Kiln cannot hold ${name} tensors (${what}); supported: FLOAT, DOUBLE, FLOAT16 and integer types`);
}

/** Checked dims of a TensorProto and their element count. */
export function tensorDims(dims: readonly Int64Like[] | null | undefined, what: string): { dims: number[]; size: number } {
  const out: number[] = [];
  let size = 1;
  for (const [i, d] of (dims ?? []).entries()) {
    const n = int64ToNumber(d, `${what} dims[${i}]`);
    if (n < 0 || n > MAX_DIM) throw corrupt(`Expected a dimension in [0, ${MAX_DIM}] for ${what} dims[${i}] but received ${n}`);
    out.push(n);
    size *= n;
  }
  if (size > MAX_ELEMENTS) throw corrupt(`Expected at most ${MAX_ELEMENTS} elements for ${what} but its dims [${out.join(', ')}] hold ${size}`);
  return { dims: out, size };
}

function half(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * Reads `size` elements of `dataType` from little-endian bytes into the Kiln array. `owned`
 * bytes (read for this tensor alone) become the float array itself when aligned: no copy.
 */
function fromRaw(raw: Uint8Array, dataType: number, size: number, owned: boolean): Tensor['data'] {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (dataType) {
    case DataType.FLOAT: {
      if (owned && LITTLE_ENDIAN && raw.byteOffset % 4 === 0 && raw.byteLength === raw.buffer.byteLength) {
        return new Float32Array(raw.buffer, raw.byteOffset, size);
      }
      const out = new Float32Array(size);
      if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(raw.subarray(0, size * 4));
      else for (let i = 0; i < size; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    }
    case DataType.DOUBLE: {
      const out = new Float32Array(size);
      for (let i = 0; i < size; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    }
    case DataType.FLOAT16: {
      const out = new Float32Array(size);
      for (let i = 0; i < size; i++) out[i] = half(view.getUint16(i * 2, true));
      return out;
    }
    case DataType.INT64:
    case DataType.UINT64: {
      const out = new Int32Array(size);
      const unsigned = dataType === DataType.UINT64;
      for (let i = 0; i < size; i++) {
        out[i] = int64ToInt32Saturating({ low: view.getUint32(i * 8, true), high: view.getInt32(i * 8 + 4, true), unsigned });
      }
      return out;
    }
    case DataType.INT32: {
      const out = new Int32Array(size);
      for (let i = 0; i < size; i++) out[i] = view.getInt32(i * 4, true);
      return out;
    }
    case DataType.UINT32: {
      const out = new Int32Array(size);
      for (let i = 0; i < size; i++) out[i] = Math.min(view.getUint32(i * 4, true), 2147483647);
      return out;
    }
    case DataType.INT16: {
      const out = new Int32Array(size);
      for (let i = 0; i < size; i++) out[i] = view.getInt16(i * 2, true);
      return out;
    }
    case DataType.UINT16: {
      const out = new Int32Array(size);
      for (let i = 0; i < size; i++) out[i] = view.getUint16(i * 2, true);
      return out;
    }
    case DataType.INT8: {
      const out = new Int8Array(size);
      out.set(new Int8Array(raw.buffer, raw.byteOffset, size));
      return out;
    }
    case DataType.BOOL: {
      const out = new Uint8Array(size);
      for (let i = 0; i < size; i++) out[i] = raw[i] ? 1 : 0;
      return out;
    }
    default: {
      const out = new Uint8Array(size);
      out.set(raw.subarray(0, size));
      return out;
    }
  }
}

/** The typed `*_data` field of a TensorProto that holds elements of `dataType`. */
function dataField(t: ITensorProto, dataType: number): ArrayLike<unknown> | null | undefined {
  switch (dataType) {
    case DataType.FLOAT: return t.floatData;
    case DataType.DOUBLE: return t.doubleData;
    case DataType.INT64: return t.int64Data;
    case DataType.UINT32:
    case DataType.UINT64: return t.uint64Data;
    default: return t.int32Data; // int32, int16, uint16, int8, uint8, bool, float16 bits
  }
}

/** Reads the typed `*_data` field that holds `dataType`, or undefined when it is empty. */
function fromField(t: ITensorProto, dataType: number, size: number, what: string): Tensor['data'] | undefined {
  const field = dataField(t, dataType);
  if (!field || field.length === 0) return undefined;
  if (field.length !== size) throw corrupt(`Expected ${size} values for ${what} (its dims) but its data field holds ${field.length}`);
  const type = kilnType(dataType);
  if (dataType === DataType.FLOAT16) {
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = half(Number(field[i]) & 0xffff);
    return out;
  }
  if (type === 'float32') return Float32Array.from(field as ArrayLike<number>);
  const out = type === 'int8' ? new Int8Array(size) : type === 'uint8' ? new Uint8Array(size) : new Int32Array(size);
  for (let i = 0; i < size; i++) {
    out[i] = dataType === DataType.BOOL ? (field[i] ? 1 : 0) : int64ToInt32Saturating(field[i] as Int64Like);
  }
  return out;
}

/**
 * A TensorProto as a Kiln Tensor (int64 held as int32, saturating). `external` holds the bytes of
 * an externally stored tensor, already read by the caller.
 */
export function tensorFromProto(t: ITensorProto, what: string, external?: Uint8Array): Tensor {
  const dataType = t.dataType ?? 0;
  checkDataType(dataType, what);
  if (t.segment) throw corrupt(`Expected a whole tensor for ${what} but received a segment of one`);
  const { dims, size } = tensorDims(t.dims, what);
  const elementSize = RAW_SIZE[dataType]!;
  const raw = external ?? (t.rawData && t.rawData.length > 0 ? t.rawData : undefined);
  let data: Tensor['data'] | undefined;
  if (raw !== undefined) {
    if (raw.length !== size * elementSize) {
      throw corrupt(`Expected ${size * elementSize} bytes of data for ${what} (dims [${dims.join(', ')}]) but received ${raw.length}`);
    }
    data = fromRaw(raw, dataType, size, external !== undefined);
  } else {
    data = fromField(t, dataType, size, what);
  }
  if (data === undefined) {
    if (size !== 0) throw corrupt(`Expected ${size} values for ${what} (dims [${dims.join(', ')}]) but it holds no data`);
    data = kilnType(dataType) === 'float32' ? new Float32Array(0) : new Int32Array(0);
  }
  return new Tensor(kilnType(dataType), data as never, dims);
}

/** A Kiln Tensor as a TensorProto: float32 as FLOAT, int32 as INT64 (shape-like data) or INT32. */
export function tensorToProto(name: string, tensor: Tensor, int32As: 'INT64' | 'INT32' = 'INT64'): ITensorProto {
  const dims = tensor.dims.slice();
  switch (tensor.type) {
    case 'float32': {
      const data = tensor.data as Float32Array;
      // Little-endian hosts hand the tensor's own bytes to the encoder (it only reads them).
      if (LITTLE_ENDIAN) return { name, dims, dataType: DataType.FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
      const raw = new Uint8Array(data.length * 4);
      const view = new DataView(raw.buffer);
      for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i]!, true);
      return { name, dims, dataType: DataType.FLOAT, rawData: raw };
    }
    case 'int32': {
      const data = tensor.data as Int32Array;
      if (int32As === 'INT32') return { name, dims, dataType: DataType.INT32, int32Data: Array.from(data) };
      const raw = new Uint8Array(data.length * 8);
      const view = new DataView(raw.buffer);
      for (let i = 0; i < data.length; i++) view.setBigInt64(i * 8, BigInt(data[i]!), true);
      return { name, dims, dataType: DataType.INT64, rawData: raw };
    }
    case 'int8': {
      const data = tensor.data as Int8Array;
      return { name, dims, dataType: DataType.INT8, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice() };
    }
    case 'uint8':
      return { name, dims, dataType: DataType.UINT8, rawData: Uint8Array.from(tensor.data as Uint8Array) };
    default:
      throw new KilnError(ErrorCode.UNSUPPORTED_OP, `Kiln cannot export tensors of type ${String(tensor.type)} (${name})`);
  }
}

/**
 * A TensorProto as a Tensor of its own type (onnxruntime-node's dtypes: DOUBLE as float64,
 * FLOAT16 as half bits, INT64 as BigInt64Array, BOOL as bool...), unlike tensorFromProto, which
 * reads into the storage types Kiln computes with. For feeding a model's typed inputs.
 * @throws KilnError ERR_KILN_UNSUPPORTED_OP naming a type no JavaScript tensor holds (BFLOAT16,
 *   FLOAT8*, INT4, STRING...); ERR_KILN_CORRUPT_MODEL for inconsistent sizes
 */
export function typedTensorFromProto(t: ITensorProto, what: string): Tensor<FullDType> {
  const dataType = t.dataType ?? 0;
  const dtype = ONNX_TYPE_DTYPES[dataType];
  if (dtype === undefined) {
    const name = dataTypeName(dataType);
    if (name === undefined) throw corrupt(`Expected a TensorProto data type for ${what} but received ${dataType}, which onnx.proto does not define`);
    throw new KilnError(ErrorCode.UNSUPPORTED_OP, `Kiln cannot hold ${name} tensors (${what}): ${unheldTypeReason(dataType)}`);
  }
  if (t.segment) throw corrupt(`Expected a whole tensor for ${what} but received a segment of one`);
  const { dims, size } = tensorDims(t.dims, what);
  if (NARROW_BITS[dataType] !== undefined) return new Tensor(dtype, narrowElements(t, dataType, dtype as NarrowDType, size, what) as never, dims);
  const elementSize = RAW_SIZE[dataType]!;
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const ArrayType = ({ float32: Float32Array, float64: Float64Array, float16: Uint16Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array, bool: Uint8Array } as const)[dtype as Exclude<FullDType, NarrowDType>];
  if (raw !== undefined) {
    if (raw.length !== size * elementSize) throw corrupt(`Expected ${size * elementSize} bytes of data for ${what} (dims [${dims.join(', ')}]) but received ${raw.length}`);
    const bytes = new Uint8Array(raw); // a copy with its own buffer (Buffer.slice would share the decoder's)
    if (!LITTLE_ENDIAN && elementSize > 1) {
      for (let i = 0; i < bytes.length; i += elementSize) bytes.subarray(i, i + elementSize).reverse();
    }
    const data = new ArrayType(bytes.buffer, 0, size);
    if (dtype === 'bool') for (let i = 0; i < size; i++) data[i] = data[i] ? 1 : 0;
    return new Tensor(dtype, data as never, dims);
  }
  const field = dataField(t, dataType);
  const n = field?.length ?? 0;
  if (n !== size) throw corrupt(`Expected ${size} values for ${what} (dims [${dims.join(', ')}]) but its data field holds ${n}`);
  const data = new ArrayType(size);
  for (let i = 0; i < size; i++) {
    const v = field![i];
    const text = typeof v === 'object' && v !== null ? v.toString() : v;
    if (dtype === 'int64' || dtype === 'uint64') (data as BigInt64Array)[i] = BigInt(text as string | number);
    else if (dtype === 'float16') (data as Uint16Array)[i] = Number(text) & 0xffff;
    else if (dtype === 'bool') (data as Uint8Array)[i] = text ? 1 : 0;
    else (data as Float64Array)[i] = Number(text);
  }
  return new Tensor(dtype, data as never, dims);
}

/** Bits per element of ONNX's narrow formats; 4- and 2-bit ones are packed, low bits first. */
const NARROW_BITS: Readonly<Partial<Record<number, number>>> = {
  [DataType.BFLOAT16]: 16, [DataType.FLOAT8E4M3FN]: 8, [DataType.FLOAT8E4M3FNUZ]: 8, [DataType.FLOAT8E5M2]: 8, [DataType.FLOAT8E5M2FNUZ]: 8,
  [DataType.UINT4]: 4, [DataType.INT4]: 4, [DataType.FLOAT4E2M1]: 4, [DataType.UINT2]: 2, [DataType.INT2]: 2,
};

/**
 * The elements of a narrow-format TensorProto, one per array slot (unpacked; signed 4- and 2-bit
 * integers sign-extended): from raw_data, or from int32_data, which holds one element (8 and 16
 * bits) or one byte of packed elements (4 and 2 bits) per entry.
 */
function narrowElements(t: ITensorProto, dataType: number, dtype: NarrowDType, size: number, what: string): Uint16Array | Uint8Array | Int8Array {
  const bits = NARROW_BITS[dataType]!;
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const perByte = bits < 8 ? 8 / bits : 1;
  const units = bits === 16 ? size : Math.ceil(size / perByte);
  const field = raw === undefined ? (t.int32Data ?? []) : undefined;
  const have = raw !== undefined ? (bits === 16 ? raw.length / 2 : raw.length) : field!.length;
  if (have !== units) throw corrupt(`Expected ${units} ${raw !== undefined ? 'data units' : 'int32_data values'} for ${what} (${size} elements of ${bits} bits) but received ${have}`);
  const unit = (i: number): number => (raw !== undefined ? (bits === 16 ? raw[2 * i]! | (raw[2 * i + 1]! << 8) : raw[i]!) : Number(field![i]) & (bits === 16 ? 0xffff : 0xff));
  if (bits === 16) return Uint16Array.from({ length: size }, (_, i) => unit(i));
  if (bits === 8) return Uint8Array.from({ length: size }, (_, i) => unit(i));
  const signed = dtype === 'int4' || dtype === 'int2';
  const out = signed ? new Int8Array(size) : new Uint8Array(size);
  const mask = (1 << bits) - 1;
  for (let i = 0; i < size; i++) {
    const v = (unit(Math.floor(i / perByte)) >> ((i % perByte) * bits)) & mask;
    out[i] = signed && v >= 1 << (bits - 1) ? v - (1 << bits) : v;
  }
  return out;
}
