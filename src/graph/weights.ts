/**
 * The weighted layers of a graph (Conv, Gemm, MatMul and their int8 forms) with their weight seen
 * as [outputs, reduction]: what `kiln info`'s weight table and the compression record's per-layer
 * figures are both computed from, so they count sparsity and patterns the same way.
 */
import type { Graph, GraphNode } from './ir.js';
import type { Tensor } from '../tensor.js';

export const WEIGHT_OPS: ReadonlySet<string> = new Set(['Conv', 'Gemm', 'MatMul', 'QLinearConv', 'QLinearGemm', 'DynamicQGemm', 'ConvInteger', 'MatMulInteger']);

export interface WeightedNode {
  node: GraphNode;
  /** The weight initializer's name and tensor (as stored). */
  weightName: string;
  weight: Tensor;
  /** Elements per kernel position of a conv (kh * kw), else 1: units along the reduction run over input channels. */
  spatial: number;
}

/** Every node of a weighted op with a constant weight of rank 2 or more, in graph order. */
export function weightedNodes(graph: Graph): WeightedNode[] {
  const out: WeightedNode[] = [];
  for (const node of graph.nodes) {
    if (!WEIGHT_OPS.has(node.op)) continue;
    const weightName = node.inputs.find((i) => (graph.initializers.get(i)?.dims.length ?? 0) >= 2);
    if (weightName === undefined) continue;
    const weight = graph.initializers.get(weightName)!;
    const spatial = node.op === 'Conv' || node.op === 'QLinearConv' ? weight.dims.slice(2).reduce((a, b) => a * b, 1) : 1;
    out.push({ node, weightName, weight, spatial });
  }
  return out;
}

/** `weight` as [outputs, reduction] row-major: a Gemm without transB and a MatMul store [reduction, outputs]. */
export function outputMajor(node: { op: string; attrs: Record<string, unknown> }, weight: Tensor): { data: ArrayLike<number>; outputs: number; reduction: number } {
  const [first, ...rest] = weight.dims;
  const size = rest.reduce((a, b) => a * b, 1);
  const stored = weight.data as ArrayLike<number>;
  const transposed = (node.op === 'Gemm' && Number(node.attrs.transB ?? 0) === 0) || node.op === 'MatMul' || node.op === 'MatMulInteger';
  if (!transposed || weight.dims.length !== 2) return { data: stored, outputs: first, reduction: size };
  const data = new Float64Array(stored.length);
  for (let k = 0; k < first; k++) for (let o = 0; o < size; o++) data[o * first + k] = stored[k * size + o];
  return { data, outputs: size, reduction: first };
}
