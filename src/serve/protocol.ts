/**
 * The KServe v2 / Open Inference Protocol's inference request and response, JSON and with the
 * binary tensor extension (a JSON header of `Inference-Header-Content-Length` bytes, then each
 * binary input's raw little-endian bytes in order): decoding into session feeds checked against the
 * model's inputs, and encoding the outputs. Every problem with a request is an {@link HttpError}
 * whose message names the input and what was expected and received.
 */
import type { Dim } from '../graph/ir.js';
import { type DataTypeMap, type DType, Tensor } from '../tensor.js';

/** An error that becomes an HTTP response: its status and a message for the `{"error"}` body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The protocol's datatype names of the element types a request may carry. */
const DATATYPES = {
  float32: 'FP32', float64: 'FP64', float16: 'FP16', int8: 'INT8', uint8: 'UINT8', int16: 'INT16', uint16: 'UINT16',
  int32: 'INT32', uint32: 'UINT32', int64: 'INT64', uint64: 'UINT64', bool: 'BOOL',
} as const satisfies Partial<Record<DType, string>>;

type WireType = keyof typeof DATATYPES;

const ARRAYS = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array,
  uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array, bool: Uint8Array,
} as const;

/** Alignment that suits every element type above: where binary data starts in a body read by the server. */
export const BINARY_ALIGN = 8;

/** The protocol name of a Kiln element type ('FP32' for 'float32'); types it has none for keep Kiln's name. */
export function datatypeOf(type: DType): string {
  return (DATATYPES as Partial<Record<DType, string>>)[type] ?? type;
}

/** What the protocol code needs to know of a model's inputs and outputs. */
export interface ModelSignature {
  readonly inputNames: readonly string[];
  readonly inputShapes: readonly (readonly Dim[])[];
  readonly inputTypes: readonly DType[];
  readonly outputNames: readonly string[];
  readonly outputShapes: readonly (readonly Dim[])[];
  readonly outputTypes: readonly DType[];
}

/** A decoded request: feeds by input name, and how the outputs are to be returned. */
export interface InferRequest {
  id?: string;
  feeds: Record<string, Tensor<DType>>;
  /** Outputs to return, in order (all of them when the request names none). */
  outputs: string[];
  /** Per output: raw bytes after the JSON header rather than a JSON `data` array. */
  binaryOutputs: Set<string>;
}

interface WireInput {
  name?: unknown;
  shape?: unknown;
  datatype?: unknown;
  parameters?: { binary_data_size?: unknown };
  data?: unknown;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function received(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function bad(message: string): HttpError {
  return new HttpError(400, message);
}

/**
 * Decodes a request body: JSON when `headerLength` is undefined, else a binary-extension body
 * whose first `headerLength` bytes are the JSON header. A binary input whose bytes are aligned for
 * its element type in `body`'s memory is a view of them (readBody places them so); any other input
 * is a copy. The tensors are the request's own either way: `body` is not shared.
 * @throws HttpError 400 for malformed JSON, unknown or missing inputs, wrong datatypes, shapes or sizes
 */
export function decodeInferRequest(model: ModelSignature, body: Buffer, headerLength?: number): InferRequest {
  return decode(model, body, headerLength).request;
}

/** decodeInferRequest's work, with the request's binary layout when every input is binary data. */
function decode(model: ModelSignature, body: Buffer, headerLength?: number): { request: InferRequest; layout?: BinaryLayout } {
  if (headerLength !== undefined && headerLength > body.length) {
    throw bad(`Expected an Inference-Header-Content-Length of at most the body's ${body.length} bytes but received ${headerLength}`);
  }
  const headerBytes = headerLength === undefined ? body : body.subarray(0, headerLength);
  let header: unknown;
  try {
    header = JSON.parse(headerBytes.toString('utf8'));
  } catch (err) {
    throw bad(`Expected a JSON inference request but the body does not parse: ${(err as Error).message}`);
  }
  if (!isObject(header)) throw bad(`Expected a JSON object with "inputs" but received ${received(header)}`);
  const inputs = header.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0) throw bad(`Expected "inputs" to be a non-empty array but received ${received(inputs)}`);
  let offset = headerLength ?? 0;
  const feeds: Record<string, Tensor<DType>> = {};
  const placed: BinaryLayout['inputs'] = [];
  let allBinary = headerLength !== undefined;
  for (const [i, raw] of inputs.entries()) {
    if (!isObject(raw)) throw bad(`Expected inputs[${i}] to be an object but received ${received(raw)}`);
    const input = raw as WireInput;
    const name = input.name;
    const index = typeof name === 'string' ? model.inputNames.indexOf(name) : -1;
    if (index < 0) throw bad(`Expected inputs[${i}].name to be one of ${model.inputNames.map((n) => `"${n}"`).join(', ')} but received ${received(name)}`);
    if (feeds[name as string]) throw bad(`Expected input "${name}" once but received it twice`);
    const type = model.inputTypes[index]!;
    const wire = (DATATYPES as Partial<Record<DType, string>>)[type];
    if (wire === undefined) throw bad(`Input "${name}" has the element type '${type}', which this server does not take over the protocol`);
    if (input.datatype !== wire) throw bad(`Expected input "${name}" of datatype "${wire}" but received ${received(input.datatype)}`);
    const shape = checkShape(name as string, input.shape, model.inputShapes[index]!);
    const count = shape.reduce((a, b) => a * b, 1);
    const binarySize = input.parameters?.binary_data_size;
    let data: DataTypeMap[WireType];
    if (binarySize !== undefined) {
      if (headerLength === undefined) throw bad(`Input "${name}" has binary_data_size but the request has no Inference-Header-Content-Length header`);
      const bytes = count * ARRAYS[type as WireType].BYTES_PER_ELEMENT;
      if (binarySize !== bytes) throw bad(`Expected binary_data_size ${bytes} for input "${name}" (${count} ${wire} elements for shape [${shape.join(', ')}]) but received ${received(binarySize)}`);
      if (offset + bytes > body.length) throw bad(`Expected ${bytes} bytes of binary data for input "${name}" but the body has ${body.length - offset} left`);
      data = binaryData(type as WireType, body, offset, count);
      placed.push({ name: name as string, type: type as WireType, shape: shape.slice(), count, offset: offset - headerLength });
      offset += bytes;
    } else {
      data = fromJson(name as string, type as WireType, input.data, count, shape);
      allBinary = false;
    }
    feeds[name as string] = new Tensor(type, data as DataTypeMap[DType], shape);
  }
  if (headerLength !== undefined && offset !== body.length) {
    throw bad(`Expected the body to end after the binary inputs' ${offset - (headerLength ?? 0)} bytes but it has ${body.length - offset} more`);
  }
  const missing = model.inputNames.filter((n) => !feeds[n]);
  if (missing.length > 0) throw bad(`Expected every model input but received none for ${missing.map((n) => `"${n}"`).join(', ')}`);
  const { outputs, binaryOutputs } = requestedOutputs(model, header);
  const id = typeof header.id === 'string' ? { id: header.id } : {};
  const request = { ...id, feeds, outputs, binaryOutputs };
  if (!allBinary) return { request };
  return { request, layout: { inputs: placed, bytes: offset - headerLength!, ...id, outputs: outputs.slice(), binaryOutputs: new Set(binaryOutputs) } };
}

/** Where a binary request's inputs lie after its header, as its header says. */
interface BinaryLayout {
  inputs: { name: string; type: WireType; shape: number[]; count: number; offset: number }[];
  /** Bytes of binary data after the header. */
  bytes: number;
  id?: string;
  outputs: string[];
  binaryOutputs: Set<string>;
}

/**
 * Decodes requests as {@link decodeInferRequest} does, remembering the last binary request's header.
 * A client sends the same JSON header with every image, so its parse and checks run once: after
 * that a request whose header bytes equal the last one's costs a byte comparison and a view of
 * each input (int8 SeedCNN behind `kiln serve`, wrk at 64 connections: the event loop's CPU time
 * per request fell from 44 to 40 us). Any other request takes the full path, with its error
 * messages, and becomes the one remembered when it is all binary.
 */
export class InferRequestDecoder {
  private header: Buffer | undefined;
  private layout: BinaryLayout | undefined;

  constructor(private readonly model: ModelSignature) {}

  decode(body: Buffer, headerLength?: number): InferRequest {
    const layout = this.layout;
    if (
      layout !== undefined && headerLength !== undefined && headerLength === this.header!.length &&
      body.length === headerLength + layout.bytes && this.header!.equals(body.subarray(0, headerLength))
    ) {
      const feeds: Record<string, Tensor<DType>> = {};
      for (const input of layout.inputs) {
        feeds[input.name] = new Tensor(input.type, binaryData(input.type, body, headerLength + input.offset, input.count) as DataTypeMap[DType], input.shape.slice());
      }
      return { ...(layout.id !== undefined ? { id: layout.id } : {}), feeds, outputs: layout.outputs.slice(), binaryOutputs: new Set(layout.binaryOutputs) };
    }
    const { request, layout: decoded } = decode(this.model, body, headerLength);
    if (decoded !== undefined) {
      this.header = Buffer.from(body.subarray(0, headerLength));
      this.layout = decoded;
    }
    return request;
  }
}

/** The request's shape for input `name`, checked against the model's (symbolic dims take any size >= 1). */
function checkShape(name: string, shape: unknown, expected: readonly Dim[]): number[] {
  const want = `[${expected.join(', ')}]`;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 1)) {
    throw bad(`Expected input "${name}" to have a shape of positive integers like ${want} but received ${received(shape)}`);
  }
  const fits = shape.length === expected.length && expected.every((d, i) => typeof d !== 'number' || d === shape[i]);
  if (!fits) throw bad(`Expected input "${name}" of shape ${want} but received [${shape.join(', ')}]`);
  return shape as number[];
}

/** A binary input's elements: a view of the body where they are aligned, else an aligned copy. */
function binaryData(type: WireType, body: Buffer, offset: number, count: number): DataTypeMap[WireType] {
  const Ctor = ARRAYS[type];
  const start = body.byteOffset + offset;
  if (start % Ctor.BYTES_PER_ELEMENT === 0) return new Ctor(body.buffer as ArrayBuffer, start, count) as DataTypeMap[WireType];
  const out = new Ctor(count);
  new Uint8Array(out.buffer).set(body.subarray(offset, offset + count * Ctor.BYTES_PER_ELEMENT));
  return out as DataTypeMap[WireType];
}

/** A JSON input's `data` (flat, or nested as the shape): numbers (booleans for BOOL), exactly `count` of them. */
function fromJson(name: string, type: WireType, data: unknown, count: number, shape: number[]): DataTypeMap[WireType] {
  if (type === 'float16') throw bad(`Input "${name}" is FP16: send it as binary data (binary_data_size)`);
  if (!Array.isArray(data)) throw bad(`Expected input "${name}" to carry a "data" array (or binary_data_size) but received ${received(data)}`);
  const flat = data.some(Array.isArray) ? (data.flat(shape.length) as unknown[]) : data;
  if (flat.length !== count) {
    throw bad(`Expected ${count} elements for input "${name}" of shape [${shape.join(', ')}] but received ${flat.length}`);
  }
  const Ctor = ARRAYS[type];
  const out = new Ctor(count);
  const big = type === 'int64' || type === 'uint64';
  for (let i = 0; i < count; i++) {
    const v = flat[i];
    const n = type === 'bool' && typeof v === 'boolean' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n) || ((big || !type.startsWith('float')) && !Number.isInteger(n))) {
      throw bad(`Expected input "${name}" data[${i}] to be a ${type === 'bool' ? 'boolean' : type.startsWith('float') ? 'finite number' : 'integer'} but received ${received(v)}`);
    }
    (out as unknown as (number | bigint)[])[i] = big ? BigInt(n) : n;
  }
  return out as DataTypeMap[WireType];
}

function requestedOutputs(model: ModelSignature, header: Record<string, unknown>): { outputs: string[]; binaryOutputs: Set<string> } {
  const params = isObject(header.parameters) ? header.parameters : {};
  const allBinary = params.binary_data_output === true;
  const wanted = header.outputs;
  if (wanted === undefined) return { outputs: model.outputNames.slice(), binaryOutputs: new Set(allBinary ? model.outputNames : []) };
  if (!Array.isArray(wanted)) throw bad(`Expected "outputs" to be an array but received ${received(wanted)}`);
  const outputs: string[] = [];
  const binaryOutputs = new Set<string>();
  for (const [i, o] of wanted.entries()) {
    const name = isObject(o) ? o.name : undefined;
    if (typeof name !== 'string' || !model.outputNames.includes(name)) {
      throw bad(`Expected outputs[${i}].name to be one of ${model.outputNames.map((n) => `"${n}"`).join(', ')} but received ${received(name)}`);
    }
    outputs.push(name);
    const own = isObject((o as Record<string, unknown>).parameters) ? ((o as Record<string, unknown>).parameters as Record<string, unknown>).binary_data : undefined;
    if (own === true || (own === undefined && allBinary)) binaryOutputs.add(name);
  }
  return { outputs, binaryOutputs };
}

/** An encoded response: its body, and the JSON header's length when the body is binary-extension. */
export interface EncodedResponse {
  body: Buffer;
  headerLength?: number;
}

/** The response to `request`: JSON, or the binary extension when any output is asked for as binary. */
export function encodeInferResponse(modelName: string, request: InferRequest, results: Record<string, Tensor<DType>>): EncodedResponse {
  const binary: Buffer[] = [];
  const outputs = request.outputs.map((name) => {
    const t = results[name]!;
    const base = { name, datatype: datatypeOf(t.type), shape: t.dims.slice() };
    if (request.binaryOutputs.has(name)) {
      const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      binary.push(bytes);
      return { ...base, parameters: { binary_data_size: bytes.length } };
    }
    return { ...base, data: jsonData(t) };
  });
  const header = Buffer.from(JSON.stringify({ model_name: modelName, ...(request.id !== undefined ? { id: request.id } : {}), outputs }));
  if (binary.length === 0) return { body: header };
  return { body: Buffer.concat([header, ...binary]), headerLength: header.length };
}

function jsonData(t: Tensor<DType>): (number | boolean)[] {
  if (t.type === 'bool') return Array.from(t.data as Uint8Array, (v) => v !== 0);
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}
