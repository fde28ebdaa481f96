/**
 * Float graph + activation ranges → int8 graph (docs/int8-ir.md). Shared by post-training
 * quantization (ranges from calibration) and QAT (ranges from its observers).
 *
 * Every Conv / Gemm / MatMul with constant weights becomes a QLinearConv / QLinearGemm (weights int8
 * symmetric per output channel, or per tensor; int32 bias with scale x_scale * w_scale[o]); MaxPool,
 * Flatten, Reshape, Identity and Dropout run on the quantized values they receive. An Add of two
 * activations of one per-image shape (the skip connection of a residual block) becomes a QLinearAdd
 * with its own output range; a Relu that alone reads the Add's output is fused into it
 * (`kiln_activation: 'Relu'`, the Relu's output range). An Add with a constant or broadcast input
 * stays fp32 (QLinearAdd does not broadcast). A GlobalAveragePool (or ReduceMean over H and W) or
 * a 2-D AveragePool whose output some reader takes quantized becomes a QLinearGlobalAveragePool /
 * QLinearAveragePool with its own output range. A value read by
 * an int8 node gets one QuantizeLinear where it is float; a quantized value read by a float node or
 * a graph output gets one DequantizeLinear. Consecutive int8 nodes read each other's quantized
 * outputs directly (no DQ/Q between them). A layer's output stays quantized when it has a range, is
 * not a graph output and some reader runs on quantized values; otherwise the int8 node dequantizes
 * its output in the epilogue (no y_* attributes).
 */
import { ErrorCode, KilnError } from '../errors.js';
import type { Attrs, Graph, GraphNode } from '../graph/ir.js';
import { eliminateDeadNodes, eliminateIdentity, foldBatchNorm, fuseActivations } from '../graph/passes/index.js';
import { LOOKUP_FUNCTIONS, lookupName, lookupParams } from '../graph/int8-lookup.js';
import { consumers, freshName } from '../graph/passes/uses.js';
import { formatShape, inferShapes, type Shape } from '../graph/shape-inference.js';
import { Tensor } from '../tensor.js';
import { boolean, oneOf, options as checkOptions, optional, typeError } from '../validate.js';
import { type AddReport, type Fp32Node, type LayerReport, type LookupReport, type QuantizationReport, reportJson } from './ptq-report.js';
import { channelRanges, type FloatRange, type PerChannelQuantParams, perChannelQuantParams, quantizePerChannel, quantParams, type QuantKind, type QuantParams, roundHalfEven, storageRange } from './qparams.js';

export interface ConvertOptions {
  /** Weight scales per output channel (default true) or one per tensor. */
  perChannel?: boolean;
  /** Activation storage: 'uint8' asymmetric (default) or 'int8' symmetric. */
  activations?: QuantKind;
  /** Refuse (KilnError ERR_KILN_UNSUPPORTED_OP) instead of leaving a node in fp32. */
  strict?: boolean;
}

/** Ops that move or select values: they run on quantized values unchanged. */
export const PASS_THROUGH_OPS: ReadonlySet<string> = new Set(['MaxPool', 'Flatten', 'Reshape', 'Identity', 'Dropout']);

/**
 * A Transpose between NCHW and NHWC of an image ([0, 2, 3, 1] or [0, 3, 1, 2]: a view of the
 * runtime's NHWC-stored codes) or a channel shuffle: they run quantized. Other permutations would
 * cost two layout transposes of the codes around a general one: they stay float.
 */
function transposeRunsOnCodes(node: GraphNode): boolean {
  const perm = node.attrs.perm;
  if (node.op !== 'Transpose' || !Array.isArray(perm)) return false;
  // [0, 2, 1, 3, 4]: ShuffleNet's channel shuffle between two Reshapes, one byte gather per pixel
  // on NHWC codes (the runtime lowers the three as one step).
  return perm.join() === '0,2,3,1' || perm.join() === '0,3,1,2' || perm.join() === '0,2,1,3,4';
}

/**
 * A node that runs on a quantized value unchanged: the PASS_THROUGH_OPS, Slice, Split, a nearest
 * Resize and the Transposes above (they copy stored codes: uint8 NHWC in the runtime, DQ -> op -> Q
 * on export).
 */
export function passesThrough(node: GraphNode): boolean {
  return PASS_THROUGH_OPS.has(node.op) || node.op === 'Slice' || node.op === 'Split' || transposeRunsOnCodes(node) || (node.op === 'Resize' && (node.attrs.mode ?? 'nearest') === 'nearest' && node.attrs.roi === undefined);
}

/** Ops with an int8 form (when their weights are constants). */
const WEIGHTED_OPS: ReadonlySet<string> = new Set(['Conv', 'Gemm', 'MatMul']);

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/**
 * The float graph the quantizer works on: Identity/Dropout removed, BatchNormalization folded into
 * the Conv/Gemm before it, ReLU (and other activations) fused into it. Ranges given to
 * `convertToInt8` are keyed by value names of this graph.
 */
export function prepareForQuantization(graph: Graph): Graph {
  if (graph === null || typeof graph !== 'object' || !Array.isArray(graph.nodes) || !(graph.initializers instanceof Map)) {
    throw typeError('graph', 'a Graph', graph);
  }
  return eliminateDeadNodes(fuseActivations(eliminateDeadNodes(foldBatchNorm(eliminateIdentity(graph)))));
}

function floatInit(graph: Graph, name: string | undefined): Tensor<'float32'> | undefined {
  const t = name ? graph.initializers.get(name) : undefined;
  return t && t.type === 'float32' ? (t as Tensor<'float32'>) : undefined;
}

/** Value shapes of a graph, inferred once per graph (int8Obstacle asks for each Add). */
const shapeCache = new WeakMap<Graph, Map<string, Shape>>();

function shapesOf(graph: Graph): Map<string, Shape> {
  let shapes = shapeCache.get(graph);
  if (!shapes) {
    shapes = inferShapes(graph);
    shapeCache.set(graph, shapes);
  }
  return shapes;
}

/**
 * The Add of a constant bias that alone reads a MatMul's output, y = x W + b (how exporters write
 * a Linear over the last axis of [N, ..., K]: ONNX Gemm takes matrices only): folded into the
 * int8 Gemm's int32 bias, so the QLinearGemm writes y itself. `b` must add along the last axis
 * only ([N_out], or ones then N_out, of no higher rank than the product).
 */
function matmulBiasAdd(graph: Graph, node: GraphNode, readers: ReadonlyMap<string, GraphNode[]>): { add: GraphNode; bias: Float32Array } | undefined {
  if (node.op !== 'MatMul' || node.attrs.kiln_activation !== undefined) return undefined;
  const w = floatInit(graph, node.inputs[1]);
  const out = node.outputs[0];
  if (w === undefined || w.dims.length !== 2 || graph.outputs.some((o) => o.name === out)) return undefined;
  const users = readers.get(out) ?? [];
  const add = users.length === 1 ? users[0] : undefined;
  if (add === undefined || add.op !== 'Add' || add.inputs.length !== 2 || add.attrs.kiln_activation !== undefined) return undefined;
  const other = add.inputs[0] === out ? add.inputs[1] : add.inputs[0];
  const b = other === out ? undefined : floatInit(graph, other);
  const rank = shapesOf(graph).get(out)?.length;
  const n = w.dims[1];
  if (b === undefined || rank === undefined || b.dims.length > rank || b.dims[b.dims.length - 1] !== n || b.data.length !== n) return undefined;
  return { add, bias: b.data };
}

/** Why an Add cannot become a QLinearAdd (two activations of one shape, no broadcasting). */
function addObstacle(graph: Graph, node: GraphNode): string | undefined {
  const act = node.attrs.kiln_activation;
  if (act !== undefined && act !== 'Relu') return `its fused activation ${String(act)} has no int8 form (only Relu)`;
  if (node.inputs.length !== 2 || node.inputs.some((i) => !i)) return 'it does not have two inputs';
  if (node.inputs.some((i) => graph.initializers.has(i))) return 'one of its inputs is a constant (QLinearAdd adds two activations)';
  const [a, b] = node.inputs.map((i) => shapesOf(graph).get(i));
  if (!a || !b) return 'the shapes of its inputs are unknown';
  const same = a.length === b.length && a.length >= 2 && a.every((d, i) => d === b[i] && (i === 0 || typeof d === 'number'));
  if (!same) return `its inputs have the shapes ${formatShape(a)} and ${formatShape(b)}: QLinearAdd needs one fixed per-image shape (no broadcasting)`;
  return undefined;
}

/**
 * A Mul's inputs as [full, other] when it can become a QLinearMul (two activations: one [N, C, H, W]
 * times one of the same shape or a channel gate [N, C, 1, 1], in either order), else the reason.
 */
function mulOperands(graph: Graph, node: GraphNode): [string, string] | string {
  if (node.attrs.kiln_activation !== undefined) return `its fused activation ${String(node.attrs.kiln_activation)} has no int8 form`;
  if (node.inputs.length !== 2 || node.inputs.some((i) => !i)) return 'it does not have two inputs';
  if (node.inputs.some((i) => graph.initializers.has(i))) return 'one of its inputs is a constant (QLinearMul multiplies two activations)';
  const [a, b] = node.inputs.map((i) => shapesOf(graph).get(i));
  if (!a || !b) return 'the shapes of its inputs are unknown';
  const fixed = (s: Shape) => s.length === 4 && s.slice(1).every((d) => typeof d === 'number');
  const same = (s: Shape, t: Shape) => s.length === t.length && s.every((d, i) => i === 0 || d === t[i]);
  const gate = (s: Shape, t: Shape) => s[1] === t[1] && t[2] === 1 && t[3] === 1;
  if (fixed(a) && fixed(b) && (same(a, b) || gate(a, b))) return [node.inputs[0], node.inputs[1]];
  if (fixed(a) && fixed(b) && gate(b, a)) return [node.inputs[1], node.inputs[0]];
  return `its inputs have the shapes ${formatShape(a)} and ${formatShape(b)}: QLinearMul needs two images of one shape, or an image and a [C, 1, 1] gate`;
}

/** Why a GlobalAveragePool / ReduceMean cannot become a QLinearGlobalAveragePool. */
function meanObstacle(graph: Graph, node: GraphNode): string | undefined {
  const x = shapesOf(graph).get(node.inputs[0]);
  if (!x || x.length !== 4 || x.slice(1).some((d) => typeof d !== 'number')) return 'its input is not an NCHW image of a fixed size';
  if (node.op === 'GlobalAveragePool') return undefined;
  const axes = node.attrs.axes;
  const spatial = Array.isArray(axes) && axes.length === 2 && [...axes].map((v) => (Number(v) + 4) % 4).sort().join() === '2,3';
  if (!spatial || node.inputs.length > 1 || Number(node.attrs.keepdims ?? 1) !== 1) return 'only a ReduceMean over H and W that keeps its dims has an int8 form';
  return undefined;
}

/** Why an AveragePool cannot become a QLinearAveragePool. */
function averagePoolObstacle(graph: Graph, node: GraphNode): string | undefined {
  const x = shapesOf(graph).get(node.inputs[0]);
  if (!x || x.length !== 4 || x.slice(1).some((d) => typeof d !== 'number')) return 'its input is not an NCHW image of a fixed size';
  const kernel = node.attrs.kernel_shape;
  if (!Array.isArray(kernel) || kernel.length !== 2) return 'only a 2-D AveragePool has an int8 form';
  if (node.attrs.kiln_activation !== undefined) return `its fused activation ${String(node.attrs.kiln_activation)} has no int8 form here`;
  const autoPad = node.attrs.auto_pad;
  if (autoPad !== undefined && autoPad !== 'NOTSET') return `auto_pad ${String(autoPad)} (the importer resolves it into pads)`;
  return undefined;
}

/** Ops whose int8 form averages its input's codes: QLinearGlobalAveragePool and QLinearAveragePool. */
const AVERAGING_OPS: ReadonlySet<string> = new Set(['GlobalAveragePool', 'ReduceMean', 'AveragePool']);

/**
 * The Relu an int8 Add absorbs as `kiln_activation: 'Relu'`: the only reader of the Add's output,
 * which is not a graph output.
 */
function fusableRelu(graph: Graph, node: GraphNode, readers: ReadonlyMap<string, GraphNode[]>): GraphNode | undefined {
  if (node.op !== 'Add' || node.attrs.kiln_activation !== undefined) return undefined;
  const out = node.outputs[0];
  if (graph.outputs.some((o) => o.name === out)) return undefined;
  const users = readers.get(out) ?? [];
  if (users.length !== 1 || users[0].op !== 'Relu' || users[0].inputs[0] !== out) return undefined;
  return users[0];
}

/** The value an int8 Add writes: its fused Relu's output, or its own. */
function addOutput(graph: Graph, node: GraphNode, readers: ReadonlyMap<string, GraphNode[]>): string {
  return (fusableRelu(graph, node, readers) ?? node).outputs[0];
}

/**
 * The elementwise function `node` computes as a QLinearLookup (src/graph/int8-lookup.ts), and the
 * value it writes: a unary op of LOOKUP_FUNCTIONS, or a Sigmoid whose only reader is Mul(x,
 * Sigmoid(x)) (SiLU, as exporters write it), which then writes the Mul's output.
 */
function lookupNode(graph: Graph, node: GraphNode, readers: ReadonlyMap<string, GraphNode[]>): { name: string; out: string; mul?: GraphNode } | undefined {
  if (!LOOKUP_FUNCTIONS.has(node.op) || node.op === 'SiLU' || node.inputs.length !== 1 || node.outputs.length !== 1) return undefined;
  if (node.attrs.kiln_activation !== undefined) return undefined;
  if (node.op === 'Sigmoid') {
    const s = node.outputs[0];
    const users = readers.get(s) ?? [];
    const mul = users.length === 1 ? users[0] : undefined;
    const x = node.inputs[0];
    if (mul && mul.op === 'Mul' && !graph.outputs.some((o) => o.name === s) && mul.inputs.length === 2 && ((mul.inputs[0] === x && mul.inputs[1] === s) || (mul.inputs[0] === s && mul.inputs[1] === x))) {
      return { name: 'SiLU', out: mul.outputs[0], mul };
    }
  }
  const name = lookupName(node);
  return name === undefined ? undefined : { name, out: node.outputs[0] };
}

/** Why `node` cannot become an int8 node, or undefined when it can. */
export function int8Obstacle(graph: Graph, node: GraphNode): string | undefined {
  if (LOOKUP_FUNCTIONS.has(node.op)) {
    if (graph.initializers.has(node.inputs[0])) return 'its input is a constant';
    // Readers only decide between SiLU and Sigmoid, both lookups: none are needed here.
    return lookupNode(graph, node, new Map()) === undefined ? `this ${node.op} has no int8 form` : undefined;
  }
  if (node.op === 'Add') return addObstacle(graph, node);
  if (node.op === 'Mul') {
    const operands = mulOperands(graph, node);
    return typeof operands === 'string' ? operands : undefined;
  }
  if (node.op === 'GlobalAveragePool' || node.op === 'ReduceMean') return meanObstacle(graph, node);
  if (node.op === 'AveragePool') return averagePoolObstacle(graph, node);
  if (!WEIGHTED_OPS.has(node.op)) return `${node.op} has no int8 form in Kiln's int8 IR`;
  const act = node.attrs.kiln_activation;
  if (act !== undefined && act !== 'Relu' && act !== 'Relu6') return `its fused activation ${String(act)} has no int8 form (only Relu and Relu6)`;
  if (graph.initializers.has(node.inputs[0])) return 'its input is a constant';
  const w = floatInit(graph, node.inputs[1]);
  if (!w) return 'its weights are not a float32 constant';
  if (node.op === 'Conv') {
    if (w.dims.length !== 4) return `only 2-D convolutions are quantized (weights of rank ${w.dims.length})`;
    const b = node.inputs[2];
    if (b && floatInit(graph, b)?.size !== w.dims[0]) return 'its bias is not a float32 constant with one value per output channel';
    return undefined;
  }
  if (w.dims.length !== 2) return `its weights have rank ${w.dims.length}, not 2`;
  if (node.op === 'Gemm') {
    if (Number(node.attrs.transA ?? 0) !== 0) return 'transA = 1 is not quantized';
    const n = Number(node.attrs.transB ?? 0) !== 0 ? w.dims[0] : w.dims[1];
    const c = node.inputs[2];
    if (c) {
      const ct = floatInit(graph, c);
      if (!ct || (ct.size !== n && ct.size !== 1)) return 'its C input is not a float32 constant of one value per output column';
    }
  }
  return undefined;
}

/** The values whose float ranges `convertToInt8` needs: inputs and outputs of the int8-capable nodes. */
export function valuesToCalibrate(prepared: Graph): string[] {
  const names = new Set<string>();
  const readers = consumers(prepared);
  for (const node of prepared.nodes) {
    if (int8Obstacle(prepared, node) !== undefined) continue;
    if (node.op === 'Add') {
      names.add(node.inputs[0]);
      names.add(node.inputs[1]);
      names.add(addOutput(prepared, node, readers));
      continue;
    }
    if (node.op === 'Mul') names.add(node.inputs[1]);
    const lookup = lookupNode(prepared, node, readers);
    if (lookup) {
      names.add(node.inputs[0]);
      names.add(lookup.out);
      continue;
    }
    names.add(node.inputs[0]);
    // A MatMul whose bias Add is folded in writes the Add's output (the report measures it).
    names.add(matmulBiasAdd(prepared, node, readers)?.add.outputs[0] ?? node.outputs[0]);
  }
  return [...names];
}

interface Converted {
  weight: Tensor<'int8'>;
  scales: Float32Array;
  bias: Int32Array | undefined;
}

/** Weights as [O, ...] float rows (Gemm: op(B)ᵀ scaled by alpha), per-channel or per-tensor int8. */
function quantizeWeights(w: Float32Array, dims: number[], perChannel: boolean, name: string): { q: Int8Array; scales: Float32Array } {
  let params: PerChannelQuantParams;
  if (perChannel) {
    params = perChannelQuantParams(w, dims, 'int8', name);
  } else {
    const ranges = channelRanges(w, dims, name);
    const range = { min: Math.min(...ranges.map((r) => r.min)), max: Math.max(...ranges.map((r) => r.max)) };
    const p = quantParams(range, 'int8', name);
    params = { kind: 'int8', axis: 0, scales: new Float32Array(dims[0]).fill(p.scale), zeroPoints: new Int32Array(dims[0]) };
  }
  const q = quantizePerChannel(w, dims, params) as Int8Array;
  return { q, scales: perChannel ? params.scales : params.scales.subarray(0, 1) };
}

function quantizeBias(bias: ArrayLike<number> | undefined, channels: number, xScale: number, scales: Float32Array): Int32Array | undefined {
  if (!bias) return undefined;
  const out = new Int32Array(channels);
  for (let o = 0; o < channels; o++) {
    const s = Math.fround(xScale * scales[scales.length === 1 ? 0 : o]);
    const q = roundHalfEven(bias[bias.length === 1 ? 0 : o] / s);
    out[o] = q < INT32_MIN ? INT32_MIN : q > INT32_MAX ? INT32_MAX : q;
  }
  return out;
}

function convertWeights(graph: Graph, node: GraphNode, xScale: number, perChannel: boolean, foldedBias?: Float32Array): Converted {
  const w = floatInit(graph, node.inputs[1])!;
  if (node.op === 'Conv') {
    const { q, scales } = quantizeWeights(w.data, [...w.dims], perChannel, node.inputs[1]);
    const bias = floatInit(graph, node.inputs[2])?.data;
    return { weight: new Tensor('int8', q, w.dims), scales, bias: quantizeBias(bias, w.dims[0], xScale, scales) };
  }
  // Gemm / MatMul → W[n][k] = alpha * op(B)[k][n], stored with transB = 1.
  const transB = node.op === 'Gemm' && Number(node.attrs.transB ?? 0) !== 0;
  const alpha = node.op === 'Gemm' ? Number(node.attrs.alpha ?? 1) : 1;
  const beta = node.op === 'Gemm' ? Number(node.attrs.beta ?? 1) : 1;
  const [k, n] = transB ? [w.dims[1], w.dims[0]] : [w.dims[0], w.dims[1]];
  const rows = new Float32Array(n * k);
  for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) rows[j * k + p] = alpha * (transB ? w.data[j * k + p] : w.data[p * n + j]);
  const { q, scales } = quantizeWeights(rows, [n, k], perChannel, node.inputs[1]);
  const c = node.op === 'Gemm' ? floatInit(graph, node.inputs[2])?.data : foldedBias;
  const bias = c ? Array.from({ length: n }, (_, j) => beta * c[c.length === 1 ? 0 : j]) : undefined;
  return { weight: new Tensor('int8', q, [n, k]), scales, bias: quantizeBias(bias, n, xScale, scales) };
}

function checkRanges(ranges: unknown): ReadonlyMap<string, FloatRange> {
  if (!(ranges instanceof Map)) throw typeError('ranges', 'a Map of value name to {min, max}', ranges);
  return ranges as ReadonlyMap<string, FloatRange>;
}

/** Which calibration produced the ranges, for the report (set by quantize / QAT). */
export interface ConvertProvenance {
  calibration?: QuantizationReport['calibration'];
}

/**
 * Builds the int8 graph from a prepared float graph (see {@link prepareForQuantization}) and the
 * float range of each value that gets quantized.
 * @param prepared the float graph as `prepareForQuantization` returned it
 * @param ranges value name → calibrated [min, max]; needed for the input and output of every
 *   int8-capable node (see {@link valuesToCalibrate}); a quantized layer output without a range is
 *   dequantized by its layer instead
 * @returns the int8 graph (report in `metadata.kiln_quantization`) and the report (no clipping or
 *   SQNR figures: those need data, see `quantize`)
 * @throws KilnError ERR_KILN_UNSUPPORTED_OP with `options.strict` when a node must stay fp32;
 *   KilnError ERR_KILN_INVALID_ARG when a value that must be quantized has no range
 */
export function convertToInt8(
  prepared: Graph,
  ranges: ReadonlyMap<string, FloatRange>,
  options?: ConvertOptions,
  provenance: ConvertProvenance = {},
): { graph: Graph; report: QuantizationReport } {
  if (prepared === null || typeof prepared !== 'object' || !Array.isArray(prepared.nodes) || !(prepared.initializers instanceof Map)) {
    throw typeError('prepared', 'a Graph', prepared);
  }
  checkRanges(ranges);
  const opts = checkOptions<ConvertOptions>('options', options);
  const perChannel = optional(opts.perChannel, true, (v) => boolean('options.perChannel', v));
  const activations = optional<QuantKind>(opts.activations, 'uint8', (v) => oneOf('options.activations', v, ['uint8', 'int8'] as const));
  const strict = optional(opts.strict, false, (v) => boolean('options.strict', v));

  const graph = prepared;
  const readers = consumers(graph);
  const graphOutputs = new Set(graph.outputs.map((o) => o.name));
  const taken = new Set<string>();
  const fresh = (base: string) => freshName(graph, base, taken);
  const nodes: GraphNode[] = [];
  const initializers = new Map(graph.initializers);
  const quantTwin = new Map<string, string>(); // float value name → its quantized value
  const twinParams = new Map<string, QuantParams>(); // quantized value → parameters
  const producedQuantized = new Set<string>(); // float names whose value exists only quantized (so far)
  const layers: LayerReport[] = [];
  const adds: AddReport[] = [];
  const lookupReports: LookupReport[] = [];
  const fp32Nodes: Fp32Node[] = [];

  const paramsFor = (value: string, node: GraphNode): QuantParams => {
    const range = ranges.get(value);
    if (!range) {
      throw new KilnError(ErrorCode.INVALID_ARG, `Expected a calibrated range for value '${value}' (read by ${node.op} '${node.name}') in ranges but received none`);
    }
    return quantParams(range, activations, `ranges '${value}'`);
  };
  /** The quantized name of `value`, inserting a QuantizeLinear if it is float. */
  const quantized = (value: string, reader: GraphNode): string => {
    const twin = quantTwin.get(value);
    if (twin) return twin;
    const p = paramsFor(value, reader);
    const q = fresh(`${value}_quantized`);
    nodes.push({ name: fresh(`${value}_QuantizeLinear`), op: 'QuantizeLinear', inputs: [value], outputs: [q], attrs: { scale: p.scale, zero_point: p.zeroPoint, dtype: p.kind } });
    quantTwin.set(value, q);
    twinParams.set(q, p);
    return q;
  };
  /** `value` as float, inserting a DequantizeLinear if it only exists quantized. */
  const float = (value: string): string => {
    if (producedQuantized.has(value)) {
      const q = quantTwin.get(value)!;
      const p = twinParams.get(q)!;
      nodes.push({ name: fresh(`${value}_DequantizeLinear`), op: 'DequantizeLinear', inputs: [q], outputs: [value], attrs: { scale: p.scale, zero_point: p.zeroPoint } });
      producedQuantized.delete(value);
    }
    return value;
  };
  /** An int8 Add needs the ranges of both inputs and of its output (QAT observes no Add output). */
  const obstacleOf = (n: GraphNode): string | undefined => {
    const obstacle = int8Obstacle(graph, n);
    if (obstacle === undefined && n.attrs.kiln_activation === 'Relu6') {
      // An int8 Relu6 is a Relu whose quantized output range ends at 6 or below (the calibrated range
      // of a Relu6's output does), so the u8 ceiling is the clip; a float output gets a float Clip.
      const range = ranges.get(n.outputs[0]);
      if (range !== undefined && range.max > 6) return `its fused Relu6's output range ends at ${range.max}, above 6`;
    }
    if (obstacle === undefined && lookups.has(n)) {
      const { out } = lookups.get(n)!;
      const missing = [n.inputs[0], out].find((v) => !ranges.has(v));
      if (missing !== undefined) return `no range was given for its value '${missing}'`;
      if (graphOutputs.has(out)) return 'its output is a graph output (kept float32)';
      return undefined;
    }
    if (obstacle === undefined && (n.op === 'Mul' || AVERAGING_OPS.has(n.op))) {
      const missing = [...n.inputs.slice(0, n.op === 'Mul' ? 2 : 1), n.outputs[0]].find((v) => !ranges.has(v));
      if (missing !== undefined) return `no range was given for its value '${missing}'`;
      if (graphOutputs.has(n.outputs[0])) return 'its output is a graph output (kept float32)';
      return undefined;
    }
    if (obstacle !== undefined || n.op !== 'Add') return obstacle;
    const missing = [n.inputs[0], n.inputs[1], addOutput(graph, n, readers)].find((v) => !ranges.has(v));
    return missing === undefined ? undefined : `no range was given for its value '${missing}'`;
  };
  const lookups = new Map<GraphNode, { name: string; out: string; mul?: GraphNode }>();
  for (const n of graph.nodes) {
    const l = int8Obstacle(graph, n) === undefined ? lookupNode(graph, n, readers) : undefined;
    if (l) lookups.set(n, l);
  }
  const capable = new Map<GraphNode, string | undefined>(graph.nodes.map((n) => [n, obstacleOf(n)]));
  // Such a Transpose runs on quantized values only for a reader that does too; before a float op
  // (ConvNeXt's LayerNorm) the op before it keeps its float output rather than round the values
  // to codes for nothing.
  const transposeFeedsQuantized = new Map<GraphNode, boolean>();
  const runsQuantized = (n: GraphNode): boolean => {
    if (transposeRunsOnCodes(n)) {
      let v = transposeFeedsQuantized.get(n);
      if (v === undefined) {
        transposeFeedsQuantized.set(n, false);  // a cycle cannot occur in a DAG; this bounds the walk anyway
        v = !graphOutputs.has(n.outputs[0]) && (readers.get(n.outputs[0]) ?? []).some(runsQuantized);
        transposeFeedsQuantized.set(n, v);
      }
      return v;
    }
    return capable.get(n) === undefined || passesThrough(n) || n.op === 'Concat';
  };
  // A lookup, QLinearMul or int8 average pool pays off only when its output is read
  // quantized (a float reader would dequantize it at once: one more rounding and no pass saved);
  // decided before any producer picks its output.
  for (const n of graph.nodes) {
    const out = lookups.get(n)?.out ?? (n.op === 'Mul' || AVERAGING_OPS.has(n.op) ? n.outputs[0] : undefined);
    if (out === undefined || capable.get(n) !== undefined) continue;
    if (!(readers.get(out) ?? []).some(runsQuantized)) capable.set(n, 'no reader of its output runs on quantized values (kept float32)');
  }
  const nativeQuantized = new Set<string>(); // values whose producer ran int8
  const fusedNodes = new Set<GraphNode>();
  for (const n of graph.nodes) {
    const relu = capable.get(n) === undefined ? fusableRelu(graph, n, readers) : undefined;
    if (relu) fusedNodes.add(relu);
  }

  for (const [n, l] of lookups) if (l.mul && capable.get(n) === undefined) fusedNodes.add(l.mul);
  const biasAdds = new Map<GraphNode, { add: GraphNode; bias: Float32Array }>();
  for (const n of graph.nodes) {
    const fold = capable.get(n) === undefined ? matmulBiasAdd(graph, n, readers) : undefined;
    if (fold === undefined) continue;
    biasAdds.set(n, fold);
    fusedNodes.add(fold.add);
  }

  for (const node of graph.nodes) {
    if (fusedNodes.has(node)) continue; // written by the QLinearAdd, SiLU lookup or QLinearGemm before it
    const lookup = capable.get(node) === undefined ? lookups.get(node) : undefined;
    if (lookup && nativeQuantized.has(node.inputs[0])) {
      const xq = quantTwin.get(node.inputs[0])!;
      const xp = twinParams.get(xq)!;
      const yp = paramsFor(lookup.out, node);
      const y = fresh(`${lookup.out}_quantized`);
      const attrs: Attrs = { kiln_function: lookup.name, ...lookupParams(node), x_scale: xp.scale, x_zero_point: xp.zeroPoint, y_scale: yp.scale, y_zero_point: yp.zeroPoint, y_dtype: yp.kind };
      nodes.push({ name: node.name, op: 'QLinearLookup', inputs: [xq], outputs: [y], attrs });
      quantTwin.set(lookup.out, y);
      twinParams.set(y, yp);
      producedQuantized.add(lookup.out);
      nativeQuantized.add(lookup.out);
      lookupReports.push({ node: node.name, function: lookup.name, input: node.inputs[0], output: lookup.out, ...(lookup.mul ? { fusedNode: lookup.mul.name } : {}) });
      continue;
    }
    if (capable.get(node) === undefined && (node.op === 'Mul' || AVERAGING_OPS.has(node.op))) {
      const out = node.outputs[0];
      const yp = paramsFor(out, node);
      const y = fresh(`${out}_quantized`);
      const attrs: Attrs = { y_scale: yp.scale, y_zero_point: yp.zeroPoint, y_dtype: yp.kind };
      if (node.op === 'Mul') {
        const [full, other] = mulOperands(graph, node) as [string, string];
        const [aq, bq] = [quantized(full, node), quantized(other, node)];
        const [ap, bp] = [twinParams.get(aq)!, twinParams.get(bq)!];
        Object.assign(attrs, { a_scale: ap.scale, a_zero_point: ap.zeroPoint, b_scale: bp.scale, b_zero_point: bp.zeroPoint });
        nodes.push({ name: node.name, op: 'QLinearMul', inputs: [aq, bq], outputs: [y], attrs });
      } else {
        const xq = quantized(node.inputs[0], node);
        const xp = twinParams.get(xq)!;
        Object.assign(attrs, { x_scale: xp.scale, x_zero_point: xp.zeroPoint });
        if (node.op === 'AveragePool') {
          // The window's attributes as they are (kernel_shape, strides, pads, ceil_mode, ...).
          nodes.push({ name: node.name, op: 'QLinearAveragePool', inputs: [xq], outputs: [y], attrs: { ...node.attrs, ...attrs } });
        } else {
          nodes.push({ name: node.name, op: 'QLinearGlobalAveragePool', inputs: [xq], outputs: [y], attrs });
        }
      }
      quantTwin.set(out, y);
      twinParams.set(y, yp);
      producedQuantized.add(out);
      nativeQuantized.add(out);
      continue;
    }
    if (lookup) {
      // A function whose input stayed float runs as it was (a SiLU: its Sigmoid and its Mul).
      for (const n of lookup.mul ? [node, lookup.mul] : [node]) {
        fp32Nodes.push({ node: n.name, op: n.op, reason: 'its input is float32' });
        nodes.push({ ...n, inputs: n.inputs.map((i) => (i ? float(i) : i)) });
      }
      continue;
    }
    const obstacle = capable.get(node);
    if (obstacle === undefined && node.op === 'Add') {
      const relu = fusableRelu(graph, node, readers);
      const out = (relu ?? node).outputs[0];
      const [aq, bq] = [quantized(node.inputs[0], node), quantized(node.inputs[1], node)];
      const [ap, bp] = [twinParams.get(aq)!, twinParams.get(bq)!];
      const yp = paramsFor(out, node);
      const y = fresh(`${out}_quantized`);
      quantTwin.set(out, y);
      twinParams.set(y, yp);
      producedQuantized.add(out);
      nativeQuantized.add(out);
      const activation = relu || node.attrs.kiln_activation === 'Relu' ? 'Relu' : undefined;
      const attrs: Attrs = {
        a_scale: ap.scale,
        a_zero_point: ap.zeroPoint,
        b_scale: bp.scale,
        b_zero_point: bp.zeroPoint,
        y_scale: yp.scale,
        y_zero_point: yp.zeroPoint,
        y_dtype: yp.kind,
      };
      if (activation) attrs.kiln_activation = activation;
      nodes.push({ name: node.name, op: 'QLinearAdd', inputs: [aq, bq], outputs: [y], attrs });
      adds.push({
        node: node.name,
        inputs: [node.inputs[0], node.inputs[1]],
        output: out,
        inputScales: [ap.scale, bp.scale],
        inputZeroPoints: [ap.zeroPoint, bp.zeroPoint],
        outputScale: yp.scale,
        outputZeroPoint: yp.zeroPoint,
        outputDtype: yp.kind,
        ...(activation ? { activation } : {}),
        ...(relu ? { fusedNode: relu.name } : {}),
      });
      continue;
    }
    if (obstacle === undefined) {
      const x = node.inputs[0];
      const xq = quantized(x, node);
      const xp = twinParams.get(xq)!;
      const fold = biasAdds.get(node);
      const { weight, scales, bias } = convertWeights(graph, node, xp.scale, perChannel, fold?.bias);
      const out = fold ? fold.add.outputs[0] : node.outputs[0];
      const quantOut = ranges.has(out) && !graphOutputs.has(out) && (readers.get(out) ?? []).some(runsQuantized);
      const yp = quantOut ? paramsFor(out, node) : undefined;
      const wName = fresh(`${node.inputs[1]}_int8`);
      const sName = fresh(`${node.inputs[1]}_scale`);
      initializers.set(wName, weight);
      initializers.set(sName, new Tensor('float32', scales, [scales.length]));
      let bName = '';
      if (bias) {
        bName = fresh(`${node.name}_bias_int32`);
        initializers.set(bName, new Tensor('int32', bias, [bias.length]));
      }
      const { kiln_activation: act, ...rest } = node.attrs;
      const isConv = node.op === 'Conv';
      const attrs: Attrs = isConv
        ? { ...rest, x_scale: xp.scale, x_zero_point: xp.zeroPoint }
        : { transB: 1, a_scale: xp.scale, a_zero_point: xp.zeroPoint };
      if (yp) Object.assign(attrs, { y_scale: yp.scale, y_zero_point: yp.zeroPoint, y_dtype: yp.kind });
      if (act !== undefined) attrs.kiln_activation = act === 'Relu6' ? 'Relu' : act;
      let y = out;
      // A Relu6 with a float output: the node writes its Relu, a float Clip clips at 6.
      const clipAfter = act === 'Relu6' && !yp;
      if (clipAfter) y = fresh(`${out}_relu`);
      if (yp) {
        y = fresh(`${out}_quantized`);
        quantTwin.set(out, y);
        twinParams.set(y, yp);
        producedQuantized.add(out);
        nativeQuantized.add(out);
      }
      const int8Op = isConv ? 'QLinearConv' : 'QLinearGemm';
      nodes.push({ name: node.name, op: int8Op, inputs: [xq, wName, sName, bName], outputs: [y], attrs });
      if (clipAfter) nodes.push({ name: fresh(`${node.name}_relu6`), op: 'Clip', inputs: [y], outputs: [out], attrs: { min: 0, max: 6 } });
      let wMin = Infinity;
      let wMax = -Infinity;
      for (const s of scales) {
        wMin = Math.min(wMin, s);
        wMax = Math.max(wMax, s);
      }
      layers.push({
        node: node.name,
        op: node.op,
        input: x,
        output: out,
        int8Op,
        inputScale: xp.scale,
        inputZeroPoint: xp.zeroPoint,
        ...(yp ? { outputScale: yp.scale, outputZeroPoint: yp.zeroPoint } : {}),
        outputDtype: yp ? yp.kind : 'float32',
        weightScaleMin: wMin,
        weightScaleMax: wMax,
        perChannel,
        ...(act !== undefined ? { activation: String(act) } : {}),
        ...(fold ? { fusedNode: fold.add.name } : {}),
      });
      continue;
    }
    if (node.op === 'Concat' && node.inputs.length > 1 && node.inputs.every((i) => nativeQuantized.has(i))) {
      // QLinearConcat: each input requantized to parameters covering every input's range (its
      // own when all inputs share them: then a plain copy).
      const qs = node.inputs.map((i) => quantTwin.get(i)!);
      const ps = qs.map((q) => twinParams.get(q)!);
      const same = ps.every((p) => p.scale === ps[0].scale && p.zeroPoint === ps[0].zeroPoint && p.kind === ps[0].kind);
      let yp = ps[0];
      if (!same) {
        const { qmin, qmax } = storageRange(ps[0].kind);
        const min = Math.min(...ps.map((p) => (qmin - p.zeroPoint) * p.scale));
        const max = Math.max(...ps.map((p) => (qmax - p.zeroPoint) * p.scale));
        yp = quantParams({ min, max }, ps[0].kind, node.outputs[0]);
      }
      const out = node.outputs[0];
      const y = fresh(`${out}_quantized`);
      nodes.push({
        name: node.name,
        op: 'QLinearConcat',
        inputs: qs,
        outputs: [y],
        attrs: { axis: node.attrs.axis ?? 1, x_scales: ps.map((p) => p.scale), x_zero_points: ps.map((p) => p.zeroPoint), y_scale: yp.scale, y_zero_point: yp.zeroPoint, y_dtype: yp.kind },
      });
      quantTwin.set(out, y);
      twinParams.set(y, yp);
      producedQuantized.add(out);
      nativeQuantized.add(out);
      continue;
    }
    if (node.op === 'Split' && nativeQuantized.has(node.inputs[0])) {
      // Every part keeps the input's parameters.
      const xq = quantTwin.get(node.inputs[0])!;
      const ys = node.outputs.map((o) => (o === '' ? '' : fresh(`${o}_quantized`)));
      nodes.push({ ...node, inputs: [xq], outputs: ys });
      node.outputs.forEach((o, i) => {
        if (o === '') return;
        quantTwin.set(o, ys[i]);
        twinParams.set(ys[i], twinParams.get(xq)!);
        producedQuantized.add(o);
        nativeQuantized.add(o);
      });
      continue;
    }
    if (passesThrough(node) && nativeQuantized.has(node.inputs[0])) {
      const xq = quantTwin.get(node.inputs[0])!;
      const out = node.outputs[0];
      const y = fresh(`${out}_quantized`);
      nodes.push({ ...node, op: node.op === 'Dropout' ? 'Identity' : node.op, inputs: [xq], outputs: [y], attrs: node.op === 'Dropout' ? {} : node.attrs });
      quantTwin.set(out, y);
      twinParams.set(y, twinParams.get(xq)!);
      producedQuantized.add(out);
      nativeQuantized.add(out);
      continue;
    }
    fp32Nodes.push({ node: node.name, op: node.op, reason: passesThrough(node) || obstacle === undefined ? 'its input is float32' : obstacle });
    nodes.push({ ...node, inputs: node.inputs.map((i) => (i ? float(i) : i)) });
  }
  for (const o of graph.outputs) float(o.name);

  if (strict && fp32Nodes.length > 0) {
    throw new KilnError(
      ErrorCode.UNSUPPORTED_OP,
      `Expected only nodes with an int8 form for a strict int8 graph but received ${fp32Nodes.length} that would stay fp32: ` +
        fp32Nodes.map((n) => `${n.op} '${n.node}' (${n.reason})`).join('; '),
    );
  }
  const used = new Set<string>();
  for (const n of nodes) for (const i of n.inputs) used.add(i);
  for (const name of [...initializers.keys()]) if (!used.has(name)) initializers.delete(name);

  const report: QuantizationReport = {
    mode: 'static',
    weights: { dtype: 'int8', symmetric: true, perChannel },
    activations,
    calibration: provenance.calibration ?? { method: 'ranges' },
    layers,
    ...(adds.length > 0 ? { adds } : {}),
    ...(lookupReports.length > 0 ? { lookups: lookupReports } : {}),
    fp32Nodes,
  };
  const out: Graph = {
    ...graph,
    nodes,
    initializers,
    metadata: { ...graph.metadata, kiln_quantization: reportJson(report) },
  };
  return { graph: out, report };
}
