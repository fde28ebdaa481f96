/**
 * Dynamic quantization (`quantizeDynamic`) for Linear / Gemm / MatMul models: weights int8
 * symmetric (per output channel by default) ahead of time, activations quantized to uint8 per call
 * from their own min/max (ONNX DynamicQuantizeLinear) inside each DynamicQGemm node
 * (docs/int8-ir.md). No calibration data. Cheap float ops between the layers (ReLU and friends,
 * Flatten, Reshape, Softmax...) stay fp32; any other op (a Conv, say) is an error unless
 * `allowFp32` leaves it in float too.
 */
import { ErrorCode, KilnError } from '../errors.js';
import { toGraph } from '../graph/from-module.js';
import type { Attrs, Graph, GraphNode } from '../graph/ir.js';
import { freshName } from '../graph/passes/uses.js';
import { Module } from '../nn/module.js';
import { Tensor } from '../tensor.js';
import { boolean, dims as checkDims, onlyKeys, optional, options as checkOptions, rangeError, typeError } from '../validate.js';
import { prepareForQuantization } from './ptq-convert.js';
import { type Fp32Node, type LayerReport, type QuantizationReport, reportJson } from './ptq-report.js';
import { perChannelQuantParams, quantizePerChannel, quantParams } from './qparams.js';

export interface QuantizeDynamicOptions {
  /** Weight scales per output channel (default true) or one per tensor. */
  perChannel?: boolean;
  /** Leave ops other than Gemm/MatMul and cheap float ops in fp32 instead of refusing them (default false). */
  allowFp32?: boolean;
  /** One input's shape (without the batch) for a Module without `inputShape`. */
  inputShape?: readonly number[];
}

/** Float ops a dynamically quantized model may keep between its int8 layers. */
const FP32_OK: ReadonlySet<string> = new Set([
  'Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'Tanh', 'Softmax', 'LogSoftmax', 'Flatten', 'Reshape', 'Identity', 'Dropout', 'Add', 'Mul', 'Transpose',
  'Gelu', 'Erf', 'Elu', 'Selu', 'Celu', 'Mish', 'Softplus', 'Softsign', 'HardSigmoid', 'HardSwish', 'PRelu', 'Max', 'Min', 'Pow', 'Abs', 'Neg', 'Sqrt', 'ReduceMean',
]);

const OPTION_KEYS = new Set(['perChannel', 'allowFp32', 'inputShape']);

/** Why `node` has no DynamicQGemm form, or undefined. */
function obstacle(graph: Graph, node: GraphNode): string | undefined {
  if (node.op !== 'Gemm' && node.op !== 'MatMul') return `${node.op} has no dynamic int8 form (only Gemm/MatMul)`;
  const w = graph.initializers.get(node.inputs[1]);
  if (!w || w.type !== 'float32' || w.dims.length !== 2) return 'its weights are not a 2-D float32 constant';
  if (graph.initializers.has(node.inputs[0])) return 'its input is a constant';
  if (node.op === 'Gemm') {
    if (Number(node.attrs.transA ?? 0) !== 0) return 'transA = 1 is not quantized';
    const n = Number(node.attrs.transB ?? 0) !== 0 ? w.dims[0] : w.dims[1];
    const c = node.inputs[2] ? graph.initializers.get(node.inputs[2]) : undefined;
    if (node.inputs[2] && (!c || c.type !== 'float32' || (c.size !== n && c.size !== 1))) return 'its C input is not a float32 constant per output column';
  }
  return undefined;
}

/**
 * Dynamic int8 quantization of a Linear/Gemm/MatMul model.
 * @param modelOrGraph a Module (with `inputShape`, or `options.inputShape`) or a Graph
 * @returns the graph with DynamicQGemm nodes and its report (also in `metadata.kiln_quantization`)
 * @throws KilnError ERR_KILN_UNSUPPORTED_OP naming every op that has no dynamic int8 form and may
 *   not stay fp32 (unless `allowFp32`), or when the model has no Gemm/MatMul at all
 */
export function quantizeDynamic(modelOrGraph: Module | Graph, options?: QuantizeDynamicOptions): { graph: Graph; report: QuantizationReport } {
  const opts = checkOptions<QuantizeDynamicOptions>('options', options);
  onlyKeys('options', opts, OPTION_KEYS);
  const perChannel = optional(opts.perChannel, true, (v) => boolean('options.perChannel', v));
  const allowFp32 = optional(opts.allowFp32, false, (v) => boolean('options.allowFp32', v));
  let source: Graph;
  if (modelOrGraph instanceof Module) {
    const shape = opts.inputShape === undefined ? modelOrGraph.inputShape?.slice() : checkDims('options.inputShape', opts.inputShape);
    if (!shape) throw typeError('options.inputShape', 'one input shape such as [784] for a Module without inputShape', undefined);
    source = toGraph(modelOrGraph, shape);
  } else if (modelOrGraph !== null && typeof modelOrGraph === 'object' && Array.isArray((modelOrGraph as Graph).nodes) && (modelOrGraph as Graph).initializers instanceof Map) {
    source = modelOrGraph;
  } else {
    throw typeError('modelOrGraph', 'a Module or a Graph', modelOrGraph);
  }
  const graph = prepareForQuantization(source);

  const refused = graph.nodes.filter((n) => obstacle(graph, n) !== undefined && !FP32_OK.has(n.op));
  if (refused.length > 0 && !allowFp32) {
    throw new KilnError(
      ErrorCode.UNSUPPORTED_OP,
      `Expected a Linear/Gemm/MatMul model for dynamic quantization but received ${refused.length} node(s) it cannot quantize ` +
        `(${refused.map((n) => `${n.op} '${n.name}': ${obstacle(graph, n)}`).join('; ')}); use quantize() with calibration data, or options.allowFp32`,
    );
  }
  const taken = new Set<string>();
  const initializers = new Map(graph.initializers);
  const layers: LayerReport[] = [];
  const fp32Nodes: Fp32Node[] = [];
  const nodes = graph.nodes.map((node): GraphNode => {
    const why = obstacle(graph, node);
    if (why !== undefined) {
      fp32Nodes.push({ node: node.name, op: node.op, reason: why });
      return node;
    }
    const w = graph.initializers.get(node.inputs[1]) as Tensor<'float32'>;
    const isGemm = node.op === 'Gemm';
    const transB = isGemm && Number(node.attrs.transB ?? 0) !== 0;
    const alpha = isGemm ? Number(node.attrs.alpha ?? 1) : 1;
    const beta = isGemm ? Number(node.attrs.beta ?? 1) : 1;
    const [k, n] = transB ? [w.dims[1], w.dims[0]] : [w.dims[0], w.dims[1]];
    const rows = new Float32Array(n * k);
    for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) rows[j * k + p] = alpha * (transB ? w.data[j * k + p] : w.data[p * n + j]);
    let scales: Float32Array;
    let q: Int8Array;
    if (perChannel) {
      const params = perChannelQuantParams(rows, [n, k], 'int8', node.inputs[1]);
      q = quantizePerChannel(rows, [n, k], params) as Int8Array;
      scales = params.scales;
    } else {
      let min = 0;
      let max = 0;
      for (const v of rows) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      const p = quantParams({ min, max }, 'int8', node.inputs[1]);
      q = quantizePerChannel(rows, [n, k], { kind: 'int8', axis: 0, scales: new Float32Array(n).fill(p.scale), zeroPoints: new Int32Array(n) }) as Int8Array;
      scales = new Float32Array([p.scale]);
    }
    const wName = freshName(graph, `${node.inputs[1]}_int8`, taken);
    const sName = freshName(graph, `${node.inputs[1]}_scale`, taken);
    initializers.set(wName, new Tensor('int8', q, [n, k]));
    initializers.set(sName, new Tensor('float32', scales, [scales.length]));
    let bName = '';
    const c = isGemm && node.inputs[2] ? (graph.initializers.get(node.inputs[2]) as Tensor<'float32'>) : undefined;
    if (c) {
      bName = freshName(graph, `${node.name}_bias`, taken);
      initializers.set(bName, new Tensor('float32', Float32Array.from({ length: n }, (_, j) => beta * c.data[c.size === 1 ? 0 : j]), [n]));
    }
    const attrs: Attrs = { transB: 1 };
    for (const [key, value] of Object.entries(node.attrs)) if (key.startsWith('kiln_activation')) attrs[key] = value;
    layers.push({
      node: node.name,
      op: node.op,
      input: node.inputs[0],
      output: node.outputs[0],
      int8Op: 'DynamicQGemm',
      outputDtype: 'float32',
      weightScaleMin: Math.min(...scales),
      weightScaleMax: Math.max(...scales),
      perChannel,
      ...(node.attrs.kiln_activation !== undefined ? { activation: String(node.attrs.kiln_activation) } : {}),
    });
    return { name: node.name, op: 'DynamicQGemm', inputs: [node.inputs[0], wName, sName, bName], outputs: [...node.outputs], attrs };
  });
  if (layers.length === 0) {
    throw new KilnError(ErrorCode.UNSUPPORTED_OP, 'Expected at least one Gemm/MatMul with constant weights for dynamic quantization but received none');
  }
  const used = new Set(nodes.flatMap((n) => n.inputs));
  for (const name of [...initializers.keys()]) if (!used.has(name)) initializers.delete(name);
  const report: QuantizationReport = {
    mode: 'dynamic',
    weights: { dtype: 'int8', symmetric: true, perChannel },
    activations: 'uint8',
    calibration: { method: 'dynamic' },
    layers,
    fp32Nodes,
  };
  return { graph: { ...graph, nodes, initializers, metadata: { ...graph.metadata, kiln_quantization: reportJson(report) } }, report };
}
