/**
 * Fuses Relu, LeakyRelu and Clip into the Conv, ConvTranspose or Gemm before them, as the
 * attribute `kiln_activation` ('Relu' | 'Relu6' | 'LeakyRelu' | 'Clip', with
 * `kiln_activation_alpha` / `kiln_activation_min` / `kiln_activation_max`): one pass over the
 * output instead of two. The ONNX exporter expands it back into standard nodes.
 */
import type { Attrs, Graph, GraphNode } from '../ir.js';
import { constantScalar, consumers, outputNames, producers } from './uses.js';

const PRODUCERS = new Set(['Conv', 'ConvTranspose', 'Gemm']);
const F32_MAX = 3.4028234663852886e38;

/** The kiln_activation attributes for an activation node, or undefined if it cannot fuse. */
export function activationOf(graph: Graph, node: GraphNode): Attrs | undefined {
  if (node.op === 'Relu') return { kiln_activation: 'Relu' };
  if (node.op === 'LeakyRelu') return { kiln_activation: 'LeakyRelu', kiln_activation_alpha: Number(node.attrs.alpha ?? 0.01) };
  if (node.op !== 'Clip') return undefined;
  let min = node.attrs.min as number | undefined;
  let max = node.attrs.max as number | undefined;
  if (node.inputs[1]) {
    min = constantScalar(graph, node.inputs[1]);
    if (min === undefined) return undefined;
  }
  if (node.inputs[2]) {
    max = constantScalar(graph, node.inputs[2]);
    if (max === undefined) return undefined;
  }
  // The canonical form writes an absent bound as -/+FLT_MAX.
  const noMax = max === undefined || max >= F32_MAX;
  const noMin = min === undefined || min <= -F32_MAX;
  if (min === 0 && max === 6) return { kiln_activation: 'Relu6' };
  if (min === 0 && noMax) return { kiln_activation: 'Relu' };
  const attrs: Attrs = { kiln_activation: 'Clip' };
  if (!noMin) attrs.kiln_activation_min = min!;
  if (!noMax) attrs.kiln_activation_max = max!;
  return attrs;
}

export function fuseActivations(graph: Graph): Graph {
  const readers = consumers(graph);
  const writers = producers(graph);
  const outs = outputNames(graph);
  const replaced = new Map<GraphNode, GraphNode>();
  const dropped = new Set<GraphNode>();
  for (const act of graph.nodes) {
    const attrs = activationOf(graph, act);
    if (!attrs) continue;
    const x = act.inputs[0];
    const producer = writers.get(x);
    if (!producer || !PRODUCERS.has(producer.op) || producer.attrs.kiln_activation !== undefined || replaced.has(producer)) continue;
    if (outs.has(x) || (readers.get(x) ?? []).length !== 1 || producer.outputs[0] !== x) continue;
    replaced.set(producer, { ...producer, outputs: [act.outputs[0]], attrs: { ...producer.attrs, ...attrs } });
    dropped.add(act);
  }
  if (dropped.size === 0) return graph;
  const nodes = graph.nodes.filter((n) => !dropped.has(n)).map((n) => replaced.get(n) ?? n);
  return { ...graph, nodes };
}
