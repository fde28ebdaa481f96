/**
 * `InferenceSession`: a compiled model served on Kiln's native plan, with onnxruntime-node's verbs:
 *
 *   const session = await InferenceSession.create(model, { inputShape: [1, 28, 28] });
 *   const { logits } = await session.run({ input: new Tensor('float32', pixels, [64, 1, 28, 28]) });
 *   session.release();
 *
 * A run whose estimated cost is tiny (a few tens of microseconds: decided by its multiply-
 * accumulates) runs inline and still returns a Promise; heavier runs leave the event loop.
 * Several runs may be in flight at once on one session; each gets its own scratch arena.
 */
import { dirname } from 'node:path';

import { ErrorCode, KilnError } from '../errors.js';
import { allocFloat32 } from '../memory.js';
import { toGraph } from '../graph/from-module.js';
import type { Dim, Graph } from '../graph/ir.js';
import { GRAPH_OPTIMIZATION_LEVELS, type GraphOptimizationLevel, optimizeGraph } from '../graph/passes/index.js';
import { Module } from '../nn/module.js';
import { type DType, Tensor } from '../tensor.js';
import type { BindableTensor } from '../onnx/bind-inputs.js';
import { emptyModel, readModelFile } from '../util/files.js';
import { boolean, describe, dims as checkDims, integer, number, oneOf, onlyKeys, options as checkOptions, rangeError, shapeError, typeError } from '../validate.js';
import { shouldRunAsync } from './async-policy.js';
import { type CompiledGraph, type CompileOptions, compileGraph, hasStaticShapes, SPARSE_KERNELS, type SparseKernels } from './compile.js';
import { decodeKilnFile } from './kiln-file.js';
import { edgeFeed, edgeOutputs, edgeTypes, type EdgeTypes } from './edge-types.js';
import { graphFromKilnFile, moduleFromKilnFile } from './model-io.js';
import { Plan, type PlanInfo } from './plan.js';
import { needsUnitBatch, withUnitBatch } from './unit-batch.js';
import type { OnnxSourceInfo } from './bound-session.js';
import { constantOutputs, ConstantOutputs, withoutConstantOutputs, type SessionDelegate } from './constant-outputs.js';
import { type BatchingOptions, checkBatching, MicroBatcher } from './micro-batcher.js';

export type { GraphOptimizationLevel } from '../graph/passes/index.js';
export type { SparseKernels } from './compile.js';
export type { BatchingOptions, BatchReport } from './micro-batcher.js';

/** What a session can be created from. */
export type SessionSource = Module | Graph | string | Uint8Array;

/**
 * Options of {@link InferenceSession.create}.
 *
 * An ONNX model that feeds a plan parameter as a graph input (Reshape's shape, Slice's starts,
 * Resize's scales, Clip's bounds, a Reduce's axes, a Conv weight, a QuantizeLinear scale...: see
 * src/onnx/parameter-inputs.ts) is accepted: `inputNames` lists every input, and each run binds the
 * fed parameter values as constants. Each distinct set of parameter values costs one import and one
 * plan build, with these same options, on the first run that feeds it (cached: the 8 most recently
 * used plans are kept). Feeding weights as inputs therefore works but rebuilds whenever they change.
 */
export interface SessionOptions {
  /** Threads each run may use (0 or absent: the whole kernel pool; see `setNumThreads`). */
  intraOpNumThreads?: number;
  /**
   * Whether the threads that ran a run poll for the next one (default true), like onnxruntime's
   * `session.intra_op.allow_spinning`. After a run, the kernel pool's helpers and the runner
   * thread poll for about a millisecond before they sleep, so runs one after another skip the
   * kernel's 5-20 us wake-up. false sends them to sleep as soon as a run ends: for a server whose
   * event loop shares the cores with the runs, where that polling takes the event loop's CPU
   * (`kiln serve` sets it; see docs/serving.md). Within a run the helpers still poll between steps.
   */
  allowSpinning?: boolean;
  /**
   * Graph passes before compiling (default 'all'): 'disabled' | 'basic' | 'extended' | 'all'. 'all'
   * also lets 3x3 stride-1 convolutions run as Winograd F(2x2, 3x3) or F(4x4, 3x3) on AVX-512
   * (results within ~1e-6 relative of the direct sum, not bit-identical) and runs the erf form of
   * GELU that PyTorch exports (Div, Erf, Add, Mul, Mul) as one Gelu step (a few ulps off);
   * 'extended' keeps every bit-identical fusion but not those.
   */
  graphOptimizationLevel?: GraphOptimizationLevel;
  /**
   * Convolutions and Gemms whose weights are at least half zeros (pruned models, wherever they
   * were pruned) may run on the sparse kernels (default 'auto'): 'auto' times sparse and dense per
   * layer on this CPU when the plan is built (a few ms per such layer; the answer is remembered for
   * the process, keyed by the layer's shape, weights and ISA, so further sessions and re-plans of
   * the same model do not time again) and keeps the faster; 'always' takes sparse whenever the
   * layer is sparse enough; 'never' stays dense. info().steps says which each layer runs
   * ("sparse unstructured 90%" or "dense, 90% zeros"). fp32 results match the dense run within
   * rounding (the summation order differs); int8 results are the same bits.
   */
  sparseKernels?: SparseKernels;
  /** One image's shape, e.g. [1, 28, 28]: required for a Module, optional for a .kiln file that stores it. */
  inputShape?: readonly number[];
  /**
   * Time every step of every run (default false, or true when the environment has KILN_PROFILE=1),
   * like onnxruntime's `enableProfiling`; `profile()` then says where the time went. Off, a run
   * reads no clock; on, it reads two per step.
   */
  enableProfiling?: boolean;
  /**
   * Micro-batching for serving (off when absent): concurrent `run()` calls are merged into one
   * native run and split back, like TF Serving's batching or Triton's dynamic batcher. A request
   * of at most `maxBatchSize` images joins a queue of requests with the same per-image shapes;
   * the queue is due when it holds `maxBatchSize` images or `maxDelayMs` after its first request
   * arrived (0: at the end of that turn of the event loop), and runs as one batch once fewer than
   * `maxBatchesInFlight` (default 2) merged runs are in flight, so the requests that arrive while
   * they run form the next batch. Each caller gets exactly its own rows (the same values an unbatched run
   * gives: bit-identical for int8 plans; see the README for fp32) and its own error: feeds are
   * validated before a request joins, its input is copied when it joins (the caller may reuse or
   * transfer its buffers at once), and if the merged run fails each member runs again alone.
   * `onBatch` is told each batch's size, requests, queue depth, wait and run time;
   * {@link InferenceSession.queuedRuns} is the number of requests waiting.
   *
   * Runs alone, unmerged: requests of more than `maxBatchSize` images, `runSync`, and models whose
   * rows are not independent of one another: inputs that share no batch dimension, a graph that
   * needs a plan per batch size (a Softmax over the batch...), a fixed batch size in the model.
   * A model with constant outputs merges its requests for the outputs it computes (each caller
   * gets its own copy of the constants); one with parameter inputs merges requests that feed the
   * same parameter values (each set of values has its own plan and its own queue).
   * @throws (from create) TypeError/RangeError ERR_KILN_INVALID_ARG naming e.g.
   *   `options.batching.maxBatchSize` (an integer in [1, 65536]), `options.batching.maxDelayMs`
   *   (a number in [0, 60000]) or `options.batching.maxBatchesInFlight` (an integer in [1, 8]).
   */
  batching?: BatchingOptions;
}

/** One plan step in a profile (see `InferenceSession.profile`). */
export interface ProfileStep {
  /** Position in `info().steps`. */
  index: number;
  /** Plan op ('Conv', 'QLinearConv', 'Gemm', ...) and the graph node it comes from. */
  op: string;
  name: string;
  /** The `info().steps` line: shapes, kernel chosen (e.g. "sparse unstructured 90%"). */
  kernel: string;
  /** Total time over the profiled runs, and its share of all steps' time. */
  ms: number;
  share: number;
  /** Multiply-accumulates per image, and the rate they ran at (0 when the step does none). */
  macsPerImage: number;
  gflops: number;
  /** Whether the multiply-accumulates run on int8 kernels (QLinearConv, QLinearGemm, QLinearMatMul). */
  int8: boolean;
  /**
   * gflops over the peak of the step's kind when profile() was given it: `int8PeakGops` for int8
   * steps, `peakGflops` for the others. Winograd convolutions count the direct convolution's
   * multiply-accumulates, so they can pass 1.
   */
  fractionOfPeak?: number;
}

/** Options of {@link InferenceSession.profile}. */
export interface ProfileOptions {
  /** Start counting afresh after this call. */
  reset?: boolean;
  /** The fp32 peak the float steps are compared with, GFLOP/s (e.g. the measured single-core FMA peak times the threads). */
  peakGflops?: number;
  /** The int8 peak the int8 steps are compared with, GOP/s (a multiply-add counts 2). */
  int8PeakGops?: number;
}

export interface SessionProfile {
  /** Runs and images timed since profiling began or the last reset. */
  runs: number;
  images: number;
  /** Sum of the steps' times. */
  totalMs: number;
  /** Every step, slowest first. */
  steps: ProfileStep[];
}

/**
 * Output tensors by output name, of the model's declared types (float32 for every model Kiln
 * builds itself; a float16/float64 model's outputs are converted from the float32 the plan
 * computes). `T` narrows the element type where the caller knows it (see `run`).
 */
export type SessionOutputs<T extends DType = DType> = Record<string, Tensor<T>>;
/**
 * Input tensors by input name, batch first, of the model's declared types (float32 for every model
 * Kiln builds itself; see {@link InferenceSession.inputTypes}; parameter inputs: see `run`). Non-float32 feeds are converted to
 * float32 on the JavaScript thread, O(elements), into a fresh array.
 */
export type SessionFeeds = Record<string, Tensor<DType>>;
/** Outputs of a model whose outputs are all float32. */
export type Float32Outputs = Record<string, Tensor<'float32'>>;

export interface SessionInfo extends PlanInfo {
  /** Multiply-accumulates per image. */
  macsPerImage: number;
}

/**
 * Validated feeds: one array per graph input, in order, their shapes (per image; full shapes
 * when the inputs share no batch), and the common batch (1 then).
 */
interface Feed {
  arrays: Float32Array[];
  shapes: number[][];
  batch: number;
}

interface Compiled {
  graph: CompiledGraph;
  plan: Plan;
  /** Its steps are being timed (InferenceSession.profile). */
  profiling?: boolean;
  /** A unit-batch plan for one batch size: the feeds' batch is part of each image (unit-batch.ts). */
  batchInImage?: boolean;
}

/** The keys of {@link SessionOptions}; anything else is refused (a typo would else be ignored). */
const SESSION_OPTION_KEYS = ['intraOpNumThreads', 'allowSpinning', 'graphOptimizationLevel', 'sparseKernels', 'inputShape', 'enableProfiling', 'batching'] as const;

/** SessionOptions.intraOpNumThreads and allowSpinning, as every plan of a session is compiled with them. */
interface Threading {
  maxThreads: number;
  allowSpinning: boolean;
}

/** `.kiln` files start with these bytes. */
const KILN_MAGIC = [0x4b, 0x49, 0x4c, 0x4e];

export class InferenceSession implements Disposable {
  /** Graph input names, in feed order. */
  readonly inputNames: readonly string[];
  /** Graph output names. */
  readonly outputNames: readonly string[];
  /** Input shapes with the batch first ('N' when dynamic), as in the graph. */
  readonly inputShapes: readonly (readonly Dim[])[];
  /** Output shapes with the batch first. */
  readonly outputShapes: readonly (readonly Dim[])[];
  /**
   * Declared element type of each input (feeds must have it), in inputNames order. The plan
   * computes float32: float16/float64 and the integer/bool inputs a Cast converts are converted on
   * entry, so a float64 model computes at float32 precision (runtime/edge-types.ts).
   */
  readonly inputTypes: readonly DType[];
  /** Declared element type of each output (the Tensors run() returns), in outputNames order. */
  readonly outputTypes: readonly DType[];
  /** How feeds and outputs cross between the declared types and the float32 plan. */
  private readonly edges: Omit<EdgeTypes, 'graph'>;
  /** The inputs the plan reads, in its order (inputNames less the inputs nothing reads). */
  private readonly planInputs: readonly string[];
  private readonly planInputShapes: readonly (readonly Dim[])[];

  private readonly graph: Graph | undefined;  // kept only when input shapes are symbolic
  /**
   * The inputs share no batch dimension (unit-batch.ts): every run compiles (once per input-shape
   * signature) the graph with a unit batch in front of every value, and feeds are whole shapes.
   */
  private readonly unitBatch: boolean;
  private readonly threading: Threading;
  private readonly level: GraphOptimizationLevel;
  private readonly sparse: SparseKernels;
  private readonly compiled = new Map<string, Promise<Compiled>>();
  private staticPlan: Compiled | undefined;
  // Plans compiled for symbolic input sizes, by size key, once their build has finished.
  private readonly syncPlans = new Map<string, Compiled>();
  private inFlight = 0;
  /** Per-step timing asked for (enableProfiling / KILN_PROFILE=1), and the plan of the latest run. */
  private profiling = false;
  private lastCompiled: Compiled | undefined;
  private released = false;
  /**
   * Set once the batch-major plan refused this graph for symbolic sizes and a unit-batch plan ran
   * it instead: from then on plans are built per batch size and input sizes.
   */
  private batchInImage = false;
  /**
   * Set for a session that wraps others (bound-session.ts): a model with parameter inputs (one
   * inner session per parameter value) or with constant outputs. Every verb goes to it.
   */
  private delegate: SessionDelegate | undefined;
  /** Merges concurrent runs (SessionOptions.batching). */
  private batcher: MicroBatcher<SessionOutputs> | undefined;

  /** `unit`: the inputs share no batch (unit-batch.ts); `first` is the plan of fully static inputs, built already. */
  private constructor(graph: Graph, threading: Threading, level: GraphOptimizationLevel, sparse: SparseKernels, staticPlan: Compiled | undefined, unit: { first?: { shapes: number[][]; compiled: Compiled } } | undefined, edges: EdgeTypes) {
    const unitBatch = unit !== undefined;
    this.unitBatch = unitBatch;
    this.threading = threading;
    this.level = level;
    this.sparse = sparse;
    this.staticPlan = staticPlan;
    this.graph = staticPlan ? undefined : graph;
    const inputs = graph.inputs.filter((v) => !graph.initializers.has(v.name));
    // Not edges.graph: its initializers are a whole copy of the weights, which the plans hold packed.
    this.edges = { inputs: edges.inputs, outputs: edges.outputs };
    this.planInputs = Object.freeze(inputs.map((v) => v.name));
    this.planInputShapes = Object.freeze(inputs.map((v) => Object.freeze(v.shape.slice())));
    this.inputNames = Object.freeze(edges.inputs.map((v) => v.name));
    this.inputTypes = Object.freeze(edges.inputs.map((v) => v.dtype));
    this.outputTypes = Object.freeze(edges.outputs.map((v) => v.dtype));
    this.outputNames = Object.freeze(graph.outputs.map((v) => v.name));
    const batch: Dim = staticPlan?.graph.fixedBatch ?? (typeof inputs[0]?.shape[0] === 'number' ? inputs[0].shape[0] : 'N');
    this.inputShapes = Object.freeze(edges.inputs.map((v) => Object.freeze(v.shape.slice())));
    this.outputShapes = Object.freeze(
      graph.outputs.map((v, i) => Object.freeze(staticPlan && !unitBatch ? [batch, ...staticPlan.graph.outputs[i].shape] : v.shape.slice())),
    );
    if (staticPlan) this.compiled.set(shapeKey(staticPlan.graph.inputs.map((i) => i.shape)), Promise.resolve(staticPlan));
    if (unit?.first) {
      const key = shapeKey(unit.first.shapes);
      this.syncPlans.set(key, unit.first.compiled);
      this.compiled.set(key, Promise.resolve(unit.first.compiled));
    }
  }

  /**
   * Builds a session from a Module (with `options.inputShape`), a Graph, a `.kiln` or `.onnx` file
   * path, or the bytes of either file.
   * @throws TypeError/RangeError (ERR_KILN_INVALID_ARG) for bad arguments; KilnError
   *   ERR_KILN_UNSUPPORTED_OP listing every node the runtime cannot run; ERR_KILN_CORRUPT_MODEL
   *   for an unreadable file.
   */
  static async create(source: SessionSource, options?: SessionOptions): Promise<InferenceSession> {
    const opts = checkOptions<SessionOptions>('options', options);
    onlyKeys('options', opts, SESSION_OPTION_KEYS);
    const threading: Threading = {
      maxThreads: opts.intraOpNumThreads === undefined ? 0 : integer('options.intraOpNumThreads', opts.intraOpNumThreads, 0, 1024),
      allowSpinning: opts.allowSpinning === undefined ? true : boolean('options.allowSpinning', opts.allowSpinning),
    };
    const level = opts.graphOptimizationLevel === undefined ? 'all' : oneOf('options.graphOptimizationLevel', opts.graphOptimizationLevel, GRAPH_OPTIMIZATION_LEVELS);
    const sparse = opts.sparseKernels === undefined ? 'auto' : oneOf('options.sparseKernels', opts.sparseKernels, SPARSE_KERNELS);
    const inputShape = opts.inputShape === undefined ? undefined : checkDims('options.inputShape', opts.inputShape);
    const profiling = opts.enableProfiling === undefined ? process.env.KILN_PROFILE === '1' : boolean('options.enableProfiling', opts.enableProfiling);
    const batching = opts.batching === undefined ? undefined : checkBatching(opts.batching);
    const onnx = await onnxInfoOf(source);
    let session: InferenceSession;
    if (onnx !== undefined && onnx.info.parameters.length > 0) {
      session = await InferenceSession.bound(onnx.info, onnx.path, threading, level, sparse, profiling, batching);
    } else {
      const graph = onnx === undefined ? await graphFrom(source, inputShape) : await onnxGraph(onnx.info.bytes, onnx.path);
      const declaredTypes = new Map<string, DType>((onnx?.info.outputs ?? graph.outputs).map((o) => [o.name, o.dtype]));
      session = await InferenceSession.fromGraph(graph, threading, level, sparse, declaredTypes, profiling, batching);
    }
    return session;
  }

  /** The session's side of micro-batching (micro-batcher.ts). */
  private microBatcher(options: BatchingOptions): MicroBatcher<SessionOutputs> {
    return new MicroBatcher<SessionOutputs>(options, {
      mergeable: (feed) => {
        if (this.batchInImage) return false;
        const ready = this.compiledNow(feed);
        if (ready) return ready.batchInImage !== true;
        // A symbolic-size model's first run of these sizes: its plan decides (see compiledFor).
        this.inFlight++;
        return Promise.resolve(this.compiledFor(feed)).then(
          (c) => {
            this.inFlight--;
            return c.batchInImage !== true;
          },
          (err: unknown) => {
            this.inFlight--;
            throw err;
          },
        );
      },
      runPlan: (feed, offThread) => {
        this.checkLive();
        const ready = this.compiledNow(feed);
        return ready ? this.runCompiled(ready, feed, true, offThread) : this.compileAndRun(feed, true, offThread);
      },
      runAlone: (feed) => this.runFeed(feed),
      finish: (outputs) => this.typedOutputs(outputs),
    });
  }

  /**
   * Where the time of the profiled runs went, step by step (see `SessionOptions.enableProfiling`),
   * for the plan of the latest run: each step's op, node name, the kernel it runs (the `info().steps`
   * line), its total time, share and GFLOP/s (2 x its multiply-accumulates per image x images /
   * time; int8 multiply-adds count 2 as well), and its fraction of the peak of its kind when given:
   * `int8PeakGops` for int8 steps, `peakGflops` for the others (the measured single-core peaks times
   * the threads, as `kiln bench --profile` passes them). A model with constant outputs profiles
   * the plan that computes the others; a model with parameter inputs, the plan of the latest run's
   * parameter values (each set of values has its own plan, timed on its own).
   * @throws KilnError ERR_KILN_INVALID_STATE when the session was not created with profiling on,
   *   has not run yet, or has no plan step at all (every output a constant)
   */
  profile(options: ProfileOptions = {}): SessionProfile {
    this.checkLive();
    const opts = checkOptions<ProfileOptions>('options', options);
    onlyKeys('options', opts, ['reset', 'peakGflops', 'int8PeakGops']);
    const reset = opts.reset === undefined ? false : boolean('options.reset', opts.reset);
    const peaks = {
      f32: opts.peakGflops === undefined ? undefined : number('options.peakGflops', opts.peakGflops, 0, Infinity, true),
      int8: opts.int8PeakGops === undefined ? undefined : number('options.int8PeakGops', opts.int8PeakGops, 0, Infinity, true),
    };
    if (!this.profiling) throw new KilnError(ErrorCode.INVALID_STATE, 'Expected a session created with enableProfiling: true (or KILN_PROFILE=1) but this one does not time its steps');
    if (this.delegate) return this.delegate.profile(opts);
    const compiled = this.lastCompiled;
    if (!compiled) throw new KilnError(ErrorCode.INVALID_STATE, 'The session has not run yet: nothing to profile');
    return profileOf(compiled, reset, peaks);
  }

  /**
   * An ONNX model with parameter inputs (parameter-inputs.ts): each distinct set of parameter
   * values is imported with them bound as constants, into an inner session cached by value.
   */
  private static async bound(info: OnnxSourceInfo, path: string | undefined, threading: Threading, level: GraphOptimizationLevel, sparse: SparseKernels, profiling: boolean, batching: BatchingOptions | undefined): Promise<InferenceSession> {
    const { BoundSession, boundSurface } = await import('./bound-session.js');
    if (info.unsupported !== undefined) throw new KilnError(ErrorCode.UNSUPPORTED_OP, info.unsupported);
    const declaredTypes = new Map(info.outputs.map((o) => [o.name, o.dtype]));
    const surface = boundSurface(info, 'bound');
    const session = new InferenceSession(surface, threading, level, sparse, undefined, undefined, edgeTypes(surface));
    session.profiling = profiling;
    session.delegate = new BoundSession(info, async (bindInputs) => {
      const graph = await onnxGraph(info.bytes, path, bindInputs);
      return InferenceSession.fromGraph(graph, threading, level, sparse, declaredTypes, profiling, batching);
    });
    return session;
  }

  /**
   * A session over an imported graph (typed edges converted, then optimised); its constant outputs
   * (if any) are returned as `declaredTypes` say. `profiling` and `batching` (checked options) go
   * to the session that runs the plan: with constant outputs, the inner one computing the others.
   */
  private static async fromGraph(source: Graph, threading: Threading, level: GraphOptimizationLevel, sparse: SparseKernels, declaredTypes: ReadonlyMap<string, DType>, profiling: boolean, batching: BatchingOptions | undefined): Promise<InferenceSession> {
    const session = await InferenceSession.planned(source, threading, level, sparse, declaredTypes, profiling, batching);
    session.profiling = profiling;
    if (batching !== undefined && session.delegate === undefined) session.batcher = session.microBatcher(batching);
    return session;
  }

  /** fromGraph's session before its profiling and batching are set. */
  private static async planned(source: Graph, threading: Threading, level: GraphOptimizationLevel, sparse: SparseKernels, declaredTypes: ReadonlyMap<string, DType>, profiling: boolean, batching: BatchingOptions | undefined): Promise<InferenceSession> {
    const constants = constantOutputs(source);
    if (constants !== undefined) {
      const computed = withoutConstantOutputs(source, constants);
      const inner = computed.outputs.length > 0 ? await InferenceSession.fromGraph(computed, threading, level, sparse, declaredTypes, profiling, batching) : undefined;
      const inputNames = source.inputs.filter((v) => !source.initializers.has(v.name)).map((v) => v.name);
      const surface: Graph = { ...source, nodes: [], initializers: new Map(), outputs: source.outputs.map((o) => (constants.has(o.name) ? { ...o, shape: constants.get(o.name)!.dims.slice() } : o)) };
      const session = new InferenceSession(surface, threading, level, sparse, undefined, undefined, edgeTypes(surface));
      session.delegate = new ConstantOutputs(session.outputNames, inputNames, constants, declaredTypes, inner);
      return session;
    }
    const edges = edgeTypes(source);
    const graph = optimizeGraph(edges.graph, level);
    const compileOptions: CompileOptions = { ...threading, sparseKernels: sparse, ...levelOptions(level) };
    const shapes = fullyStaticInputs(graph);
    if (needsUnitBatch(graph)) {
      // Fully static inputs are planned now, so what the plan lacks is reported here, as for batch graphs.
      const first = shapes === undefined ? undefined : { shapes, compiled: await unitPlan(graph, shapes, compileOptions) };
      return new InferenceSession(graph, threading, level, sparse, undefined, { first }, edges);
    }
    let staticPlan: Compiled | undefined;
    if (hasStaticShapes(graph)) {
      let compiled: CompiledGraph;
      try {
        compiled = compileGraph(graph, compileOptions);
      } catch (err) {
        // A fully static graph the batch-major plan refuses (a Softmax or Concat over the leading
        // axis, a Gemm with transA) may still run as one unit-batch image.
        if (!(err instanceof KilnError) || err.code !== ErrorCode.UNSUPPORTED_OP) throw err;
        if (shapes === undefined) {
          // A symbolic batch: each run plans the batch inside the image, once per batch size.
          // Checked here at batch 1, so what no plan can run is still reported at create.
          const one = batchOneShapes(graph);
          try {
            compileGraph(withUnitBatch(graph, one), unitCompileOptions(graph, one, compileOptions));
          } catch {
            throw err;
          }
          const session = new InferenceSession(graph, threading, level, sparse, undefined, undefined, edges);
          session.batchInImage = true;
          return session;
        }
        let unitGraph: CompiledGraph;
        try {
          unitGraph = compileGraph(withUnitBatch(graph, shapes), unitCompileOptions(graph, shapes, compileOptions));
        } catch {
          throw err;
        }
        const first = { shapes, compiled: { graph: unitGraph, plan: await planOf(unitGraph) } };
        return new InferenceSession(graph, threading, level, sparse, undefined, { first }, edges);
      }
      staticPlan = { graph: compiled, plan: await planOf(compiled) };
    }
    return new InferenceSession(graph, threading, level, sparse, staticPlan, undefined, edges);
  }

  /**
   * Runs the model; resolves with one tensor per output (batch first), of the declared output types
   * ({@link outputTypes}). `T` is the output dtype the caller expects: float32 by default, as every
   * model Kiln builds and every ONNX model with float32 outputs has; pass `DType` (or the type) for
   * a model with other output types.
   *
   * Data inputs take tensors of their declared types ({@link inputTypes}). A parameter input (see
   * {@link SessionOptions}) takes a tensor of the dtype the model declares for it (int64 as a
   * BigInt64Array, double as a Float64Array...) or the storage type Kiln holds it in (int32 for
   * integers, float32 for floats), with the declared dims; integers must fit int32. A run with
   * parameter values not seen recently first imports and plans the model with them (concurrent runs
   * with the same values share that build). An output the model computes from constants alone
   * (Shape of a static input, a Constant, Size) comes back as a tensor of its declared ONNX dtype
   * (int64 as a BigInt64Array, bool as 'bool'), a fresh copy per run.
   * @throws TypeError/RangeError (ERR_KILN_INVALID_ARG, ERR_KILN_SHAPE_MISMATCH) naming `feeds['name']`
   *   for a feed of the wrong dtype or dims; a parameter value the model cannot run with rejects
   *   with the importer's or compiler's error (ERR_KILN_UNSUPPORTED_OP, ERR_KILN_SHAPE_MISMATCH...).
   */
  run<T extends DType = 'float32'>(feeds: SessionFeeds): Promise<SessionOutputs<T>> {
    if (this.delegate) return this.delegate.run(feeds) as Promise<SessionOutputs<T>>;
    let feed: Feed;
    try {
      this.checkLive();
      feed = this.readFeeds(this.planFeeds(feeds));
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.batcher !== undefined && this.mayMerge(feed)) return this.batcher.submit(shapeKey(feed.shapes), feed) as Promise<SessionOutputs<T>>;
    return this.runFeed(feed) as Promise<SessionOutputs<T>>;
  }

  /** An unbatched run of validated feeds. */
  private runFeed(feed: Feed): Promise<SessionOutputs> {
    // A compiled plan runs without an await before it: a run light enough to stay on this thread
    // costs a few microseconds of promise machinery at most (batch 1 SeedCNN: ~30 us in all).
    const ready = this.compiledNow(feed);
    return ready ? this.runCompiled(ready, feed) : this.compileAndRun(feed);
  }

  /**
   * Whether a request may wait to be merged: its rows must be independent of other requests'
   * (a batch-major plan whose batch is free; see SessionOptions.batching) and it must fit a batch.
   */
  private mayMerge(feed: Feed): boolean {
    return !this.unitBatch && !this.batchInImage && this.staticPlan?.graph.fixedBatch === undefined && this.batcher!.accepts(feed.batch);
  }

  /** The plan already built for these input sizes, if any. */
  private compiledNow(feed: Feed): Compiled | undefined {
    return this.staticPlan ?? this.syncPlans.get(this.batchInImage ? imageKey(feed) : shapeKey(feed.shapes));
  }

  private runCompiled(compiled: Compiled, feed: Feed): Promise<SessionOutputs>;
  private runCompiled(compiled: Compiled, feed: Feed, raw: true, offThread?: boolean): Promise<Float32Outputs>;
  /**
   * `raw`: the plan's float32 outputs, before conversion to the declared output types. `offThread`:
   * on a runner thread whatever the run's estimated cost (a micro-batch, see MicroBatcher.runNext).
   */
  private runCompiled(compiled: Compiled, feed: Feed, raw = false, offThread = false): Promise<SessionOutputs> {
    let outputs: ReturnType<typeof allocate>;
    let pending: Promise<void> | undefined;
    try {
      const wholeImage = this.unitBatch || compiled.batchInImage === true;
      const batch = wholeImage ? 1 : feed.batch;
      outputs = allocate(compiled.graph, batch, wholeImage);
      const heavy = offThread || shouldRunAsync(compiled.graph.flopsPerImage * batch);
      this.track(compiled);
      pending = compiled.plan.run(feed.arrays, outputs.arrays, batch, heavy);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!pending) return Promise.resolve(raw ? outputs.tensors : this.typedOutputs(outputs.tensors));
    this.inFlight++;
    return pending.then(
      () => {
        this.inFlight--;
        return raw ? outputs.tensors : this.typedOutputs(outputs.tensors);
      },
      (err: unknown) => {
        this.inFlight--;
        throw err;
      },
    );
  }

  private compileAndRun(feed: Feed): Promise<SessionOutputs>;
  private compileAndRun(feed: Feed, raw: true, offThread?: boolean): Promise<Float32Outputs>;
  private async compileAndRun(feed: Feed, raw = false, offThread = false): Promise<SessionOutputs> {
    this.inFlight++;
    let compiled: Compiled;
    try {
      compiled = await this.compiledFor(feed);
    } finally {
      this.inFlight--;
    }
    this.checkLive();
    return raw ? this.runCompiled(compiled, feed, true, offThread) : this.runCompiled(compiled, feed);
  }

  /**
   * Runs inline on the calling thread (blocks the event loop for the whole run: meant for small
   * batches). A model with symbolic input sizes must have been run once with these sizes first.
   * With `batching`, runSync runs at once and alone: it neither waits for nor joins the queue.
   */
  runSync<T extends DType = 'float32'>(feeds: SessionFeeds): SessionOutputs<T> {
    if (this.delegate) return this.delegate.runSync(feeds) as SessionOutputs<T>;
    this.checkLive();
    const feed = this.readFeeds(this.planFeeds(feeds));
    const compiled = this.compiledNow(feed);
    if (!compiled) {
      throw new KilnError(ErrorCode.INVALID_STATE, `Expected input sizes this session has compiled for runSync but received ${shapeKey(feed.shapes)}: call run() once with them first`);
    }
    const wholeImage = this.unitBatch || compiled.batchInImage === true;
    const batch = wholeImage ? 1 : feed.batch;
    const outputs = allocate(compiled.graph, batch, wholeImage);
    this.track(compiled);
    compiled.plan.run(feed.arrays, outputs.arrays, batch, false);
    return this.typedOutputs(outputs.tensors) as SessionOutputs<T>;
  }

  /** Remembers the plan a run uses (what profile() reports) and turns its timing on if asked. */
  private track(compiled: Compiled): void {
    this.lastCompiled = compiled;
    if (this.profiling && compiled.profiling !== true) {
      compiled.plan.setProfiling(true);
      compiled.profiling = true;
    }
  }

  /**
   * Steps, arena and weight sizes of the compiled plan (the first one, for symbolic input sizes;
   * the most recently run one for a model with parameter inputs). `arenaBytesHeld` sums every plan
   * the session has compiled.
   */
  info(): SessionInfo {
    if (this.delegate) return this.delegate.info();
    this.checkLive();
    const compiled = this.staticPlan ?? this.syncPlans.values().next().value;
    if (!compiled) throw new KilnError(ErrorCode.INVALID_STATE, 'The session has symbolic input sizes and has not run yet: nothing is compiled');
    const plans = new Set([this.staticPlan, ...this.syncPlans.values()].filter((c) => c !== undefined).map((c) => c.plan));
    const arenaBytesHeld = [...plans].reduce((sum, plan) => sum + plan.info().arenaBytesHeld, 0);
    return { ...compiled.plan.info(), arenaBytesHeld, macsPerImage: compiled.graph.macsPerImage };
  }

  /** Number of runs in flight (native runs and plan builds; a merged batch counts once). */
  get pendingRuns(): number {
    if (this.delegate) return this.delegate.pendingRuns;
    return this.inFlight;
  }

  /**
   * Requests waiting in the micro-batching queue to be merged (SessionOptions.batching), not yet
   * running; 0 without batching.
   */
  get queuedRuns(): number {
    if (this.delegate) return this.delegate.queuedRuns;
    return this.batcher?.queuedRuns ?? 0;
  }

  /**
   * Frees the native plan(s). Runs after this reject with ERR_KILN_DISPOSED.
   * @throws KilnError ERR_KILN_INVALID_STATE while runs are queued (batching) or in flight (await them first).
   */
  release(): void {
    if (this.delegate) {
      this.delegate.release();
      this.released = true;
      return;
    }
    if (this.released) return;
    if (this.inFlight > 0 || this.batcher?.busy === true) {
      const queued = this.queuedRuns > 0 ? `${this.queuedRuns} run(s) are queued for batching and ` : '';
      throw new KilnError(ErrorCode.INVALID_STATE, `Cannot release the session while ${queued}${this.inFlight} run(s) are in flight: await them first`);
    }
    this.released = true;
    this.staticPlan?.plan.dispose();
    for (const c of this.syncPlans.values()) c.plan.dispose();
    this.syncPlans.clear();
    this.compiled.clear();
    this.staticPlan = undefined;
  }

  [Symbol.dispose](): void {
    this.release();
  }

  private checkLive(): void {
    if (this.released) throw new KilnError(ErrorCode.DISPOSED, 'The session was released');
  }

  private compiledFor(feed: Feed): Compiled | Promise<Compiled> {
    if (this.staticPlan) return this.staticPlan;
    if (this.batchInImage) return this.imagePlan(feed);
    const shapes = feed.shapes;
    const key = shapeKey(shapes);
    let pending = this.compiled.get(key);
    if (!pending) {
      const graph = this.graph!;
      const inputShapes = Object.fromEntries(this.planInputs.map((name, i) => [name, shapes[i]]));
      const options: CompileOptions = { ...this.threading, sparseKernels: this.sparse, ...levelOptions(this.level) };
      pending = (async () => {
        let compiled: CompiledGraph;
        try {
          compiled = this.unitBatch
            ? compileGraph(withUnitBatch(graph, shapes), unitCompileOptions(graph, shapes, options))
            : compileGraph(graph, { inputShapes, ...options });
        } catch (err) {
          // A graph that moves its symbolic batch (a Softmax over it, a Gemm with transA) may still
          // run with the batch inside one unit-batch image, planned per batch size.
          if (this.unitBatch || !(err instanceof KilnError) || err.code !== ErrorCode.UNSUPPORTED_OP) throw err;
          let image: Compiled;
          try {
            image = await this.imagePlan(feed);
          } catch {
            throw err;
          }
          this.batchInImage = true;
          return image;
        }
        const plan = await planOf(compiled);
        if (this.released) {
          plan.dispose();
          throw new KilnError(ErrorCode.DISPOSED, 'The session was released');
        }
        const c = { graph: compiled, plan };
        this.syncPlans.set(key, c);
        return c;
      })();
      pending.catch(() => this.compiled.delete(key));
      this.compiled.set(key, pending);
    }
    return pending;
  }

  /** The unit-batch plan with this feed's batch inside the image (see `batchInImage`). */
  private imagePlan(feed: Feed): Promise<Compiled> {
    const key = imageKey(feed);
    let pending = this.compiled.get(key);
    if (!pending) {
      const graph = this.graph!;
      const shapes = feed.shapes.map((s) => [feed.batch, ...s]);
      pending = (async () => {
        const c = { ...(await unitPlan(graph, shapes, { ...this.threading, sparseKernels: this.sparse, ...levelOptions(this.level) })), batchInImage: true };
        if (this.released) {
          c.plan.dispose();
          throw new KilnError(ErrorCode.DISPOSED, 'The session was released');
        }
        this.syncPlans.set(key, c);
        return c;
      })();
      pending.catch(() => this.compiled.delete(key));
      this.compiled.set(key, pending);
    }
    return pending;
  }

  /**
   * The feeds as the plan reads them: each checked against its input's declared dtype, converted
   * to float32 (a fresh array) where that is another type, and inputs nothing reads left out.
   * Float32 feeds of float32 inputs pass as they are.
   */
  private planFeeds(feeds: SessionFeeds): Record<string, Tensor<'float32'>> {
    if (feeds === null || typeof feeds !== 'object' || Array.isArray(feeds) || feeds instanceof Tensor) {
      throw typeError('feeds', `an object mapping input names (${this.inputNames.map((n) => `'${n}'`).join(', ')}) to Tensors`, feeds);
    }
    for (const key of Object.keys(feeds)) {
      if (!this.inputNames.includes(key)) {
        throw rangeError('feeds', `only the inputs ${this.inputNames.map((n) => `'${n}'`).join(', ')}`, `an extra input '${key}'`);
      }
    }
    const out: Record<string, Tensor<'float32'>> = {};
    for (const input of this.edges.inputs) {
      const t = edgeFeed(input, (feeds as Record<string, unknown>)[input.name]);
      if (t !== undefined) out[input.name] = t;
    }
    return out;
  }

  /** Plan outputs as Tensors of the declared output types. */
  private typedOutputs(tensors: Float32Outputs): SessionOutputs {
    return edgeOutputs(this.edges, tensors);
  }

  /** Validates the feeds: names, dtype, rank, per-image sizes, one batch for all. */
  private readFeeds(feeds: Record<string, Tensor<'float32'>>): Feed {
    if (feeds === null || typeof feeds !== 'object' || Array.isArray(feeds) || feeds instanceof Tensor) {
      throw typeError('feeds', `an object mapping input names (${this.planInputs.map((n) => `'${n}'`).join(', ')}) to Tensors`, feeds);
    }
    for (const key of Object.keys(feeds)) {
      if (!this.planInputs.includes(key)) {
        throw rangeError('feeds', `only the inputs ${this.planInputs.map((n) => `'${n}'`).join(', ')}`, `an extra input '${key}'`);
      }
    }
    const arrays: Float32Array[] = [];
    const shapes: number[][] = [];
    let batch = 0;
    this.planInputs.forEach((name, i) => {
      const where = `feeds['${name}']`;
      const t = (feeds as Record<string, unknown>)[name] as Tensor | undefined;
      if (t === undefined) throw typeError(where, 'a Tensor', t);
      if (t === null || typeof t !== 'object' || !('data' in t) || !('dims' in t)) throw typeError(where, 'a Tensor', t);
      if (t.type !== 'float32' || !(t.data instanceof Float32Array)) {
        throw typeError(where, 'a float32 Tensor', typeof t.type === 'string' ? `a ${t.type} Tensor` : t);
      }
      const want = this.planInputShapes[i];
      const dimsOf = Array.from(t.dims ?? []);
      const text = `[${dimsOf.join(', ')}]`;
      if (dimsOf.length !== want.length) throw shapeError(where, `${want.length} dimensions [${want.join(', ')}]`, text);
      if (this.unitBatch) {
        // No batch: every dimension is the input's own, fixed where the graph fixes it.
        if (dimsOf.some((d, j) => !Number.isInteger(d) || d < 1 || (typeof want[j] === 'number' && want[j] !== d))) throw shapeError(where, `dims [${want.join(', ')}]`, text);
        let size = 1;
        for (const d of dimsOf) size *= d;
        if (t.data.length !== size) throw shapeError(where, `${size} elements for dims ${text}`, describe(t.data));
        arrays.push(t.data);
        shapes.push(dimsOf.slice());
        return;
      }
      const per = this.staticPlan ? this.staticPlan.graph.inputs[i].shape : undefined;
      dimsOf.forEach((d, j) => {
        // A 0 dimension (an empty set a Reduce reads) is left to compile, which refuses every other use.
        if (!Number.isInteger(d) || d < (j === 0 ? 1 : 0)) throw shapeError(where, `a batch of at least 1 and dimensions of at least 0 [${want.join(', ')}]`, text);
        if (j > 0 && (per ? per[j - 1] !== d : typeof want[j] === 'number' && want[j] !== d)) {
          throw shapeError(where, `dims [${want.join(', ')}]`, text);
        }
      });
      if (i === 0) batch = dimsOf[0];
      else if (dimsOf[0] !== batch) throw shapeError(where, `the batch size of the other inputs (${batch})`, text);
      if (typeof want[0] === 'number' && dimsOf[0] !== want[0]) throw shapeError(where, `the model's fixed batch size ${want[0]}`, text);
      let n = 1;
      for (const d of dimsOf) n *= d;
      if (t.data.length !== n) throw shapeError(where, `${n} elements for dims ${text}`, describe(t.data));
      arrays.push(t.data);
      shapes.push(dimsOf.slice(1));
    });
    return { arrays, shapes, batch: this.unitBatch ? 1 : batch };
  }
}

/**
 * What a graphOptimizationLevel asks of the compiler: Conv+pool fusion is an 'extended'
 * optimisation, like activation fusion; Winograd (not bit-identical) only comes with 'all'.
 */
function levelOptions(level: GraphOptimizationLevel): Pick<CompileOptions, 'fuseConvPool' | 'winograd'> {
  return { fuseConvPool: level === 'extended' || level === 'all', winograd: level === 'all' };
}

/** Every input's full shape when all its dimensions are numbers (the batch included), else undefined. */
function fullyStaticInputs(graph: Graph): number[][] | undefined {
  const inputs = graph.inputs.filter((v) => !graph.initializers.has(v.name));
  return inputs.every((v) => v.shape.every((d) => typeof d === 'number')) ? inputs.map((v) => v.shape as number[]) : undefined;
}

/**
 * The native plan of a compiled graph, its weights packed off the event loop. The plan keeps its
 * own packed copies, and the session reads only the steps' ops and names afterwards (profile()),
 * so the spec lets go of its weight arrays: they would otherwise stay alive as long as the session,
 * a second copy of the model (ResNet-50: 97 MB beside the plan's 129 MB of packed weights). Arrays
 * that the caller's Graph still holds stay alive with it.
 */
async function planOf(compiled: CompiledGraph): Promise<Plan> {
  const plan = await Plan.create(compiled.spec, true);
  for (const step of compiled.spec.steps) delete step.weights;
  return plan;
}

/** Input shapes with a symbolic leading dimension set to 1 (the others static). */
function batchOneShapes(graph: Graph): number[][] {
  return graph.inputs.filter((v) => !graph.initializers.has(v.name)).map((v) => v.shape.map((d) => (typeof d === 'number' ? d : 1)));
}

/** The unit-batch plan of a graph for these whole input shapes (built ahead of any run). */
async function unitPlan(graph: Graph, shapes: number[][], options: CompileOptions): Promise<Compiled> {
  const compiled = compileGraph(withUnitBatch(graph, shapes), unitCompileOptions(graph, shapes, options));
  return { graph: compiled, plan: await planOf(compiled) };
}

/** A unit-batch graph's inputs are whole shapes behind the plan's batch of 1. */
function unitCompileOptions(graph: Graph, shapes: readonly number[][], options: CompileOptions): CompileOptions {
  const inputs = graph.inputs.filter((v) => !graph.initializers.has(v.name));
  return { ...options, inputShapes: Object.fromEntries(inputs.map((v, i) => [v.name, shapes[i]!])) };
}

/** The key of a plan with the batch inside the image (distinct from any shapeKey: those hold no '|'). */
function imageKey(feed: Feed): string {
  return `${feed.batch}|${shapeKey(feed.shapes)}`;
}

function shapeKey(shapes: number[][]): string {
  return shapes.map((s) => s.join('x')).join(',');
}

/** Output buffers of a run; a unit-batch plan's outputs lose the unit batch the plan added. */
function allocate(compiled: CompiledGraph, batch: number, unitBatch = false): { arrays: Float32Array[]; tensors: Float32Outputs } {
  const arrays: Float32Array[] = [];
  const tensors: Float32Outputs = {};
  for (const o of compiled.outputs) {
    let size = batch;
    for (const d of o.shape) size *= d;
    const data = allocFloat32(size);
    arrays.push(data);
    tensors[o.name] = new Tensor('float32', data, unitBatch ? o.shape.slice() : [batch, ...o.shape]);
  }
  return { arrays, tensors };
}

function isGraph(value: unknown): value is Graph {
  return value !== null && typeof value === 'object' && Array.isArray((value as Graph).nodes) && (value as Graph).initializers instanceof Map;
}

function startsWithKilnMagic(bytes: Uint8Array): boolean {
  return bytes.length >= KILN_MAGIC.length && KILN_MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * The graph of any session source, as `InferenceSession.create` builds it before its passes. ONNX
 * goes through the importer (src/onnx), .kiln through model-io.
 * @internal
 */
export async function graphFrom(source: SessionSource, inputShape: number[] | undefined): Promise<Graph> {
  if (source instanceof Module) {
    inputShape ??= source.inputShape?.slice();
    if (!inputShape) throw typeError('options.inputShape', 'one image shape such as [1, 28, 28] when creating a session from a Module', undefined);
    return toGraph(source, inputShape);
  }
  if (isGraph(source)) return source;
  if (typeof source === 'string') {
    const bytes = await readModelFile(source, 'source');
    // A .kiln name without the magic is a corrupt .kiln file, not an ONNX model to try.
    if (startsWithKilnMagic(bytes) || source.toLowerCase().endsWith('.kiln')) return kilnGraph(bytes, inputShape, source);
    return onnxGraph(bytes, source);
  }
  if (source instanceof Uint8Array) {
    if (source.length === 0) throw emptyModel('source');
    return startsWithKilnMagic(source) ? kilnGraph(source, inputShape) : importOnnx(source);
  }
  throw typeError('source', 'a Module, a Graph, a .kiln/.onnx path or the bytes of such a file', source);
}

/** The ONNX importer's hook (loaded on demand: protobuf decoding is only needed for ONNX input). */
async function importOnnx(source: Uint8Array, externalDataDir?: string, bindInputs?: Record<string, BindableTensor>): Promise<Graph> {
  const { importModel } = await import('../onnx/import.js');
  return importModel(source, { ...(externalDataDir === undefined ? {} : { externalDataDir }), ...(bindInputs === undefined ? {} : { bindInputs }) });
}

/** An ONNX model's graph; `path` (the file it was read from) names the file in a corrupt-model error. */
async function onnxGraph(bytes: Uint8Array, path: string | undefined, bindInputs?: Record<string, BindableTensor>): Promise<Graph> {
  try {
    return await importOnnx(bytes, path === undefined ? undefined : dirname(path), bindInputs);
  } catch (err) {
    // Name the file: the importer only saw its bytes.
    if (path !== undefined && err instanceof KilnError && err.code === ErrorCode.CORRUPT_MODEL) throw new KilnError(err.code, `${err.message} (file '${path}')`, { cause: err });
    throw err;
  }
}

/**
 * The declarations of an ONNX source (a path or bytes that are not a .kiln file), read before it
 * is imported to find parameter inputs; undefined for other sources.
 */
async function onnxInfoOf(source: SessionSource): Promise<{ info: OnnxSourceInfo; path: string | undefined } | undefined> {
  let bytes: Uint8Array;
  let path: string | undefined;
  if (typeof source === 'string') {
    if (source.toLowerCase().endsWith('.kiln')) return undefined;
    bytes = await readModelFile(source, 'source');
    path = source;
  } else if (source instanceof Uint8Array && !isGraph(source)) {
    bytes = source;
  } else {
    return undefined;
  }
  if (bytes.length === 0 || startsWithKilnMagic(bytes)) return undefined;
  const { onnxSourceInfo } = await import('./bound-session.js');
  const info = onnxSourceInfo(bytes);
  return info === undefined ? undefined : { info, path };
}

function kilnGraph(bytes: Uint8Array, inputShape: number[] | undefined, path?: string): Graph {
  const file = decodeKilnFile(bytes, path);
  // A saved Graph (e.g. an int8 graph from quantize) is used as stored.
  if ((file.model as { kind?: unknown } | null)?.kind === 'graph') return graphFromKilnFile(file, path);
  const module = moduleFromKilnFile(file, path);
  const stored = (file.model as { inputShape?: unknown } | null)?.inputShape;
  const shape = inputShape ?? (Array.isArray(stored) ? checkDims('inputShape stored in the .kiln file', stored) : undefined);
  if (!shape) throw typeError('options.inputShape', 'one image shape (the .kiln file does not store it)', undefined);
  return toGraph(module, shape);
}

/** The profile of one compiled plan (steps slowest first). */
function profileOf(compiled: Compiled, reset: boolean, peaks: { f32?: number | undefined; int8?: number | undefined }): SessionProfile {
  const raw = compiled.plan.profile(reset);
  const labels = compiled.plan.info().steps;
  const totalNs = raw.stepNs.reduce((a, b) => a + b, 0);
  const steps = compiled.graph.spec.steps.map((step, index): ProfileStep => {
    const ns = raw.stepNs[index] ?? 0;
    const macsPerImage = compiled.graph.stepMacs[index] ?? 0;
    const gflops = ns > 0 ? (2 * macsPerImage * raw.images) / ns : 0;
    const int8 = compiled.graph.stepInt8[index] ?? false;
    const peak = int8 ? peaks.int8 : peaks.f32;
    return {
      index, op: step.op, name: step.name, kernel: labels[index] ?? '', ms: ns / 1e6, share: totalNs > 0 ? ns / totalNs : 0, macsPerImage, gflops, int8,
      ...(peak === undefined ? {} : { fractionOfPeak: gflops / peak }),
    };
  });
  steps.sort((a, b) => b.ms - a.ms || a.index - b.index);
  return { runs: raw.runs, images: raw.images, totalMs: totalNs / 1e6, steps };
}
