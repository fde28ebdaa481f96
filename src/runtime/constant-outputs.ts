/**
 * Constant outputs: a graph output that is a constant after import's folding (Shape of a static
 * input, a Constant, ConstantOfShape of a bound shape, Size) has no step in the plan; the session
 * returns it as a tensor of the output's declared ONNX dtype (int64 as a BigInt64Array, bool as
 * 'bool'...), a fresh copy per run, and the plan computes the other outputs.
 */
import { encodeBfloat16, encodeMiniFloat, encodeNarrowInt } from '../tensor-formats.js';
import { ErrorCode, KilnError } from '../errors.js';
import type { Graph } from '../graph/ir.js';
import { Tensor, toFloat16Bits, type DType } from '../tensor.js';
import { rangeError, typeError } from '../validate.js';
import type { InferenceSession, ProfileOptions, SessionFeeds, SessionInfo, SessionOutputs, SessionProfile } from './session.js';

/** What an InferenceSession hands its verbs to when it wraps other sessions. */
export interface SessionDelegate {
  run(feeds: SessionFeeds): Promise<SessionOutputs>;
  runSync(feeds: SessionFeeds): SessionOutputs;
  info(): SessionInfo;
  /** The profile of the inner session whose plan ran (options already checked by the caller). */
  profile(options: ProfileOptions): SessionProfile;
  /** Requests waiting in the inner sessions' micro-batching queues. */
  readonly queuedRuns: number;
  readonly pendingRuns: number;
  release(): void;
}

/** The graph's outputs that are constants (initializers no node produces), or undefined if none. */
export function constantOutputs(graph: Graph): Map<string, Tensor> | undefined {
  const produced = new Set(graph.nodes.flatMap((n) => n.outputs));
  const out = new Map<string, Tensor>();
  for (const o of graph.outputs) {
    const t = graph.initializers.get(o.name);
    if (t !== undefined && !produced.has(o.name)) out.set(o.name, t);
  }
  return out.size > 0 ? out : undefined;
}

/** The graph without its constant outputs (what the plan computes). */
export function withoutConstantOutputs(graph: Graph, constants: Map<string, Tensor>): Graph {
  return { ...graph, outputs: graph.outputs.filter((o) => !constants.has(o.name)) };
}

/** A constant (a storage-type tensor) as a fresh tensor of `dtype`. */
export function constantAs(t: Tensor, dtype: DType): Tensor<DType> {
  const src = t.data as ArrayLike<number>;
  const n = src.length;
  const dims = t.dims.slice();
  switch (dtype) {
    case 'int64': return new Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(Math.trunc(src[i]!))), dims);
    case 'uint64': return new Tensor('uint64', BigUint64Array.from({ length: n }, (_, i) => BigInt(Math.max(0, Math.trunc(src[i]!)))), dims);
    case 'bool': return new Tensor('bool', Uint8Array.from({ length: n }, (_, i) => (src[i] ? 1 : 0)), dims);
    case 'float16': return new Tensor('float16', Uint16Array.from({ length: n }, (_, i) => toFloat16Bits(src[i]!)), dims);
    case 'float32': return new Tensor('float32', Float32Array.from(src), dims);
    case 'float64': return new Tensor('float64', Float64Array.from(src), dims);
    case 'int8': return new Tensor('int8', Int8Array.from(src), dims);
    case 'uint8': return new Tensor('uint8', Uint8Array.from(src), dims);
    case 'int16': return new Tensor('int16', Int16Array.from(src), dims);
    case 'uint16': return new Tensor('uint16', Uint16Array.from(src), dims);
    case 'int32': return new Tensor('int32', Int32Array.from(src), dims);
    case 'uint32': return new Tensor('uint32', Uint32Array.from(src), dims);
    case 'bfloat16': return new Tensor('bfloat16', Uint16Array.from({ length: n }, (_, i) => encodeBfloat16(src[i]!)), dims);
    case 'int4': case 'int2': return new Tensor(dtype, Int8Array.from({ length: n }, (_, i) => encodeNarrowInt(dtype, src[i]!)), dims);
    case 'uint4': case 'uint2': return new Tensor(dtype, Uint8Array.from({ length: n }, (_, i) => encodeNarrowInt(dtype, src[i]!)), dims);
    default: return new Tensor(dtype, Uint8Array.from({ length: n }, (_, i) => encodeMiniFloat(dtype, src[i]!)), dims);
  }
}

/**
 * A session some of whose outputs are constants: `inner` (undefined when every output is
 * constant) computes the rest; each run returns fresh copies of the constants, in `dtypes`.
 */
export class ConstantOutputs implements SessionDelegate {
  private released = false;

  constructor(
    private readonly outputNames: readonly string[],
    private readonly inputNames: readonly string[],
    private readonly constants: Map<string, Tensor>,
    private readonly dtypes: ReadonlyMap<string, DType>,
    private readonly inner: InferenceSession | undefined,
  ) {}

  run(feeds: SessionFeeds): Promise<SessionOutputs> {
    try {
      this.checkLive();
      if (!this.inner) {
        this.checkFeeds(feeds);
        return Promise.resolve(this.merge({}));
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return this.inner.run(feeds).then((outputs) => this.merge(outputs));
  }

  runSync(feeds: SessionFeeds): SessionOutputs {
    this.checkLive();
    if (!this.inner) {
      this.checkFeeds(feeds);
      return this.merge({});
    }
    return this.merge(this.inner.runSync(feeds));
  }

  info(): SessionInfo {
    this.checkLive();
    if (this.inner) return this.inner.info();
    return { arenaBytes: 0, arenaBytesPerImage: 0, weightBytes: 0, arenaBytesHeld: 0, steps: [...this.constants.keys()].map((name) => `constant output ${name}`), macsPerImage: 0 };
  }

  profile(options: ProfileOptions): SessionProfile {
    this.checkLive();
    if (!this.inner) throw new KilnError(ErrorCode.INVALID_STATE, 'Every output of this model is a constant: no plan step runs, so there is nothing to profile');
    return this.inner.profile(options);
  }

  get pendingRuns(): number {
    return this.inner?.pendingRuns ?? 0;
  }

  get queuedRuns(): number {
    return this.inner?.queuedRuns ?? 0;
  }

  release(): void {
    if (this.released) return;
    this.inner?.release();
    this.released = true;
  }

  private checkLive(): void {
    if (this.released) throw new KilnError(ErrorCode.DISPOSED, 'The session was released');
  }

  /** Names only: no plan reads the values of a session whose outputs are all constants. */
  private checkFeeds(feeds: SessionFeeds): void {
    if (feeds === null || typeof feeds !== 'object' || Array.isArray(feeds) || feeds instanceof Tensor) {
      throw typeError('feeds', `an object mapping input names (${this.inputNames.map((n) => `'${n}'`).join(', ')}) to Tensors`, feeds);
    }
    for (const name of Object.keys(feeds)) {
      if (!this.inputNames.includes(name)) throw rangeError('feeds', `only the inputs ${this.inputNames.map((n) => `'${n}'`).join(', ')}`, `an extra input '${name}'`);
    }
    for (const name of this.inputNames) {
      const t = (feeds as Record<string, unknown>)[name];
      if (t === null || typeof t !== 'object' || !('data' in t) || !('dims' in t)) throw typeError(`feeds['${name}']`, 'a Tensor', t);
    }
  }

  private merge(computed: SessionOutputs): SessionOutputs {
    const out: SessionOutputs = {};
    for (const name of this.outputNames) {
      const c = this.constants.get(name);
      // Typed as the float32 outputs a plan returns; a constant keeps its declared ONNX dtype.
      out[name] = c ? (constantAs(c, this.dtypes.get(name) ?? c.type) as unknown as Tensor<'float32'>) : computed[name]!;
    }
    return out;
  }
}
