/**
 * Folds an inference BatchNormalization into the Conv, ConvTranspose or Gemm that feeds it:
 * y = a * conv(x) + b with a = scale / sqrt(var + eps), b = B - mean * a becomes a conv with
 * weights scaled per output channel and a new bias (computed in float64). A BatchNormalization
 * with no such producer stays (the runtime runs it as a per-channel affine).
 */
import { Tensor } from '../../tensor.js';
import type { Graph, GraphNode } from '../ir.js';
import { consumers, freshName, outputNames, producers } from './uses.js';

const FOLDABLE = new Set(['Conv', 'ConvTranspose', 'Gemm']);

function f32(graph: Graph, name: string | undefined): Float32Array | undefined {
  if (!name) return undefined;
  const t = graph.initializers.get(name);
  return t && t.type === 'float32' ? (t.data as Float32Array) : undefined;
}

export function foldBatchNorm(graph: Graph): Graph {
  const readers = consumers(graph);
  const writers = producers(graph);
  const outs = outputNames(graph);
  const initializers = new Map(graph.initializers);
  const taken = new Set<string>();
  const replaced = new Map<GraphNode, GraphNode>();
  const dropped = new Set<GraphNode>();
  for (const bn of graph.nodes) {
    if (bn.op !== 'BatchNormalization' || bn.outputs.filter(Boolean).length !== 1 || Number(bn.attrs.training_mode ?? 0) !== 0) continue;
    const x = bn.inputs[0];
    const conv = writers.get(x);
    if (!conv || !FOLDABLE.has(conv.op) || replaced.has(conv) || conv.attrs.kiln_activation !== undefined) continue;
    if (outs.has(x) || (readers.get(x) ?? []).length !== 1 || conv.outputs[0] !== x) continue;
    const [scale, beta, mean, variance] = bn.inputs.slice(1, 5).map((n) => f32(graph, n));
    const weightName = conv.inputs[1];
    const w = graph.initializers.get(weightName);
    if (!scale || !beta || !mean || !variance || !w || w.type !== 'float32') continue;
    const channels = scale.length;
    if ([beta, mean, variance].some((v) => v.length !== channels)) continue;
    const eps = Number(bn.attrs.epsilon ?? 1e-5);
    const a = new Float64Array(channels);
    const b = new Float64Array(channels);
    for (let c = 0; c < channels; c++) {
      a[c] = scale[c] / Math.sqrt(variance[c] + eps);
      b[c] = beta[c] - mean[c] * a[c];
    }
    const folded = foldInto(conv, w, graph.initializers.get(conv.inputs[2] ?? ''), a, b);
    if (!folded) continue;
    const wName = freshName(graph, `${weightName}_bn`, taken);
    const bName = freshName(graph, `${bn.name}_bias`, taken);
    initializers.set(wName, folded.weight);
    initializers.set(bName, folded.bias);
    const attrs = conv.op === 'Gemm' ? { ...conv.attrs, alpha: 1, beta: 1 } : conv.attrs;
    replaced.set(conv, { ...conv, inputs: [conv.inputs[0], wName, bName], outputs: [bn.outputs[0]], attrs });
    dropped.add(bn);
  }
  if (dropped.size === 0) return graph;
  const nodes = graph.nodes.filter((n) => !dropped.has(n)).map((n) => replaced.get(n) ?? n);
  return { ...graph, nodes, initializers };
}

/** The scaled weight and new bias, or undefined when the shapes do not fit a per-channel fold. */
function foldInto(conv: GraphNode, w: Tensor, bias: Tensor | undefined, a: Float64Array, b: Float64Array): { weight: Tensor; bias: Tensor } | undefined {
  const channels = a.length;
  const wd = w.data as Float32Array;
  const out = new Float32Array(wd.length);
  const newBias = new Float32Array(channels);
  const oldBias = bias && bias.type === 'float32' ? (bias.data as Float32Array) : undefined;
  if (conv.op === 'Conv') {
    if (w.dims[0] !== channels || (oldBias && oldBias.length !== channels)) return undefined;
    const per = wd.length / channels;
    for (let o = 0; o < channels; o++) {
      const s = a[o];
      const end = (o + 1) * per;
      for (let i = o * per; i < end; i++) out[i] = wd[i] * s;
    }
    for (let o = 0; o < channels; o++) newBias[o] = (oldBias ? oldBias[o] : 0) * a[o] + b[o];
  } else if (conv.op === 'ConvTranspose') {
    const group = Number(conv.attrs.group ?? 1);
    const [cin, coutPerGroup] = w.dims;
    if (coutPerGroup * group !== channels || (oldBias && oldBias.length !== channels)) return undefined;
    const spatial = wd.length / (cin * coutPerGroup);
    const cinPerGroup = cin / group;
    for (let ci = 0; ci < cin; ci++) {
      const g = Math.floor(ci / cinPerGroup);
      for (let j = 0; j < coutPerGroup; j++) {
        const s = a[g * coutPerGroup + j];
        const base = (ci * coutPerGroup + j) * spatial;
        for (let k = base; k < base + spatial; k++) out[k] = wd[k] * s;
      }
    }
    for (let o = 0; o < channels; o++) newBias[o] = (oldBias ? oldBias[o] : 0) * a[o] + b[o];
  } else {
    // Gemm: y = alpha * A op(B) + beta * C, column j scaled by a[j].
    if (Number(conv.attrs.transA ?? 0) !== 0 || w.dims.length !== 2) return undefined;
    const transB = Number(conv.attrs.transB ?? 0) !== 0;
    const [rows, cols] = w.dims;
    const n = transB ? rows : cols;
    if (n !== channels) return undefined;
    const alpha = Number(conv.attrs.alpha ?? 1);
    const beta = Number(conv.attrs.beta ?? 1);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) out[r * cols + c] = wd[r * cols + c] * alpha * a[transB ? r : c];
    }
    if (oldBias && oldBias.length !== 1 && oldBias.length !== channels) return undefined;
    for (let j = 0; j < channels; j++) {
      const cj = oldBias ? oldBias[oldBias.length === 1 ? 0 : j] : 0;
      newBias[j] = beta * cj * a[j] + b[j];
    }
  }
  return { weight: new Tensor('float32', out, w.dims), bias: new Tensor('float32', newBias, [channels]) };
}
