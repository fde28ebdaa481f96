/**
 * The `.kiln` model container: a fixed preamble, a JSON header, then 64-byte-aligned tensor data.
 *
 * ```
 * offset 0   'KILN'                      magic
 *        4   u32 LE  format version      (1)
 *        8   u32 LE  header byte length  H
 *       12   u32 LE  CRC-32 of the header bytes
 *       16   H bytes of UTF-8 JSON       {format, producer, createdAt, model, tensors, metadata}
 *            zero padding to a multiple of 64: the data section starts here
 *            tensor data, each at data-section offset `offset` (a multiple of 64), little-endian
 * ```
 * The file ends exactly where its last tensor ends. Each tensor entry carries its own CRC-32, a
 * `layout` and optional `params` (e.g. quantization scales), so new layouts need no new container
 * version. Layouts:
 * - 'dense': `dims` elements of `dtype`, row-major.
 * - 'sparse-csr' / 'sparse-bcsr': a packed {@link SparseTensor} of logical dense `dims` and value
 *   `dtype` (float32 or int8). The entry's bytes hold three arrays, each at a 64-byte-aligned
 *   offset inside the entry, described by `params.sparse` =
 *   `{ block: [r, c], nnz, rowPtr: {offset, length}, colIdx: {offset, length, dtype}, values: {offset, length} }`
 *   (offsets in bytes from the entry's start, lengths in elements; rowPtr is int32). colIdx is the
 *   narrowest of: 'uint8-delta' (byte steps: each index minus the previous one of its row, the
 *   first minus -1, a step byte 0 advancing 255 without giving an index, so colIdx.length is nnz
 *   plus those escapes), 'uint16' (block columns fit), else 'int32'. int8 CSR at 90% zeros then
 *   costs about 2 bytes per non-zero (0.2 byte per weight).
 *   Other keys of `params` are the tensor's own params, as for a dense tensor.
 *
 * Reading validates every header field, length, offset and dimension (with overflow checks) and
 * every checksum before any tensor is built; every allocation is bounded by the file's real size
 * (a sparse tensor's dense form by {@link KILN_MAX_SPARSE_DENSE_BYTES}). A sparse tensor is then
 * checked structurally ({@link sparseProblem}: row pointers, indices, counts) before it is used.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';

import { ErrorCode, KilnError } from '../errors.js';
import { PACKAGE_NAME } from '../native-load.js';
import { SparseTensor, sparseGeometry, sparseProblem, toDense } from '../sparse-tensor.js';
import type { SparseBlock, SparseParts } from '../sparse-tensor.js';
import { Tensor } from '../tensor.js';
import type { DataTypeMap, StorageDType as DType } from '../tensor.js';
import { checkOutputFile, readModelFile, writeFileAtomic } from '../util/files.js';
import { options as checkOptions, rangeError, string, typeError } from '../validate.js';

/** Container version written by this code, and the only one it reads. */
export const KILN_FORMAT_VERSION = 1;
/** Tensor layouts this reader understands. */
export const KILN_LAYOUTS = ['dense', 'sparse-csr', 'sparse-bcsr'] as const;
export type KilnLayout = (typeof KILN_LAYOUTS)[number];

const MAGIC = [0x4b, 0x49, 0x4c, 0x4e]; // 'KILN'
const PREAMBLE_BYTES = 16;
/** Alignment of the data section and of every tensor in it (a cache line; AVX-512 loads). */
export const KILN_ALIGNMENT = 64;
/** Largest JSON header accepted: far above any real model's, small enough to refuse nonsense early. */
const MAX_HEADER_BYTES = 64 * 1024 * 1024;
const MAX_RANK = 16;
/**
 * Largest dense form of a sparse tensor the reader unpacks (1 GiB): its size is not bounded by the
 * file's, so a corrupt dimension must not become a huge allocation.
 */
export const KILN_MAX_SPARSE_DENSE_BYTES = 2 ** 30;
/** The dtypes a .kiln file stores (Kiln's storage types). */
const DTYPES: readonly DType[] = ['float32', 'int32', 'int8', 'uint8'];
const ITEM_BYTES: Record<DType, number> = { float32: 4, int32: 4, int8: 1, uint8: 1 };
const ARRAY_TYPES = { float32: Float32Array, int32: Int32Array, int8: Int8Array, uint8: Uint8Array } as const;
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** One row of the header's tensor table. */
export interface KilnTensorEntry {
  name: string;
  dtype: DType;
  dims: number[];
  layout: KilnLayout;
  /** Byte offset from the start of the data section (a multiple of {@link KILN_ALIGNMENT}). */
  offset: number;
  byteLength: number;
  /** CRC-32 (IEEE, as zlib) of the tensor's bytes. */
  checksum: number;
  /** Layout- or tensor-specific parameters, e.g. quantization scale and zero point. */
  params?: Record<string, unknown>;
}

/** What a `.kiln` file holds; the argument of {@link writeKilnFile}. */
export interface KilnFileContents {
  /** Any JSON value describing the model (layer config, graph, input shape...). */
  model: unknown;
  /** Named tensors, dense or packed sparse. Names must be non-empty. */
  tensors: ReadonlyMap<string, Tensor | SparseTensor>;
  /** Free-form JSON object: provenance, accuracy, sparsity, quantization notes... */
  metadata?: Record<string, unknown>;
  /** Extra JSON parameters per tensor name (each name must be in `tensors`). */
  tensorParams?: ReadonlyMap<string, Record<string, unknown>>;
}

/** A decoded `.kiln` file. */
export interface KilnFile {
  version: number;
  producer: string;
  createdAt: string;
  model: unknown;
  /** Every tensor in dense form (a sparse one unpacked, exactly). */
  tensors: Map<string, Tensor>;
  /** The tensors stored sparse, as stored (validated). */
  sparse: Map<string, SparseTensor>;
  metadata: Record<string, unknown>;
  /** Each tensor's own params (for a sparse one, without the layout's `sparse` description). */
  tensorParams: Map<string, Record<string, unknown>>;
  /** The tensor table as stored. */
  entries: KilnTensorEntry[];
}

export interface KilnWriteOptions {
  /** Recorded as `producer` (default 'kiln <package version>'). */
  producer?: string;
  /** Recorded as `createdAt` (default now). Fix it to get byte-identical files. */
  createdAt?: Date | string;
}

/**
 * Serialises a model into `.kiln` bytes.
 * @throws TypeError/RangeError (`ERR_KILN_INVALID_ARG`) for a bad name, tensor, or a value that is
 *   not plain JSON (NaN, undefined in an array, a function, a cycle...).
 */
export function encodeKilnFile(contents: KilnFileContents, options?: KilnWriteOptions): Uint8Array {
  const { chunks, byteLength } = layout(contents, options);
  const out = new Uint8Array(byteLength);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/**
 * Writes a `.kiln` file atomically: into a temporary file beside `path`, flushed to disk, then
 * renamed over `path`, so readers never see a half-written model.
 * @throws KilnError ERR_KILN_FILE_NOT_FOUND / ERR_KILN_NOT_A_FILE / ERR_KILN_PERMISSION naming
 *   `path` when its folder does not exist, it is a directory, or it cannot be written.
 */
export async function writeKilnFile(path: string, contents: KilnFileContents, options?: KilnWriteOptions): Promise<void> {
  string('path', path);
  await checkOutputFile(path, 'path');
  const { chunks } = layout(contents, options);
  await writeFileAtomic(path, chunks);
}

/**
 * Reads a `.kiln` file from a path or from bytes.
 * @throws KilnError `ERR_KILN_CORRUPT_MODEL` naming what is wrong when the content is not a valid
 *   file (an ONNX model is named as one); ERR_KILN_FILE_NOT_FOUND, ERR_KILN_NOT_A_FILE or
 *   ERR_KILN_PERMISSION naming the path when it cannot be read.
 */
export async function readKilnFile(pathOrBytes: string | Uint8Array): Promise<KilnFile> {
  if (typeof pathOrBytes === 'string') return decodeKilnFile(await readModelFile(pathOrBytes, 'pathOrBytes'), pathOrBytes);
  if (pathOrBytes instanceof Uint8Array) return decodeKilnFile(pathOrBytes);
  throw typeError('pathOrBytes', 'a file path or a Uint8Array', pathOrBytes);
}

/**
 * Decodes `.kiln` bytes (synchronously; the tensors are copied out of `bytes`).
 * @param source a file name for error messages
 * @throws KilnError `ERR_KILN_CORRUPT_MODEL` naming what is wrong.
 */
export function decodeKilnFile(bytes: Uint8Array, source?: string): KilnFile {
  if (!(bytes instanceof Uint8Array)) throw typeError('bytes', 'a Uint8Array', bytes);
  const fail = (what: string): never => {
    throw new KilnError(ErrorCode.CORRUPT_MODEL, `Corrupt .kiln file${source === undefined ? '' : ` ${source}`}: ${what}`);
  };
  if (bytes.length < PREAMBLE_BYTES) fail(`it holds ${bytes.length} bytes, fewer than the ${PREAMBLE_BYTES}-byte preamble`);
  if (MAGIC.some((b, i) => bytes[i] !== b)) {
    // An ONNX ModelProto starts with field 1 (ir_version, a varint): tag byte 0x08.
    fail(bytes[0] === 0x08
      ? `it does not start with 'KILN': it looks like an ONNX model (read it with onnx.importModel() or InferenceSession.create())`
      : `it does not start with 'KILN' (not a Kiln model file)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4, true);
  if (version !== KILN_FORMAT_VERSION) fail(`format version ${version} is not supported (this reader knows ${KILN_FORMAT_VERSION})`);
  const headerBytes = view.getUint32(8, true);
  if (headerBytes > MAX_HEADER_BYTES) fail(`header length ${headerBytes} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (PREAMBLE_BYTES + headerBytes > bytes.length) fail(`header length ${headerBytes} runs past the end of the ${bytes.length}-byte file`);
  const headerView = bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + headerBytes);
  if (crc32(headerView) !== view.getUint32(12, true)) fail('header checksum mismatch');

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerView));
  } catch (err) {
    fail(`header is not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(header)) fail('header is not a JSON object');
  const h = header as Record<string, unknown>;
  if (h.format !== 'kiln') fail(`header format is ${show(h.format)}, expected 'kiln'`);
  if (typeof h.producer !== 'string') fail('header producer is not a string');
  if (typeof h.createdAt !== 'string') fail('header createdAt is not a string');
  if (!('model' in h)) fail('header has no model');
  if (!isPlainObject(h.metadata)) fail('header metadata is not a JSON object');
  if (!Array.isArray(h.tensors)) fail('header tensors is not an array');

  const dataStart = alignUp(PREAMBLE_BYTES + headerBytes);
  if (dataStart > bytes.length) fail(`file ends at byte ${bytes.length}, inside the header padding (data starts at ${dataStart})`);
  const dataBytes = bytes.length - dataStart;
  const entries = (h.tensors as unknown[]).map((raw, i) => checkEntry(raw, i, dataBytes, fail));

  const names = new Set<string>();
  for (const e of entries) {
    if (names.has(e.name)) fail(`tensor name '${e.name}' appears twice`);
    names.add(e.name);
  }
  const byOffset = entries.slice().sort((a, b) => a.offset - b.offset);
  let end = 0;
  for (let i = 0; i < byOffset.length; i++) {
    if (i > 0 && byOffset[i].offset < end) fail(`tensor '${byOffset[i].name}' overlaps tensor '${byOffset[i - 1].name}'`);
    end = Math.max(end, byOffset[i].offset + byOffset[i].byteLength);
  }
  if (dataBytes !== end) fail(`the data section holds ${dataBytes} bytes but the tensor table describes ${end}`);
  for (const e of entries) {
    const start = dataStart + e.offset;
    if (crc32(bytes.subarray(start, start + e.byteLength)) !== e.checksum) fail(`checksum mismatch for tensor '${e.name}'`);
  }

  const tensors = new Map<string, Tensor>();
  const sparse = new Map<string, SparseTensor>();
  const tensorParams = new Map<string, Record<string, unknown>>();
  // Every sparse tensor is checked before any is unpacked, and all of them together unpack to at
  // most the limit (each alone was checked against it in checkEntry).
  let unpacked = 0;
  for (const e of entries) if (e.layout !== 'dense') unpacked += e.dims.reduce((a, b) => a * b, 1) * ITEM_BYTES[e.dtype];
  if (unpacked > KILN_MAX_SPARSE_DENSE_BYTES) fail(`its sparse tensors unpack to ${unpacked} bytes, more than the ${KILN_MAX_SPARSE_DENSE_BYTES}-byte limit`);
  for (const e of entries) {
    if (e.layout === 'dense') continue;
    const p = e.params!.sparse as SparseParams;
    const array = <T extends DType>(dtype: T, a: SparseArray): DataTypeMap[T] => {
      const data = new ARRAY_TYPES[dtype](a.length) as DataTypeMap[T];
      const start = dataStart + e.offset + a.offset;
      const raw = new Uint8Array(data.buffer);
      raw.set(bytes.subarray(start, start + raw.byteLength));
      if (!LITTLE_ENDIAN_HOST) swapBytes(raw, ITEM_BYTES[dtype]);
      return data;
    };
    const decoded = readColIdx(bytes, dataStart + e.offset, p, p.nnz);
    if (decoded.problem !== undefined) fail(`sparse tensor '${e.name}': ${decoded.problem}`);
    const parts: SparseParts = {
      dtype: e.dtype as 'float32' | 'int8',
      dims: e.dims,
      pattern: e.layout === 'sparse-csr' ? 'csr' : 'bcsr',
      block: p.block,
      rowPtr: array('int32', p.rowPtr),
      colIdx: decoded.colIdx,
      values: array(e.dtype as 'float32' | 'int8', p.values),
    };
    const problem = sparseProblem(parts);
    if (problem !== undefined) fail(`sparse tensor '${e.name}': ${problem}`);
    sparse.set(e.name, new SparseTensor(parts));
  }
  for (const e of entries) {
    const { sparse: _layout, ...own } = e.params ?? {};
    if (e.layout !== 'dense') {
      tensors.set(e.name, toDense(sparse.get(e.name)!));
      if (Object.keys(own).length > 0) tensorParams.set(e.name, own);
      continue;
    }
    const start = dataStart + e.offset;
    const data = new ARRAY_TYPES[e.dtype](e.byteLength / ITEM_BYTES[e.dtype]) as DataTypeMap[DType];
    const raw = new Uint8Array(data.buffer);
    raw.set(bytes.subarray(start, start + e.byteLength));
    if (!LITTLE_ENDIAN_HOST) swapBytes(raw, ITEM_BYTES[e.dtype]);
    tensors.set(e.name, new Tensor(e.dtype, data, e.dims));
    if (e.params !== undefined) tensorParams.set(e.name, e.params);
  }
  return {
    version,
    producer: h.producer as string,
    createdAt: h.createdAt as string,
    model: h.model,
    tensors,
    sparse,
    metadata: h.metadata as Record<string, unknown>,
    tensorParams,
    entries,
  };
}

function checkEntry(raw: unknown, i: number, dataBytes: number, fail: (what: string) => never): KilnTensorEntry {
  if (!isPlainObject(raw)) fail(`tensors[${i}] is not a JSON object`);
  const e = raw as Record<string, unknown>;
  if (typeof e.name !== 'string' || e.name.length === 0) fail(`tensors[${i}].name is not a non-empty string`);
  const label = `tensor '${e.name as string}'`;
  if (typeof e.dtype !== 'string' || !DTYPES.includes(e.dtype as DType)) fail(`${label} has unknown dtype ${show(e.dtype)}`);
  if (!KILN_LAYOUTS.includes(e.layout as KilnLayout)) fail(`${label} has layout ${show(e.layout)}, which this reader does not support`);
  if (!Array.isArray(e.dims) || e.dims.length > MAX_RANK) fail(`${label} dims is not an array of at most ${MAX_RANK} dimensions`);
  const dims = e.dims as unknown[];
  for (const d of dims) {
    if (!Number.isInteger(d) || (d as number) < 0 || (d as number) > 2 ** 31 - 1) fail(`${label} has dimension ${show(d)}, not an integer in [0, 2^31-1]`);
  }
  const itemBytes = ITEM_BYTES[e.dtype as DType];
  if (e.params !== undefined && !isPlainObject(e.params)) fail(`${label} params is not a JSON object`);
  let byteLength: number;
  if (e.layout === 'dense') {
    // Multiply in doubles, stopping as soon as the size passes the data section, long before it
    // could leave the exactly-representable range (a 0 anywhere makes an empty tensor).
    byteLength = dims.includes(0) ? 0 : itemBytes;
    for (let k = 0; k < dims.length && byteLength > 0; k++) {
      byteLength *= dims[k] as number;
      if (byteLength > dataBytes) fail(`${label} dims [${dims.join(', ')}] need more bytes than the ${dataBytes}-byte data section holds`);
    }
    if (e.byteLength !== byteLength) fail(`${label} byteLength ${show(e.byteLength)} does not match dims x ${itemBytes} bytes = ${byteLength}`);
  } else {
    byteLength = checkSparseEntry(e, label, dims as number[], dataBytes, fail);
  }
  const offset = e.offset;
  if (!Number.isSafeInteger(offset) || (offset as number) < 0 || (offset as number) % KILN_ALIGNMENT !== 0) {
    fail(`${label} offset ${show(offset)} is not a non-negative multiple of ${KILN_ALIGNMENT}`);
  }
  if ((offset as number) > dataBytes - byteLength) fail(`${label} (offset ${offset as number}, ${byteLength} bytes) runs past the end of the data section (${dataBytes} bytes)`);
  if (!Number.isInteger(e.checksum) || (e.checksum as number) < 0 || (e.checksum as number) > 0xffffffff) fail(`${label} checksum ${show(e.checksum)} is not a 32-bit unsigned integer`);
  return {
    name: e.name as string,
    dtype: e.dtype as DType,
    dims: (e.dims as number[]).slice(),
    layout: e.layout as KilnLayout,
    offset: offset as number,
    byteLength,
    checksum: e.checksum as number,
    ...(e.params === undefined ? {} : { params: e.params as Record<string, unknown> }),
  };
}

/** One array of a sparse entry: byte offset from the entry's start, length in elements. */
interface SparseArray {
  offset: number;
  length: number;
  /** colIdx only: how the indices are stored. */
  dtype?: ColIdxType;
}

const COL_IDX_TYPES = ['int32', 'uint16', 'uint8-delta'] as const;
type ColIdxType = (typeof COL_IDX_TYPES)[number];
const COL_IDX_BYTES: Record<ColIdxType, number> = { int32: 4, uint16: 2, 'uint8-delta': 1 };

/**
 * The absolute column indices of a sparse entry, or what is wrong with their bytes. The delta form
 * needs the row pointers to find each row's first index: decoding stops at the first row whose
 * pointers are out of order or past nnz, leaving the rest 0, and sparseProblem then names the bad
 * row pointer (or the index a step produced: an index past the row is kept past it, never wrapped).
 */
function readColIdx(bytes: Uint8Array, entryStart: number, p: SparseParams, nnz: number): { colIdx: Int32Array; problem?: string } {
  const start = entryStart + p.colIdx.offset;
  const n = p.colIdx.length;
  if (p.colIdx.dtype === 'uint16') return { colIdx: Int32Array.from(readUint16(bytes, start, n)) };
  if (p.colIdx.dtype !== 'uint8-delta') {
    const out = new Int32Array(n);
    const raw = new Uint8Array(out.buffer);
    raw.set(bytes.subarray(start, start + 4 * n));
    if (!LITTLE_ENDIAN_HOST) swapBytes(raw, 4);
    return { colIdx: out };
  }
  const steps = bytes.subarray(start, start + n);
  const rowPtr = new DataView(bytes.buffer, bytes.byteOffset + entryStart + p.rowPtr.offset, 4 * p.rowPtr.length);
  const out = new Int32Array(nnz);
  let prevEnd = 0;
  let at = 0;
  for (let r = 0; r + 1 < p.rowPtr.length; r++) {
    const begin = rowPtr.getInt32(4 * r, true), end = rowPtr.getInt32(4 * r + 4, true);
    if (begin !== prevEnd || end < begin || end > nnz) return { colIdx: out };
    let c = -1;
    for (let k = begin; k < end; k++) {
      for (; at < n && steps[at] === 0; at++) c += DELTA_ESCAPE;
      if (at === n) return { colIdx: out, problem: `its ${n} column index steps end before row ${r}'s ${end - begin} indices do` };
      c += steps[at++];
      out[k] = Math.min(c, 0x7fffffff);
    }
    prevEnd = end;
  }
  // (A last row pointer short of nnz is sparseProblem's to name.)
  if (at !== n && prevEnd === nnz) return { colIdx: out, problem: `${n - at} column index steps follow the last row's indices` };
  return { colIdx: out };
}

// uint8-delta: a step byte 0 advances the index by this much without giving one (a gap of more than
// 255 between two indices of a row: pruned rows with long all-zero stretches).
const DELTA_ESCAPE = 255;

/** Steps of the uint8-delta form of a sparse tensor's indices (escapes included). */
function deltaSteps(t: SparseTensor): number {
  let count = t.colIdx.length;
  for (let r = 0; r + 1 < t.rowPtr.length; r++) {
    let prev = -1;
    for (let k = t.rowPtr[r]; k < t.rowPtr[r + 1]; k++) {
      count += Math.floor((t.colIdx[k] - prev - 1) / DELTA_ESCAPE);
      prev = t.colIdx[k];
    }
  }
  return count;
}

/** The narrowest colIdx form for a sparse tensor's indices and its length in elements (see the layout notes above). */
function colIdxForm(t: SparseTensor): { type: ColIdxType; length: number } {
  const delta = deltaSteps(t);
  const wide = colIdxBytes(sparseGeometry(t.dims, t.block).blockCols);
  if (delta <= wide * t.colIdx.length) return { type: 'uint8-delta', length: delta };
  return { type: wide === 2 ? 'uint16' : 'int32', length: t.colIdx.length };
}

/** The colIdx bytes of a sparse tensor in the given form. */
function encodeColIdx(t: SparseTensor, form: { type: ColIdxType; length: number }): Int32Array | Uint16Array | Uint8Array {
  if (form.type === 'int32') return t.colIdx;
  if (form.type === 'uint16') return Uint16Array.from(t.colIdx);
  const out = new Uint8Array(form.length);
  let at = 0;
  for (let r = 0; r + 1 < t.rowPtr.length; r++) {
    let prev = -1;
    for (let k = t.rowPtr[r]; k < t.rowPtr[r + 1]; k++) {
      let step = t.colIdx[k] - prev;
      for (; step > DELTA_ESCAPE; step -= DELTA_ESCAPE) out[at++] = 0;
      out[at++] = step;
      prev = t.colIdx[k];
    }
  }
  return out;
}

/** `count` little-endian uint16 values at `start`. */
function readUint16(bytes: Uint8Array, start: number, count: number): Uint16Array {
  const out = new Uint16Array(count);
  const raw = new Uint8Array(out.buffer);
  raw.set(bytes.subarray(start, start + 2 * count));
  if (!LITTLE_ENDIAN_HOST) swapBytes(raw, 2);
  return out;
}

/** Column indices are stored as uint16 when every block column index fits. */
function colIdxBytes(blockCols: number): 2 | 4 {
  return blockCols <= 65536 ? 2 : 4;
}

/** Bytes a tensor takes in a `.kiln` file's data section, alignment padding to the next tensor included. */
export function kilnStoredBytes(t: Tensor | SparseTensor): number {
  if (!(t instanceof SparseTensor)) return alignUp(t.data.byteLength);
  const form = colIdxForm(t);
  return alignUp(alignUp(t.rowPtr.byteLength) + alignUp(form.length * COL_IDX_BYTES[form.type]) + t.values.byteLength);
}

/** `params.sparse` of a sparse entry. */
interface SparseParams {
  block: SparseBlock;
  nnz: number;
  rowPtr: SparseArray;
  colIdx: SparseArray;
  values: SparseArray;
}

/**
 * Checks a sparse entry's sizes, counts and array layout against its dims and the data section
 * (the arrays' contents are checked after the checksums, by sparseProblem); returns its byte length.
 */
function checkSparseEntry(e: Record<string, unknown>, label: string, dims: number[], dataBytes: number, fail: (what: string) => never): number {
  const dtype = e.dtype as DType;
  if (dtype !== 'float32' && dtype !== 'int8') fail(`${label} is ${dtype}, but a sparse layout holds float32 or int8 values`);
  if (dims.length < 1) fail(`${label} is a scalar, which a sparse layout cannot hold`);
  const byteLength = e.byteLength;
  if (!Number.isSafeInteger(byteLength) || (byteLength as number) < 0 || (byteLength as number) > dataBytes) {
    fail(`${label} byteLength ${show(byteLength)} is not an integer in [0, ${dataBytes}] (the data section's size)`);
  }
  const p = (e.params as Record<string, unknown> | undefined)?.sparse;
  if (!isPlainObject(p)) fail(`${label} has layout ${e.layout as string} but no params.sparse object`);
  const sp = p as Record<string, unknown>;
  const block = sp.block as unknown[];
  const csr = e.layout === 'sparse-csr';
  if (!Array.isArray(block) || block.length !== 2 || !Number.isInteger(block[0]) || !Number.isInteger(block[1]) ||
    (csr ? block[0] !== 1 || block[1] !== 1 : ![[1, 4], [4, 1], [8, 1]].some((b) => b[0] === block[0] && b[1] === block[1]))) {
    fail(`${label} block ${show(sp.block)} is not ${csr ? '[1, 1]' : 'one of [1, 4], [4, 1], [8, 1]'}`);
  }
  const blockShape = [block[0], block[1]] as const as SparseBlock;
  const { rows, cols, blockRows, blockCols } = sparseGeometry(dims, blockShape);
  const itemBytes = ITEM_BYTES[dtype];
  if (rows * cols * itemBytes > KILN_MAX_SPARSE_DENSE_BYTES) {
    fail(`${label} dims [${dims.join(', ')}] unpack to ${rows * cols * itemBytes} bytes, more than the ${KILN_MAX_SPARSE_DENSE_BYTES}-byte limit`);
  }
  const nnz = sp.nnz;
  if (!Number.isSafeInteger(nnz) || (nnz as number) < 0 || (nnz as number) > blockRows * blockCols) {
    fail(`${label} nnz ${show(nnz)} is not an integer in [0, ${blockRows * blockCols}] (${csr ? 'the elements' : 'the blocks'} of dims [${dims.join(', ')}])`);
  }
  const indexType = (sp.colIdx as Record<string, unknown> | null)?.dtype;
  if (!COL_IDX_TYPES.includes(indexType as ColIdxType)) fail(`${label} params.sparse.colIdx.dtype is ${show(indexType)}, not one of ${COL_IDX_TYPES.map((t) => `'${t}'`).join(', ')}`);
  const indexBytes = COL_IDX_BYTES[indexType as ColIdxType];
  if ((nnz as number) * indexBytes > (byteLength as number)) {
    fail(`${label} nnz ${nnz as number} needs ${(nnz as number) * indexBytes} bytes of column indices, more than the entry's ${byteLength as number} bytes`);
  }
  // Byte steps hold nnz indices and any escapes: at least nnz, at most what the entry holds.
  const deltaLength = (sp.colIdx as Record<string, unknown>).length;
  const delta = indexType === 'uint8-delta';
  if (delta && (!Number.isSafeInteger(deltaLength) || (deltaLength as number) < (nnz as number) || (deltaLength as number) > (byteLength as number))) {
    fail(`${label} params.sparse.colIdx.length is ${show(deltaLength)}, expected byte steps in [${nnz as number}, ${byteLength as number}] (nnz to the entry's bytes)`);
  }
  const arrays: [string, number, number][] = [
    ['rowPtr', blockRows + 1, 4],
    ['colIdx', delta ? (deltaLength as number) : (nnz as number), indexBytes],
    ['values', (nnz as number) * blockShape[0] * blockShape[1], itemBytes],
  ];
  let at = 0;
  for (const [name, length, size] of arrays) {
    const a = sp[name];
    if (!isPlainObject(a)) fail(`${label} params.sparse.${name} is not an {offset, length} object`);
    const { offset, length: stored } = a as Record<string, unknown>;
    if (stored !== length) fail(`${label} params.sparse.${name}.length is ${show(stored)}, expected ${length}`);
    if (offset !== at) fail(`${label} params.sparse.${name}.offset is ${show(offset)}, expected ${at}`);
    at = alignUp(at + length * size);
    if ((offset as number) + length * size > (byteLength as number)) {
      fail(`${label} params.sparse.${name} (offset ${offset as number}, ${length * size} bytes) runs past the entry's ${byteLength as number} bytes`);
    }
    if (name === 'values' && (offset as number) + length * size !== byteLength) {
      fail(`${label} byteLength ${byteLength as number} does not end where its values end (${(offset as number) + length * size})`);
    }
  }
  return byteLength as number;
}

/** Validates the contents and lays the file out as a list of byte chunks (no tensor copies on little-endian hosts). */
function layout(contents: KilnFileContents, options?: KilnWriteOptions): { chunks: Uint8Array[]; byteLength: number } {
  if (contents === null || typeof contents !== 'object') throw typeError('contents', 'an object { model, tensors, metadata? }', contents);
  const c = contents;
  const opts = checkOptions<KilnWriteOptions>('options', options);
  if (!(c.tensors instanceof Map)) throw typeError('contents.tensors', 'a Map of name to Tensor', c.tensors);
  const model = checkJson('contents.model', c.model === undefined ? null : c.model);
  const metadata = c.metadata === undefined ? {} : checkJson('contents.metadata', c.metadata);
  if (!isPlainObject(metadata)) throw typeError('contents.metadata', 'a plain object', c.metadata);
  const params = c.tensorParams ?? new Map<string, Record<string, unknown>>();
  if (!(params instanceof Map)) throw typeError('contents.tensorParams', 'a Map of tensor name to object', params);
  for (const [name, p] of params) {
    if (!c.tensors.has(name)) throw rangeError('contents.tensorParams', `names of tensors in contents.tensors`, name);
    if (!isPlainObject(p)) throw typeError(`contents.tensorParams '${name}'`, 'a plain object', p);
    checkJson(`contents.tensorParams '${name}'`, p);
    if (c.tensors.get(name) instanceof SparseTensor && 'sparse' in p) {
      throw rangeError(`contents.tensorParams '${name}'`, "params without a 'sparse' key (it describes a sparse tensor's layout)", p);
    }
  }
  const producer = opts.producer === undefined ? defaultProducer() : string('options.producer', opts.producer);
  const createdAt = createdAtString(opts.createdAt);

  const entries: KilnTensorEntry[] = [];
  const data: Uint8Array[] = [];
  let offset = 0;
  for (const [name, tensor] of c.tensors) {
    if (typeof name !== 'string' || name.length === 0) throw typeError('contents.tensors key', 'a non-empty string', name);
    if (tensor instanceof SparseTensor) {
      const packed = packSparse(tensor);
      const p = params.get(name);
      entries.push({
        name,
        dtype: tensor.dtype,
        dims: tensor.dims.slice(),
        layout: tensor.pattern === 'csr' ? 'sparse-csr' : 'sparse-bcsr',
        offset,
        byteLength: packed.bytes.byteLength,
        checksum: crc32(packed.bytes),
        params: { ...p, sparse: packed.params },
      });
      data.push(packed.bytes);
      offset = alignUp(offset + packed.bytes.byteLength);
      continue;
    }
    if (!(tensor instanceof Tensor)) throw typeError(`contents.tensors '${name}'`, 'a Tensor or a SparseTensor', tensor);
    if (tensor.dims.length > MAX_RANK) throw rangeError(`contents.tensors '${name}' dims`, `at most ${MAX_RANK} dimensions`, tensor.dims.length);
    let bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    if (!LITTLE_ENDIAN_HOST) bytes = swapBytes(bytes.slice(), ITEM_BYTES[tensor.type as DType]);
    const p = params.get(name);
    entries.push({
      name,
      dtype: tensor.type,
      dims: tensor.dims.slice(),
      layout: 'dense',
      offset,
      byteLength: bytes.byteLength,
      checksum: crc32(bytes),
      ...(p === undefined ? {} : { params: p }),
    });
    data.push(bytes);
    offset = alignUp(offset + bytes.byteLength);
  }

  const header = { format: 'kiln', producer, createdAt, model, tensors: entries, metadata };
  const json = new TextEncoder().encode(JSON.stringify(header));
  if (json.length > MAX_HEADER_BYTES) throw rangeError('contents', `a JSON header of at most ${MAX_HEADER_BYTES} bytes`, json.length);
  const dataStart = alignUp(PREAMBLE_BYTES + json.length);
  const head = new Uint8Array(dataStart);
  head.set(MAGIC, 0);
  const view = new DataView(head.buffer);
  view.setUint32(4, KILN_FORMAT_VERSION, true);
  view.setUint32(8, json.length, true);
  view.setUint32(12, crc32(json), true);
  head.set(json, PREAMBLE_BYTES);

  const chunks: Uint8Array[] = [head];
  const zeros = new Uint8Array(KILN_ALIGNMENT);
  let byteLength = dataStart;
  entries.forEach((e, i) => {
    if (i > 0) {
      const pad = e.offset - (entries[i - 1].offset + entries[i - 1].byteLength);
      chunks.push(zeros.subarray(0, pad));
      byteLength += pad;
    }
    chunks.push(data[i]);
    byteLength += e.byteLength;
  });
  return { chunks, byteLength };
}

/** A sparse tensor's entry bytes (rowPtr, colIdx, values at aligned offsets) and its `params.sparse`. */
function packSparse(t: SparseTensor): { bytes: Uint8Array; params: SparseParams } {
  // Re-check: the arrays are the caller's and may have been changed since construction.
  const problem = sparseProblem(t);
  if (problem !== undefined) throw rangeError('contents.tensors', 'valid sparse tensors', problem);
  const form = colIdxForm(t);
  const indexType = form.type;
  const colIdx = encodeColIdx(t, form);
  const parts: [Int32Array | Uint16Array | Uint8Array | Float32Array | Int8Array, number][] = [[t.rowPtr, 4], [colIdx, COL_IDX_BYTES[indexType]], [t.values, t.dtype === 'float32' ? 4 : 1]];
  const described: SparseArray[] = [];
  let at = 0;
  for (const [array] of parts) {
    described.push({ offset: at, length: array.length });
    at = alignUp(at + array.byteLength);
  }
  described[1].dtype = indexType;
  const last = described[2];
  const bytes = new Uint8Array(last.offset + t.values.byteLength);
  parts.forEach(([array, size], i) => {
    const raw = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
    bytes.set(raw, described[i].offset);
    if (!LITTLE_ENDIAN_HOST) swapBytes(bytes.subarray(described[i].offset, described[i].offset + array.byteLength), size);
  });
  return {
    bytes,
    params: { block: [t.block[0], t.block[1]], nnz: t.nnz, rowPtr: described[0], colIdx: described[1], values: described[2] },
  };
}

/**
 * Checks that a value survives JSON.stringify/parse unchanged: null, booleans, finite numbers,
 * strings, arrays and plain objects (properties set to undefined are dropped, as JSON does).
 */
function checkJson<T>(name: string, value: T, depth = 0, seen = new Set<object>()): T {
  if (depth > 256) throw rangeError(name, 'JSON nested at most 256 levels deep', value);
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw rangeError(name, 'a finite number (JSON has no NaN or Infinity)', value);
    return value;
  }
  if (Array.isArray(value) || isPlainObject(value)) {
    if (seen.has(value)) throw typeError(name, 'JSON without cycles', value);
    seen.add(value);
    if (Array.isArray(value)) {
      value.forEach((v, i) => checkJson(`${name}[${i}]`, v, depth + 1, seen));
    } else {
      for (const [k, v] of Object.entries(value)) if (v !== undefined) checkJson(`${name}.${k}`, v, depth + 1, seen);
    }
    seen.delete(value);
    return value;
  }
  throw typeError(name, 'a JSON value (null, boolean, finite number, string, array or plain object)', value);
}

/** A header value as it appears in the file, shortened. */
function show(value: unknown): string {
  const text = value === undefined ? 'undefined' : JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function createdAtString(value: unknown): string {
  if (value === undefined) return new Date().toISOString();
  if (typeof value === 'string') return value;
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value.toISOString();
  throw typeError('options.createdAt', 'a valid Date or a string', value);
}

function alignUp(n: number): number {
  return Math.ceil(n / KILN_ALIGNMENT) * KILN_ALIGNMENT;
}

/** Reverses the bytes of each `itemBytes`-wide element in place (big-endian hosts only). */
function swapBytes(bytes: Uint8Array, itemBytes: number): Uint8Array {
  if (itemBytes > 1) for (let i = 0; i < bytes.length; i += itemBytes) bytes.subarray(i, i + itemBytes).reverse();
  return bytes;
}

let producerName: string | undefined;

/** 'kiln <version>' from the package.json above this file (src/ or dist/src/), else 'kiln'. */
export function defaultProducer(): string {
  if (producerName !== undefined) return producerName;
  producerName = 'kiln';
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 4; up++, dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') {
        producerName = `kiln ${pkg.version}`;
        break;
      }
    } catch {
      // no package.json at this level
    }
  }
  return producerName;
}

const zlibCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3, zlib's), written out for Node versions before zlib.crc32 (20.15). */
export function crc32Portable(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** CRC-32 of `bytes`: zlib's native one when this Node has it. */
export function crc32(bytes: Uint8Array): number {
  return zlibCrc32 ? zlibCrc32(bytes) : crc32Portable(bytes);
}
