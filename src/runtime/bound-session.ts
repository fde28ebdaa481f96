/**
 * Sessions whose plan depends on values only a run supplies.
 *
 * Parameter inputs (src/onnx/parameter-inputs.ts): an ONNX model may feed, as graph inputs, what
 * Kiln's plan needs as constants (Reshape's shape, Conv's W, a QuantizeLinear scale, Clip's
 * bounds...). `BoundSession` keeps the model bytes and, per run, binds the fed parameter values as
 * initializers (importModel's `bindInputs`), so the model imports as if they were constants, then
 * runs the data feeds on an inner session built from that import. Inner sessions are cached by
 * the parameter values (dtype, dims and bytes) in a small LRU: each distinct value costs one import
 * and one plan build; runs with a value seen recently reuse its plan.
 *
 * Loaded on demand by session.ts (it needs the ONNX reader).
 */
import { createHash } from 'node:crypto';

import { ErrorCode, KilnError } from '../errors.js';
import type { Dim, Graph, ValueInfo } from '../graph/ir.js';
import { acceptedDtypes, boundInitializer, declaredInputs, type BindableTensor, type DeclaredInput } from '../onnx/bind-inputs.js';
import { isQuantOnnxNode } from '../onnx/import-quant.js';
import { isKnownOp } from '../onnx/normalize.js';
import { resolveOpVersion } from '../onnx/op-versions.js';
import { parameterInputs } from '../onnx/parameter-inputs.js';
import { DataType, decodeModel, type IModelProto } from '../onnx/proto.js';
import { declaredType, modelOpsets } from '../onnx/read-graph.js';
import { notImplementedReason } from '../onnx/supported-ops.js';
import { DTYPE_BYTES, Tensor, type DType } from '../tensor.js';
import { rangeError, typeError } from '../validate.js';
import type { SessionDelegate } from './constant-outputs.js';
import type { InferenceSession, ProfileOptions, SessionFeeds, SessionInfo, SessionOutputs, SessionProfile } from './session.js';

/** Inner sessions a bound session keeps, most recently used last. */
export const BOUND_CACHE_SIZE = 8;

/** The dtype a declared ONNX element type is returned as. */
const OUTPUT_DTYPE: Readonly<Partial<Record<number, DType>>> = {
  [DataType.FLOAT]: 'float32', [DataType.UINT8]: 'uint8', [DataType.INT8]: 'int8', [DataType.UINT16]: 'uint16',
  [DataType.INT16]: 'int16', [DataType.INT32]: 'int32', [DataType.INT64]: 'int64', [DataType.BOOL]: 'bool',
  [DataType.FLOAT16]: 'float16', [DataType.DOUBLE]: 'float64', [DataType.UINT32]: 'uint32', [DataType.UINT64]: 'uint64',
};

/** What create learns from an ONNX model's declarations before importing it. */
export interface OnnxSourceInfo {
  bytes: Uint8Array;
  /** Graph inputs (initializers excluded), as declared. */
  inputs: DeclaredInput[];
  /** Names of the parameter inputs (parameter-inputs.ts), in input order. */
  parameters: string[];
  /** Declared outputs: name, shape ([] when undeclared) and dtype (float32 when undeclared). */
  outputs: { name: string; shape: Dim[]; dtype: DType }[];
  /** The ERR_KILN_UNSUPPORTED_OP message for live nodes no binding can make runnable, if any. */
  unsupported: string | undefined;
}

/**
 * Reads the declarations of an ONNX model: inputs, parameter inputs, outputs and their dtypes.
 * Undefined when the bytes do not decode (the importer then reports the corrupt model).
 */
export function onnxSourceInfo(bytes: Uint8Array): OnnxSourceInfo | undefined {
  let model: IModelProto;
  try {
    model = decodeModel(bytes);
    const g = model.graph;
    if (!g) return undefined;
    const nodes = (g.node ?? []).map((n) => ({ op: n.opType ?? '', domain: n.domain ?? '', name: n.name ?? '', inputs: n.input ?? [], outputs: n.output ?? [] }));
    const inputs = declaredInputs(model);
    const outputs = (g.output ?? []).map((v) => {
      const t = declaredType(v, `graph output '${v.name ?? ''}'`);
      return { name: v.name ?? '', shape: t?.shape ?? [], dtype: OUTPUT_DTYPE[t?.elemType ?? DataType.FLOAT] ?? 'float32' };
    });
    const parameters = parameterInputs(nodes, inputs.map((i) => i.name), outputs.map((o) => o.name), new Map(inputs.map((i) => [i.name, i.shape])));
    return { bytes, inputs, parameters, outputs, unsupported: unfixable(model, nodes, outputs.map((o) => o.name)) };
  } catch {
    return undefined;
  }
}

/**
 * Live nodes of operators import does not know at all: no bound value makes those runnable, so
 * create reports them at once, in the importer's words.
 */
function unfixable(model: IModelProto, nodes: { op: string; domain: string; name: string; inputs: string[]; outputs: string[] }[], outputs: string[]): string | undefined {
  const needed = new Set(outputs);
  const problems: string[] = [];
  const types = new Set<string>();
  const { opset, domainOpsets } = modelOpsets(model);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k]!;
    if (!n.outputs.some((o) => needed.has(o))) continue;
    for (const i of n.inputs) if (i !== '') needed.add(i);
    const defaultDomain = n.domain === '' || n.domain === 'ai.onnx';
    if (isQuantOnnxNode(n.op, defaultDomain ? '' : n.domain) || (defaultDomain && isKnownOp(n.op))) continue;
    // Nodes with subgraphs are the importer's to judge.
    if ((model.graph?.node?.[k]?.attribute ?? []).some((a) => a.g || (a.graphs && a.graphs.length > 0))) return undefined;
    types.add(n.op);
    const version = defaultDomain ? resolveOpVersion(n.op, opset) ?? opset : domainOpsets.get(n.domain);
    problems.unshift(`${n.op} '${n.name}' (${defaultDomain ? notImplementedReason(n.op) : 'not implemented'}) [domain ${defaultDomain ? 'ai.onnx' : n.domain}, version ${version ?? 'unknown (the domain is not imported)'}]`);
  }
  if (problems.length === 0) return undefined;
  return `Kiln cannot run ${problems.length} node(s) of this model, operator types ${[...types].sort().join(', ')}: ${problems.join('; ')}`;
}

/** The graph an InferenceSession shows for a bound model: every declared input and output. */
export function boundSurface(info: OnnxSourceInfo, name: string): Graph {
  const valueDtype = (t: DType): ValueInfo['dtype'] => (t === 'int64' || t === 'int32' || t === 'uint8' || t === 'int8' ? t : 'float32');
  return {
    name,
    inputs: info.inputs.map((i) => ({ name: i.name, dtype: valueDtype(OUTPUT_DTYPE[i.elemType] ?? 'float32'), shape: i.shape ?? [] })),
    outputs: info.outputs.map((o) => ({ name: o.name, dtype: valueDtype(o.dtype), shape: o.shape })),
    nodes: [],
    initializers: new Map(),
  };
}

interface Entry {
  /** The inner session's build; rejected builds stay cached (the same values fail the same way). */
  pending: Promise<InferenceSession>;
  session: InferenceSession | undefined;
  settled: boolean;
  /** Runs using this entry now (an entry in use is never evicted). */
  inFlight: number;
}

/**
 * The machinery behind an InferenceSession over a model with parameter inputs (see the module
 * comment). `build` imports the model with the given inputs bound and builds an inner session.
 */
export class BoundSession implements SessionDelegate {
  private readonly cache = new Map<string, Entry>();
  private readonly parameters: readonly DeclaredInput[];
  private readonly dataNames: readonly string[];
  private readonly allNames: readonly string[];
  /** The inner session of the most recent run (what info() describes). */
  private last: InferenceSession | undefined;
  private inFlight = 0;
  private released = false;

  constructor(
    info: OnnxSourceInfo,
    private readonly build: (bound: Record<string, BindableTensor>) => Promise<InferenceSession>,
    private readonly limit = BOUND_CACHE_SIZE,
  ) {
    const parameters = new Set(info.parameters);
    this.parameters = info.inputs.filter((i) => parameters.has(i.name));
    this.dataNames = info.inputs.filter((i) => !parameters.has(i.name)).map((i) => i.name);
    this.allNames = info.inputs.map((i) => i.name);
  }

  run(feeds: SessionFeeds): Promise<SessionOutputs> {
    let entry: Entry;
    let data: SessionFeeds;
    try {
      this.checkLive();
      const read = this.readParameters(feeds);
      data = read.data;
      entry = this.entry(read.key, read.bound);
    } catch (err) {
      return Promise.reject(err);
    }
    entry.inFlight++;
    this.inFlight++;
    const done = (): void => {
      entry.inFlight--;
      this.inFlight--;
      this.evict();
    };
    const ran = entry.session !== undefined
      ? entry.session.run(data)
      : entry.pending.then((s) => {
          this.checkLive();
          return s.run(data);
        });
    return ran.then(
      (outputs) => {
        if (entry.session) this.last = entry.session;
        done();
        return outputs;
      },
      (err: unknown) => {
        done();
        throw err;
      },
    );
  }

  runSync(feeds: SessionFeeds): SessionOutputs {
    this.checkLive();
    const { key, data } = this.readParameters(feeds);
    const entry = this.cache.get(key);
    if (entry?.session === undefined) {
      throw new KilnError(ErrorCode.INVALID_STATE, `Expected parameter values (${this.parameters.map((p) => `'${p.name}'`).join(', ')}) this session has built a plan for but received new ones: call run() once with them first`);
    }
    this.touch(key, entry);
    const outputs = entry.session.runSync(data);
    this.last = entry.session;
    return outputs;
  }

  info(): SessionInfo {
    this.checkLive();
    if (!this.last) throw new KilnError(ErrorCode.INVALID_STATE, 'The session has parameter inputs and has not run yet: nothing is compiled');
    return this.last.info();
  }

  /** The profile of the plan of the latest run's parameter values (each set of values times its own). */
  profile(options: ProfileOptions): SessionProfile {
    this.checkLive();
    if (!this.last) throw new KilnError(ErrorCode.INVALID_STATE, 'The session has parameter inputs and has not run yet: nothing to profile');
    return this.last.profile(options);
  }

  get pendingRuns(): number {
    return this.inFlight;
  }

  get queuedRuns(): number {
    let queued = 0;
    for (const entry of this.cache.values()) queued += entry.session?.queuedRuns ?? 0;
    return queued;
  }

  release(): void {
    if (this.released) return;
    if (this.inFlight > 0) throw new KilnError(ErrorCode.INVALID_STATE, `Cannot release the session while ${this.inFlight} run(s) are in flight: await them first`);
    this.released = true;
    for (const entry of this.cache.values()) {
      if (entry.session) entry.session.release();
      else entry.pending.then((s) => s.release(), () => undefined);
    }
    this.cache.clear();
    this.last = undefined;
  }

  /** Number of inner sessions (built or building) held now. */
  get cachedPlans(): number {
    return this.cache.size;
  }

  private checkLive(): void {
    if (this.released) throw new KilnError(ErrorCode.DISPOSED, 'The session was released');
  }

  /** Validates the feeds' names and parameter values; the cache key, a copy of the values, the data feeds. */
  private readParameters(feeds: SessionFeeds): { key: string; bound: Record<string, BindableTensor>; data: SessionFeeds } {
    if (feeds === null || typeof feeds !== 'object' || Array.isArray(feeds) || feeds instanceof Tensor) {
      throw typeError('feeds', `an object mapping input names (${this.allNames.map((n) => `'${n}'`).join(', ')}) to Tensors`, feeds);
    }
    for (const name of Object.keys(feeds)) {
      if (!this.allNames.includes(name)) throw rangeError('feeds', `only the inputs ${this.allNames.map((n) => `'${n}'`).join(', ')}`, `an extra input '${name}'`);
    }
    const parts: string[] = [];
    const bound: Record<string, BindableTensor> = {};
    for (const p of this.parameters) {
      const where = `feeds['${p.name}']`;
      const value = (feeds as Record<string, unknown>)[p.name] as BindableTensor | undefined;
      if (value === undefined) throw typeError(where, `a Tensor (the parameter input '${p.name}', ${acceptedDtypes(p.elemType).join(' or ')})`, value);
      const proto = boundInitializer(p, value, where);
      const raw = proto.rawData as Uint8Array;
      // A copy, taken now: the caller may change its buffer while the build is under way.
      bound[p.name] = { type: value.type, data: copyOf(value.type, raw), dims: (proto.dims as number[]).slice() };
      parts.push(`${p.name}:${value.type}:${(proto.dims as number[]).join('x')}:${bytesKey(raw)}`);
    }
    const data: SessionFeeds = {};
    for (const name of this.dataNames) {
      const t = (feeds as Record<string, Tensor | undefined>)[name];
      if (t !== undefined) data[name] = t;
    }
    return { key: parts.join('|'), bound, data };
  }

  /** The cache entry for these values, building its inner session on a miss. */
  private entry(key: string, bound: Record<string, BindableTensor>): Entry {
    const hit = this.cache.get(key);
    if (hit) {
      this.touch(key, hit);
      return hit;
    }
    const entry: Entry = { pending: this.build(bound), session: undefined, settled: false, inFlight: 0 };
    entry.pending.then(
      (s) => {
        entry.settled = true;
        if (this.released || this.cache.get(key) !== entry) {
          // Evicted or released while building (only possible once idle): free it now.
          s.release();
          return;
        }
        entry.session = s;
        this.last ??= s;
      },
      () => {
        entry.settled = true;
      },
    );
    this.cache.set(key, entry);
    this.evict();
    return entry;
  }

  private touch(key: string, entry: Entry): void {
    this.cache.delete(key);
    this.cache.set(key, entry);
  }

  /** Drops the least recently used idle, settled entries beyond the limit. */
  private evict(): void {
    if (this.cache.size <= this.limit) return;
    for (const [key, entry] of this.cache) {
      if (this.cache.size <= this.limit) break;
      if (entry.inFlight > 0 || !entry.settled) continue;
      this.cache.delete(key);
      if (entry.session) {
        if (this.last === entry.session) this.last = undefined;
        entry.session.release();
      }
    }
  }
}

function copyOf(type: DType, raw: Uint8Array): BindableTensor['data'] {
  const bytes = raw.slice();
  const n = bytes.length / DTYPE_BYTES[type];
  switch (type) {
    case 'float32': return new Float32Array(bytes.buffer, 0, n);
    case 'float64': return new Float64Array(bytes.buffer, 0, n);
    case 'float16': case 'uint16': return new Uint16Array(bytes.buffer, 0, n);
    case 'int16': return new Int16Array(bytes.buffer, 0, n);
    case 'int8': return new Int8Array(bytes.buffer, 0, n);
    case 'uint8': case 'bool': return bytes;
    case 'int32': return new Int32Array(bytes.buffer, 0, n);
    case 'uint32': return new Uint32Array(bytes.buffer, 0, n);
    case 'int64': return new BigInt64Array(bytes.buffer, 0, n);
    case 'uint64': return new BigUint64Array(bytes.buffer, 0, n);
    default: throw new TypeError(`Expected a parameter dtype but received ${type}`); // acceptedDtypes never names a narrow format
  }
}

/** Bytes as a key: themselves (hex) when short, their SHA-256 when long. */
function bytesKey(raw: Uint8Array): string {
  if (raw.length <= 64) return Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('hex');
  return createHash('sha256').update(raw).digest('hex');
}

