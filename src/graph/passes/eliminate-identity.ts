/**
 * Removes nodes that copy their input unchanged, their readers reading the input directly:
 * Identity, Dropout (inference), a Concat of one input and a Pad of nothing (torchvision's
 * DenseNet writes both: `torch.cat([x], 1)` in each block's first layer, and a zero Pad before
 * each transition's AveragePool). Left in place they cost a copy each, and in an int8 graph they
 * would run in float between int8 layers.
 */
import type { Graph, GraphNode } from '../ir.js';
import { consumers, outputNames, producers, renameInputs } from './uses.js';

const IDENTITY_OPS = new Set(['Identity', 'Dropout']);

function copiesInput(node: GraphNode): boolean {
  if (IDENTITY_OPS.has(node.op)) return true;
  if (node.op === 'Concat') return node.inputs.length === 1;
  if (node.op !== 'Pad') return false;
  // Pads as an attribute (the importer's form), none given as a run-time input.
  const pads = node.attrs.pads;
  return node.inputs.slice(1).every((i) => !i) && Array.isArray(pads) && pads.length > 0 && pads.every((p) => p === 0);
}

export function eliminateIdentity(graph: Graph): Graph {
  const outs = outputNames(graph);
  const readers = consumers(graph);
  const writers = producers(graph);
  const inputs = new Set(graph.inputs.map((i) => i.name));
  const renames = new Map<string, string>();
  const renamedOutputs = new Map<string, string>();  // producer output → graph output name
  const dropped = new Set<GraphNode>();
  for (const node of graph.nodes) {
    if (!copiesInput(node) || node.inputs.length < 1 || !node.inputs[0]) continue;
    // Dropout's mask output must be unused.
    if (node.outputs.slice(1).some((o) => o && (readers.has(o) || outs.has(o)))) continue;
    const x = node.inputs[0];
    const y = node.outputs[0];
    if (!outs.has(y)) {
      renames.set(y, renamedOutputs.get(x) ?? x);
      dropped.add(node);
    } else if (!renames.has(x) && !inputs.has(x) && !outs.has(x) && !graph.initializers.has(x) && writers.has(x) && (readers.get(x) ?? []).length === 1 && !renamedOutputs.has(x)) {
      // The graph output keeps its name: the producer writes it directly.
      renamedOutputs.set(x, y);
      dropped.add(node);
    }
  }
  if (dropped.size === 0) return graph;
  let nodes = graph.nodes.filter((n) => !dropped.has(n));
  nodes = nodes.map((n) => (n.outputs.some((o) => renamedOutputs.has(o)) ? { ...n, outputs: n.outputs.map((o) => renamedOutputs.get(o) ?? o) } : n));
  for (const [from, to] of renamedOutputs) renames.set(from, to);
  nodes = renameInputs(nodes, renames);
  return { ...graph, nodes };
}
