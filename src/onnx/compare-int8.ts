/**
 * `compareInt8WithOnnxRuntime`: Kiln running an int8 graph against onnxruntime-node running its
 * QDQ export (or the int8 ONNX file it was imported from), on the same inputs. Besides the usual
 * figures it gives the largest difference in quantization steps of each output: the step of a
 * dequantized output is its scale; that of a float32 QLinearConv/QLinearGemm output is one
 * accumulator unit, x_scale * w_scale[channel]. Two correct int8 runtimes differ by at most one
 * step (a rounding tie decided differently).
 */
import type * as Ort from 'onnxruntime-node';

import { ErrorCode, KilnError } from '../errors.js';
import { isInt8Graph } from '../graph/int8-ir.js';
import type { Graph, GraphNode } from '../graph/ir.js';
import { InferenceSession } from '../runtime/session.js';
import { Tensor } from '../tensor.js';
import { runInt8Reference } from '../quant/reference.js';
import { integer, oneOf, options as checkOptions, typeError } from '../validate.js';
import { compareArrays, type CompareProgress, type OutputComparison } from './compare.js';
import { exportModel } from './export.js';
import { loadOnnxRuntime } from './onnxruntime.js';
import { chunkRows, concatChunks, rowCounter, rowRanges, runKilnChunks, sliceFeeds } from './row-chunks.js';

export interface Int8CompareOptions {
  /** Threads each runtime may use. Default: each runtime's default. */
  intraOpNumThreads?: number;
  /**
   * What runs the graph on Kiln's side: the native int8 runtime (`InferenceSession`, default) or
   * the plain-JS int8 reference interpreter (`runInt8Reference`, slow: to tell a runtime bug from
   * an export or import one).
   */
  engine?: 'runtime' | 'reference';
  /** As CompareOptions.onProgress: each runtime's rows done, chunk by chunk (256 rows). */
  onProgress?: (progress: CompareProgress) => void;
}

export interface Int8OutputComparison extends OutputComparison {
  /** max |kiln - ort| / step over the elements; undefined when the output has no fixed step. */
  maxDiffSteps: number | undefined;
}

export interface Int8ComparisonResult {
  outputs: Int8OutputComparison[];
  batch: number;
  /** What onnxruntime ran: Kiln's QDQ export of the graph, or the ONNX file given. */
  reference: 'qdq-export' | 'onnx-file';
  /** What ran the graph on Kiln's side. */
  engine: 'runtime' | 'reference';
}

/** The quantization step of each output, per channel (axis 1), where the graph fixes one. */
export function outputSteps(graph: Graph): Map<string, Float32Array> {
  const producer = new Map<string, GraphNode>();
  for (const n of graph.nodes) for (const o of n.outputs) producer.set(o, n);
  const steps = new Map<string, Float32Array>();
  const stepOf = (value: string, depth = 0): Float32Array | undefined => {
    const n = producer.get(value);
    if (n === undefined || depth > 64) return undefined;
    switch (n.op) {
      case 'Identity':
      case 'Flatten':
      case 'Reshape':
        return stepOf(n.inputs[0]!, depth + 1);
      case 'DequantizeLinear':
        return typeof n.attrs.scale === 'number' ? Float32Array.of(n.attrs.scale) : undefined;
      case 'QLinearConv':
      case 'QLinearGemm': {
        if (n.attrs.y_scale !== undefined) return undefined;
        const xScale = n.attrs[n.op === 'QLinearConv' ? 'x_scale' : 'a_scale'];
        const ws = graph.initializers.get(n.inputs[2] ?? '');
        if (typeof xScale !== 'number' || ws === undefined) return undefined;
        return Float32Array.from(ws.data as Float32Array, (s) => Math.fround(xScale * s));
      }
      default:
        return undefined;
    }
  };
  for (const o of graph.outputs) {
    const s = stepOf(o.name);
    if (s !== undefined) steps.set(o.name, s);
  }
  return steps;
}

/** max |a - b| / step[channel], the channel being axis 1 of `dims`. */
export function diffInSteps(a: ArrayLike<number>, b: ArrayLike<number>, dims: readonly number[], step: Float32Array): number {
  const channels = dims.length >= 2 ? dims[1]! : 1;
  const inner = dims.slice(2).reduce((x, y) => x * y, 1);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const c = step.length === 1 ? 0 : Math.floor(i / inner) % channels;
    const d = Math.abs(a[i]! - b[i]!) / step[c]!;
    if (!(d <= worst)) worst = d; // NaN propagates
  }
  return worst;
}

/**
 * Runs an int8 graph on Kiln and on onnxruntime-node and compares the outputs.
 *
 * @param graph a graph with int8 ops (docs/int8-ir.md)
 * @param inputs feeds by input name (float32 tensors, batch first)
 * @param reference the int8 ONNX file the graph was imported from, as its path (external data is
 *   found beside it) or its bytes; default: Kiln's QDQ export
 */
export async function compareInt8WithOnnxRuntime(
  graph: Graph,
  inputs: Record<string, Tensor>,
  reference?: string | Uint8Array,
  options?: Int8CompareOptions,
): Promise<Int8ComparisonResult> {
  if (typeof graph !== 'object' || graph === null || !Array.isArray(graph.nodes) || !(graph.initializers instanceof Map)) throw typeError('graph', 'a Graph', graph);
  if (!isInt8Graph(graph)) throw typeError('graph', 'a quantized graph (with int8 ops)', 'a float graph');
  if (reference !== undefined && typeof reference !== 'string' && !(reference instanceof Uint8Array)) throw typeError('reference', 'a path or ONNX bytes', reference);
  const opts = checkOptions<Int8CompareOptions>('options', options);
  const threads = opts.intraOpNumThreads === undefined ? undefined : integer('options.intraOpNumThreads', opts.intraOpNumThreads, 1, 1024);
  const engine = opts.engine === undefined ? 'runtime' : oneOf('options.engine', opts.engine, ['runtime', 'reference'] as const);
  if (inputs === null || typeof inputs !== 'object') throw typeError('inputs', 'a record of Tensors', inputs);
  for (const i of graph.inputs) {
    const t = inputs[i.name];
    if (!(t instanceof Tensor) || t.type !== 'float32') throw typeError(`inputs['${i.name}']`, 'a float32 Tensor', t);
  }
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') throw typeError('options.onProgress', 'a function', opts.onProgress);
  const model = reference ?? exportModel(graph);
  const feeds = inputs as Record<string, Tensor<'float32'>>;
  const batch = graph.inputs[0] ? feeds[graph.inputs[0].name]!.dims[0] ?? 1 : 1;
  const chunks = rowRanges(graph, feeds, batch).map((r) => sliceFeeds(feeds, r));
  const ort = await loadOnnxRuntime();
  const ortSession = await ort.InferenceSession.create(model as string, { logSeverityLevel: 3, ...(threads === undefined ? {} : { intraOpNumThreads: threads }) });
  const ortChunks: Record<string, Float32Array>[] = [];
  try {
    const ortProgress = rowCounter('onnxruntime', batch, opts.onProgress);
    for (const chunk of chunks) {
      const ortFeeds: Record<string, Ort.Tensor> = {};
      graph.inputs.forEach((input, k) => {
        const t = chunk[input.name]!;
        // The reference file names its inputs itself; they come in the same order.
        ortFeeds[ortSession.inputNames[k] ?? input.name] = new ort.Tensor('float32', t.data, t.dims.slice());
      });
      const out = await ortSession.run(ortFeeds);
      // Outputs by the graph's names (the reference file may name them otherwise, in the same order).
      ortChunks.push(
        Object.fromEntries(
          graph.outputs.map((o, k) => {
            const value = out[o.name] ?? out[Object.keys(out)[k] ?? ''];
            if (value === undefined) throw new KilnError(ErrorCode.SHAPE_MISMATCH, `Expected an output '${o.name}' from both runtimes but onnxruntime gave none`);
            return [o.name, value.data as Float32Array];
          }),
        ),
      );
      ortProgress(chunkRows(chunk));
    }
  } finally {
    await ortSession.release();
  }
  const ortOut = concatChunks(ortChunks);
  let kilnOut: Record<string, Tensor>;
  if (engine === 'reference') {
    kilnOut = runInt8Reference(graph, inputs);
    rowCounter('kiln', batch, opts.onProgress)(batch);
  } else {
    const session = await InferenceSession.create(graph, threads === undefined ? {} : { intraOpNumThreads: threads });
    try {
      kilnOut = await runKilnChunks(session, chunks, batch, rowCounter('kiln', batch, opts.onProgress));
    } finally {
      session.release();
    }
  }
  const steps = outputSteps(graph);
  const outputs = graph.outputs.map((o) => {
    const ref = ortOut[o.name];
    const ours = kilnOut[o.name];
    if (ref === undefined || ours === undefined) throw new KilnError(ErrorCode.SHAPE_MISMATCH, `Expected an output '${o.name}' from both runtimes but ${ref === undefined ? 'onnxruntime' : 'Kiln'} gave none`);
    const rows = ours.dims.length >= 2 ? ours.dims[0]! : 1;
    const cmp = compareArrays(o.name, ours.data, ref, rows);
    const step = steps.get(o.name);
    return { ...cmp, maxDiffSteps: step === undefined ? undefined : diffInSteps(ours.data, ref, ours.dims, step) };
  });
  const first = graph.inputs[0] ? inputs[graph.inputs[0].name] : undefined;
  return { outputs, batch: first?.dims[0] ?? 1, reference: reference === undefined ? 'qdq-export' : 'onnx-file', engine };
}
