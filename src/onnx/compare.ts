/**
 * `compareWithOnnxRuntime`: runs a model on Kiln and on onnxruntime-node with the same inputs and
 * reports how far apart the outputs are. With `perNode`, every intermediate value becomes an
 * extra output in both runtimes and the first node (in topological order) whose output diverges
 * beyond the tolerance is named: the place to look when a model disagrees.
 *
 * onnxruntime runs the ORIGINAL file when given a path or bytes (so Kiln's importer is under test
 * too), and Kiln's own export when given a Graph or Module.
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

import type * as Ort from 'onnxruntime-node';

import { ErrorCode, KilnError } from '../errors.js';
import type { Dim, Graph, ValueInfo } from '../graph/ir.js';
import { toGraph } from '../graph/from-module.js';
import { inferShapes } from '../graph/shape-inference.js';
import { Module } from '../nn/module.js';
import { InferenceSession } from '../runtime/session.js';
import { Tensor } from '../tensor.js';
import { Rng } from '../util/rng.js';
import { dims as checkDims, integer, number, options as checkOptions, typeError } from '../validate.js';
import { exportModel } from './export.js';
import { readExternalData } from './external-data.js';
import { importModel } from './import.js';
import { loadOnnxRuntime } from './onnxruntime.js';
import { asFloat32, chunkRows, concatChunks, rowCounter, rowRanges, runKilnChunks, sliceFeeds } from './row-chunks.js';
import { castElements } from '../runtime/edge-types.js';
import type { DType } from '../tensor.js';
import { DataType, decodeModel, encodeModel } from './proto.js';
import { externalTensors } from './read-graph.js';

export interface CompareOptions {
  /** Compare every intermediate value too and report the first divergent node. */
  perNode?: boolean;
  /** Threads each runtime may use (both get the same). Default: each runtime's default. */
  intraOpNumThreads?: number;
  /** relL2 above which a node's output counts as divergent (perNode). Default 1e-4. */
  tolerance?: number;
  /** Seed of the random inputs. Default 0. */
  seed?: number;
  /** Input shape [C, H, W] when the model is a Module. */
  inputShape?: readonly number[];
  /**
   * Called as each runtime finishes a chunk of input rows (inputs with a symbolic batch axis run in
   * chunks of 256 rows): `done` of `total` rows through `runtime`.
   */
  onProgress?: (progress: CompareProgress) => void;
}

/** What {@link CompareOptions.onProgress} receives. */
export interface CompareProgress {
  runtime: 'onnxruntime' | 'kiln';
  done: number;
  total: number;
}

/** How one output (or intermediate value) of Kiln differs from onnxruntime's. */
export interface OutputComparison {
  name: string;
  /** max |k - o| */
  maxAbsDiff: number;
  /** max |k - o| / |o| over elements with o != 0 */
  maxRelDiff: number;
  /** ‖k − o‖₂ / ‖o‖₂ */
  relL2: number;
  /** Fraction of batch rows whose argmax (over everything but the batch axis) agrees. */
  top1Agreement: number;
}

export interface NodeComparison extends OutputComparison {
  /** The node that produced the value, and its operator. */
  node: string;
  op: string;
}

export interface ComparisonResult {
  outputs: OutputComparison[];
  /** perNode: the first node whose output's relL2 exceeds the tolerance (or is NaN on one side). */
  firstDivergentNode?: NodeComparison;
  /** perNode: every compared intermediate value, in topological order. */
  nodes?: NodeComparison[];
  /** Batch size the inputs had. */
  batch: number;
}

/** Compares two equally long arrays in float64. */
export function compareArrays(name: string, kiln: ArrayLike<number>, ref: ArrayLike<number>, rows: number): OutputComparison {
  if (kiln.length !== ref.length) {
    throw new KilnError(ErrorCode.SHAPE_MISMATCH, `Expected ${ref.length} values for '${name}' like onnxruntime but Kiln produced ${kiln.length}`);
  }
  let maxAbs = 0;
  let maxRel = 0;
  let diff2 = 0;
  let ref2 = 0;
  for (let i = 0; i < ref.length; i++) {
    const k = kiln[i]!;
    const o = ref[i]!;
    if (Number.isNaN(k) && Number.isNaN(o)) continue;
    const d = Math.abs(k - o);
    if (Number.isNaN(d) || d === Infinity) {
      maxAbs = Infinity;
      maxRel = Infinity;
      diff2 = Infinity;
      continue;
    }
    if (d > maxAbs) maxAbs = d;
    if (o !== 0 && d / Math.abs(o) > maxRel) maxRel = d / Math.abs(o);
    diff2 += d * d;
    ref2 += o * o;
  }
  const relL2 = diff2 === 0 ? 0 : ref2 === 0 ? Infinity : Math.sqrt(diff2 / ref2);
  let agree = 0;
  const r = Math.max(1, rows);
  const per = ref.length / r;
  for (let row = 0; row < r; row++) {
    let bestK = -1;
    let bestO = -1;
    for (let j = 0; j < per; j++) {
      const i = row * per + j;
      if (bestK < 0 || kiln[i]! > kiln[row * per + bestK]!) bestK = j;
      if (bestO < 0 || ref[i]! > ref[row * per + bestO]!) bestO = j;
    }
    if (bestK === bestO) agree++;
  }
  return { name, maxAbsDiff: maxAbs, maxRelDiff: maxRel, relL2, top1Agreement: per === 0 ? 1 : agree / r };
}

/** What onnxruntime runs, given the names of extra outputs to expose. */
type Reference = (extra: string[]) => Promise<Uint8Array | string>;

/** onnxruntime runs an ONNX file or bytes as given, plus the extra outputs asked for. */
function referenceFromModel(model: string | Uint8Array): Reference {
  return async (extra) => {
    if (extra.length === 0) return model;
    const bytes = typeof model === 'string' ? await readFile(model) : model;
    const proto = decodeModel(bytes);
    // The modified model goes to ORT as bytes: inline external data first.
    for (const { tensor, what } of externalTensors(proto)) {
      tensor.rawData = await readExternalData(tensor, what, typeof model === 'string' ? dirname(model) : undefined);
      tensor.dataLocation = 0;
      tensor.externalData = [];
    }
    const g = proto.graph!;
    const produced = new Set((g.node ?? []).flatMap((n) => n.output ?? []));
    g.output = g.output ?? [];
    const outputs = new Set(g.output.map((o) => o.name));
    // An intermediate value has its value_info type, else the model's float type (a float16 or
    // float64 model computes in that type throughout; ORT refuses an output declared otherwise).
    const declared = new Map((g.valueInfo ?? []).map((v) => [v.name ?? '', v.type?.tensorType?.elemType ?? 0]));
    const io = [...(g.input ?? []), ...g.output].map((v) => v.type?.tensorType?.elemType ?? 0);
    const floatType = io.find((t) => t === DataType.FLOAT16 || t === DataType.DOUBLE) ?? DataType.FLOAT;
    for (const name of extra) {
      if (produced.has(name) && !outputs.has(name)) g.output.push({ name, type: { tensorType: { elemType: declared.get(name) || floatType } } });
    }
    return encodeModel(proto);
  };
}

function graphOf(model: unknown, inputShape: readonly number[] | undefined): Graph {
  if (model instanceof Module) {
    if (inputShape === undefined) throw typeError('options.inputShape', 'an input shape [C, H, W] for a Module', undefined);
    return toGraph(model, checkDims('options.inputShape', inputShape));
  }
  if (typeof model === 'object' && model !== null && Array.isArray((model as Graph).nodes) && (model as Graph).initializers instanceof Map) return model as Graph;
  throw typeError('model', 'a path, ONNX bytes, a Graph or a Module', model);
}

/** The graph with extra outputs (intermediate values), shapes from inference. */
function withOutputs(graph: Graph, extra: string[]): Graph {
  if (extra.length === 0) return graph;
  const shapes = inferShapes(graph);
  const outputs: ValueInfo[] = graph.outputs.concat(extra.map((name) => ({ name, dtype: 'float32', shape: shapes.get(name) ?? [] })));
  return { ...graph, outputs };
}

/**
 * The feeds, of each input's declared type: given ones are checked; random ones are drawn as float32
 * in [0, 1) and cast to that type (ONNX Cast semantics: integer inputs get zeros).
 */
function makeInputs(graph: Graph, inputs: unknown, seed: number): { feeds: Record<string, Tensor<DType>>; batch: number } {
  if (inputs !== undefined && typeof inputs !== 'number') {
    if (inputs === null || typeof inputs !== 'object') throw typeError('inputs', 'a record of Tensors or a batch size', inputs);
    const feeds: Record<string, Tensor<DType>> = {};
    const given = inputs as Record<string, unknown>;
    for (const i of graph.inputs) {
      const t = given[i.name];
      if (!(t instanceof Tensor) || t.type !== i.dtype) throw typeError(`inputs['${i.name}']`, `a ${i.dtype} Tensor`, t);
      feeds[i.name] = t as Tensor<DType>;
    }
    for (const name of Object.keys(given)) {
      if (!graph.inputs.some((i) => i.name === name)) throw typeError(`inputs['${name}']`, `one of the model inputs (${graph.inputs.map((i) => `'${i.name}'`).join(', ')})`, name);
    }
    const first = Object.values(feeds)[0];
    return { feeds, batch: first?.dims[0] ?? 1 };
  }
  const batch = inputs === undefined ? 1 : integer('inputs', inputs, 1, 65536);
  const rng = new Rng(seed);
  const feeds: Record<string, Tensor<DType>> = {};
  for (const i of graph.inputs) {
    const dims = i.shape.map((d: Dim, axis) => {
      if (typeof d === 'number') return d;
      if (axis === 0) return batch;
      throw typeError('inputs', `explicit inputs: '${i.name}' has the dynamic dimension '${d}' beyond the batch`, inputs);
    });
    const n = dims.reduce((a, b) => a * b, 1);
    const values = Float32Array.from({ length: n }, () => rng.next());
    feeds[i.name] = new Tensor(i.dtype, (i.dtype === 'float32' ? values : castElements(values, 'float32', i.dtype)) as never, dims);
  }
  return { feeds, batch };
}

/** Each chunk of feeds through onnxruntime, `onChunk(rows)` after each; outputs concatenated. */
async function runOrt(
  model: Uint8Array | string,
  chunks: Record<string, Tensor<DType>>[],
  names: string[],
  threads: number | undefined,
  onChunk: (rows: number) => void,
): Promise<Record<string, Float32Array>> {
  const ort = await loadOnnxRuntime();
  const sessionOptions: Ort.InferenceSession.SessionOptions = { logSeverityLevel: 3, ...(threads === undefined ? {} : { intraOpNumThreads: threads }) };
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model, sessionOptions) : await ort.InferenceSession.create(model, sessionOptions);
  try {
    const results: Record<string, Float32Array>[] = [];
    for (const feeds of chunks) {
      const ortFeeds: Record<string, Ort.Tensor> = {};
      for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims.slice());
      const out = await session.run(ortFeeds, names.filter((n) => session.outputNames.includes(n)));
      const result: Record<string, Float32Array> = {};
      // Typed outputs (float16/float64 models) compare as float32 values: the precision Kiln computes at.
      for (const [k, v] of Object.entries(out)) result[k] = asFloat32(v.data as Tensor<DType>['data'], v.type as DType);
      results.push(result);
      onChunk(chunkRows(feeds));
    }
    return concatChunks(results);
  } finally {
    await session.release();
  }
}

/**
 * Runs `model` on Kiln and on onnxruntime-node with the same inputs and compares the outputs.
 *
 * @param model path of an .onnx file, its bytes, a Graph, or a Module (give options.inputShape)
 * @param inputs the feeds by input name, or a batch size for seeded random inputs in [0, 1)
 *   (default 1)
 */
export async function compareWithOnnxRuntime(
  model: string | Uint8Array | Graph | Module,
  inputs?: Record<string, Tensor> | number,
  options?: CompareOptions,
): Promise<ComparisonResult> {
  const opts = checkOptions<CompareOptions>('options', options);
  if (typeof model === 'string' || model instanceof Uint8Array) {
    return compareGraphWithModel(await importModel(model), model, inputs, opts);
  }
  const graph = graphOf(model, opts.inputShape);
  return run(graph, async (extra) => exportModel(withOutputs(graph, extra)), inputs, opts);
}

/**
 * Runs a Kiln graph and a reference ONNX model (path or bytes) on onnxruntime-node with the same
 * inputs and compares the outputs (matched by name; with perNode, intermediate values too). For
 * example a pruned or re-written Kiln graph against the original model.
 */
export async function compareGraphWithModel(
  graph: Graph,
  reference: string | Uint8Array,
  inputs?: Record<string, Tensor> | number,
  options?: CompareOptions,
): Promise<ComparisonResult> {
  if (typeof reference !== 'string' && !(reference instanceof Uint8Array)) throw typeError('reference', 'a path or ONNX bytes', reference);
  return run(graphOf(graph, undefined), referenceFromModel(reference), inputs, checkOptions<CompareOptions>('options', options));
}

async function run(graph: Graph, reference: Reference, inputs: unknown, opts: Partial<CompareOptions>): Promise<ComparisonResult> {
  const threads = opts.intraOpNumThreads === undefined ? undefined : integer('options.intraOpNumThreads', opts.intraOpNumThreads, 1, 1024);
  const tolerance = opts.tolerance === undefined ? 1e-4 : number('options.tolerance', opts.tolerance, 0);
  const seed = opts.seed === undefined ? 0 : integer('options.seed', opts.seed, 0);
  const perNode = opts.perNode === true;
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') throw typeError('options.onProgress', 'a function', opts.onProgress);

  const { feeds, batch } = makeInputs(graph, inputs, seed);
  const outputNames = graph.outputs.map((o) => o.name);
  const extra = perNode ? graph.nodes.flatMap((n) => n.outputs).filter((o) => o !== '' && !outputNames.includes(o)) : [];
  // Intermediate values need not carry the batch axis: per-node comparisons run in one piece.
  const ranges = perNode ? [] : rowRanges(graph, feeds, batch);
  // One piece runs the feeds as given: inputs need not share a leading (batch) size.
  const chunks = ranges.length > 1 ? ranges.map((r) => sliceFeeds(feeds, r)) : [feeds];
  const ortOut = await runOrt(await reference(extra), chunks, [...outputNames, ...extra], threads, rowCounter('onnxruntime', batch, opts.onProgress));
  const compared = perNode ? extra.filter((n) => ortOut[n] !== undefined) : [];
  const session = await InferenceSession.create(withOutputs(graph, compared), {
    ...(threads === undefined ? {} : { intraOpNumThreads: threads }),
    // Every intermediate value must exist as computed: no fusion may swallow one.
    ...(perNode ? { graphOptimizationLevel: 'disabled' as const } : {}),
  });
  let kilnOut: Awaited<ReturnType<typeof runKilnChunks>>;
  try {
    kilnOut = await runKilnChunks(session, chunks, batch, rowCounter('kiln', batch, opts.onProgress));
  } finally {
    session.release();
  }

  const rowsOf = (t: { dims: readonly number[] }): number => (t.dims.length >= 2 ? t.dims[0]! : 1);
  const outputs = outputNames.map((name) => {
    if (ortOut[name] === undefined) throw new KilnError(ErrorCode.SHAPE_MISMATCH, `Expected the reference model to have an output '${name}' but it has none`);
    return compareArrays(name, kilnOut[name]!.data, ortOut[name]!, rowsOf(kilnOut[name]!));
  });
  const result: ComparisonResult = { outputs, batch };
  if (perNode) {
    const order = new Map(graph.nodes.map((n, i) => [n, i]));
    const producer = new Map(graph.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
    const names = [...compared, ...outputNames].filter((n) => producer.has(n));
    names.sort((a, b) => order.get(producer.get(a)!)! - order.get(producer.get(b)!)!);
    const nodes: NodeComparison[] = [];
    for (const name of names) {
      const node = producer.get(name)!;
      if (kilnOut[name] === undefined || ortOut[name] === undefined) continue;
      nodes.push({ node: node.name, op: node.op, ...compareArrays(name, kilnOut[name]!.data, ortOut[name]!, rowsOf(kilnOut[name]!)) });
    }
    result.nodes = nodes;
    result.firstDivergentNode = nodes.find((n) => !(n.relL2 <= tolerance));
  }
  return result;
}
