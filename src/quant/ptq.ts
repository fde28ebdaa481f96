/**
 * Post-training static quantization: `quantize(modelOrGraph, calibrationData, options)`.
 *
 * 1. prepare: BatchNorm folded, activations fused (prepareForQuantization);
 * 2. calibrate: the fp32 graph runs on the native runtime with every value the int8 graph quantizes
 *    as an extra output, each observed by a calibration observer (minmax / percentile / entropy / mse);
 * 3. convert: convertToInt8 with the observers' ranges;
 * 4. measure: per layer, the clipping fraction of its fp32 output on the calibration batches, and the
 *    SQNR of its int8 output (run on the int8 reference interpreter) against fp32 on the first
 *    `reportImages` images.
 */
import { toGraph } from '../graph/from-module.js';
import type { Graph } from '../graph/ir.js';
import { Module } from '../nn/module.js';
import { InferenceSession } from '../runtime/session.js';
import type { Tensor } from '../tensor.js';
import { boolean, dims as checkDims, integer, number, oneOf, onlyKeys, optional, options as checkOptions, rangeError, typeError } from '../validate.js';
import { type CalibrationData, calibrationImages, type CalibrationImages } from './calibration-data.js';
import { CALIBRATION_METHODS, type CalibrationMethod, createObserver, type Observer } from './observers/index.js';
import { convertToInt8, type ConvertOptions, prepareForQuantization, valuesToCalibrate } from './ptq-convert.js';
import { measureLayers } from './ptq-measure.js';
import { type QuantizationReport, reportJson } from './ptq-report.js';
import type { FloatRange } from './qparams.js';

export { convertToInt8, prepareForQuantization, valuesToCalibrate, int8Obstacle, PASS_THROUGH_OPS, type ConvertOptions } from './ptq-convert.js';
export type { QuantizationReport, LayerReport, Fp32Node } from './ptq-report.js';
export type { CalibrationData } from './calibration-data.js';

/** Progress of `quantize`: calibration batches, then the measurement batches of the report. */
export interface QuantizeProgress {
  phase: 'calibrate' | 'measure';
  /** Batches done in this phase (1-based), out of `total`. */
  done: number;
  total: number;
}

export interface QuantizeOptions extends ConvertOptions {
  /** Calibration method (default 'minmax'; 'entropy' is what TensorRT and ONNX Runtime favour for CNNs). */
  method?: CalibrationMethod;
  /** For method 'percentile': the percentage of values kept, in (0, 100] (default 99.99). */
  percentile?: number;
  /** Images per calibration batch (default 64). */
  batchSize?: number;
  /** Calibration batches (default: every batch the data holds, at most 32). */
  batches?: number;
  /** Images whose int8 outputs the report's SQNR is measured on (reference interpreter; default 64, 0 = none). */
  reportImages?: number;
  /** One image's shape for a Module without `inputShape` (default: the data's image shape). */
  inputShape?: readonly number[];
  /** Called after each batch. */
  onProgress?: (progress: QuantizeProgress) => void;
}

const OPTION_KEYS = new Set(['method', 'percentile', 'batchSize', 'batches', 'reportImages', 'inputShape', 'onProgress', 'perChannel', 'activations', 'strict']);

export interface QuantizeResult {
  /** The int8 graph (docs/int8-ir.md); its report is also in `metadata.kiln_quantization`. */
  graph: Graph;
  report: QuantizationReport;
}

function floatGraph(model: unknown, images: CalibrationImages, inputShape: number[] | undefined): Graph {
  if (model instanceof Module) {
    const shape = inputShape ?? model.inputShape?.slice() ?? images.imageShape;
    return toGraph(model, shape);
  }
  if (model !== null && typeof model === 'object' && Array.isArray((model as Graph).nodes) && (model as Graph).initializers instanceof Map) {
    return model as Graph;
  }
  throw typeError('modelOrGraph', 'a Module or a Graph', model);
}

/** The graph's single user input, checked against the calibration images. */
function checkInput(graph: Graph, images: CalibrationImages): { name: string; fixedBatch?: number } {
  const inputs = graph.inputs.filter((v) => !graph.initializers.has(v.name));
  if (inputs.length !== 1) throw rangeError('modelOrGraph', 'a model with exactly one input', `${inputs.length} inputs`);
  const shape = inputs[0].shape.slice(1);
  const fits = shape.length === images.imageShape.length && shape.every((d, i) => typeof d !== 'number' || d === images.imageShape[i]);
  if (!fits) {
    throw rangeError('calibrationData', `images of the model's input shape [${shape.join(', ')}]`, `images of shape [${images.imageShape.join(', ')}]`);
  }
  const lead = inputs[0].shape[0];
  return typeof lead === 'number' ? { name: inputs[0].name, fixedBatch: lead } : { name: inputs[0].name };
}

/**
 * Post-training static int8 quantization of a trained model.
 * @param modelOrGraph a Module (Kiln-trained) or a Graph (e.g. an imported ONNX model), fp32
 * @param calibrationData representative images: a Dataset, a Tensor [N, ...] or an array of them
 * @param options method, percentile, batches, batchSize, perChannel, activations, strict, onProgress
 * @returns the int8 graph and its per-layer report
 * @throws TypeError/RangeError (ERR_KILN_INVALID_ARG) naming the argument: no data, data of the wrong
 *   shape, NaN or infinite images or activations, out-of-range options; KilnError
 *   ERR_KILN_UNSUPPORTED_OP with `strict` when a node would stay fp32
 * @example
 * const { graph, report } = await quantize(model, mnistTrain, { method: 'entropy', batches: 16 });
 * const session = await InferenceSession.create(graph);
 */
export async function quantize(modelOrGraph: Module | Graph, calibrationData: CalibrationData, options?: QuantizeOptions): Promise<QuantizeResult> {
  const opts = checkOptions<QuantizeOptions>('options', options);
  onlyKeys('options', opts, OPTION_KEYS);
  const method = optional<CalibrationMethod>(opts.method, 'minmax', (v) => oneOf('options.method', v, CALIBRATION_METHODS));
  if (opts.percentile !== undefined && method !== 'percentile') throw rangeError('options.percentile', "nothing unless options.method is 'percentile'", opts.percentile);
  const percentile = method === 'percentile' ? optional(opts.percentile, 99.99, (v) => number('options.percentile', v, 0, 100, true)) : undefined;
  if (percentile !== undefined && !(percentile > 0)) throw rangeError('options.percentile', 'a percentage in (0, 100]', percentile);
  let batchSize = optional(opts.batchSize, 64, (v) => integer('options.batchSize', v, 1, 1 << 20));
  const batchesOpt = opts.batches === undefined ? undefined : integer('options.batches', opts.batches, 1, 1 << 30);
  const reportImages = optional(opts.reportImages, 64, (v) => integer('options.reportImages', v, 0, 1 << 20));
  const inputShape = opts.inputShape === undefined ? undefined : checkDims('options.inputShape', opts.inputShape);
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') throw typeError('options.onProgress', 'a function', opts.onProgress);
  const convertOptions: ConvertOptions = {};
  if (opts.perChannel !== undefined) convertOptions.perChannel = boolean('options.perChannel', opts.perChannel);
  if (opts.activations !== undefined) convertOptions.activations = oneOf('options.activations', opts.activations, ['uint8', 'int8'] as const);
  if (opts.strict !== undefined) convertOptions.strict = boolean('options.strict', opts.strict);

  const images = calibrationImages(calibrationData);
  const prepared = prepareForQuantization(floatGraph(modelOrGraph, images, inputShape));
  const { name: inputName, fixedBatch } = checkInput(prepared, images);
  let available = Math.ceil(images.count / batchSize);
  if (fixedBatch !== undefined) {
    // A graph with a fixed batch size (common in ONNX files) is fed whole batches of that size only.
    batchSize = fixedBatch;
    available = Math.floor(images.count / batchSize);
    if (available === 0) throw rangeError('calibrationData', `at least ${fixedBatch} images (the model's fixed batch size)`, `${images.count} images`);
  }
  const batches = Math.min(batchesOpt ?? Math.min(available, 32), available);

  const watched = valuesToCalibrate(prepared);
  const session = await observingSession(prepared, watched, images);
  const observers = new Map<string, Observer>(
    watched.map((v) => [v, createObserver(method, `activation '${v}'`, method === 'percentile' ? { percentile } : undefined)]),
  );
  const runBatch = async (b: number): Promise<Record<string, Tensor>> => {
    const feed = images.slice(b * batchSize, Math.min(batchSize, images.count - b * batchSize));
    const outputs: Record<string, Tensor> = await session.run({ [inputName]: feed });
    outputs[inputName] = feed;
    return outputs;
  };
  try {
    for (let b = 0; b < batches; b++) {
      const outputs = await runBatch(b);
      for (const [v, observer] of observers) observer.observe(outputs[v].data as Float32Array);
      opts.onProgress?.({ phase: 'calibrate', done: b + 1, total: batches });
    }
    const ranges = new Map<string, FloatRange>([...observers].map(([v, o]) => [v, o.range()]));
    const calibration = { method, ...(percentile !== undefined ? { percentile } : {}), batches, images: Math.min(images.count, batches * batchSize) };
    const { graph, report } = convertToInt8(prepared, ranges, convertOptions, { calibration });
    await measureLayers(graph, report, { inputName, batches, runBatch, reportImages, images, onProgress: opts.onProgress });
    graph.metadata = { ...graph.metadata, kiln_quantization: reportJson(report) };
    return { graph, report };
  } finally {
    session.release();
  }
}

/** An fp32 session of `prepared` that also returns every watched value. */
async function observingSession(prepared: Graph, watched: string[], images: CalibrationImages): Promise<InferenceSession> {
  const inputNames = new Set(prepared.inputs.map((v) => v.name));
  const outputs = new Set(prepared.outputs.map((o) => o.name));
  const extra = watched.filter((v) => !outputs.has(v) && !inputNames.has(v));
  const graph: Graph = { ...prepared, outputs: [...prepared.outputs, ...extra.map((name) => ({ name, dtype: 'float32' as const, shape: [] }))] };
  return InferenceSession.create(graph, { graphOptimizationLevel: 'disabled', inputShape: images.imageShape });
}
