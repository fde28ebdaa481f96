/** Removes Identity and Dropout (inference: identity) nodes, reading their input directly. */
import type { Graph, GraphNode } from '../ir.js';
import { consumers, outputNames, producers, renameInputs } from './uses.js';

const IDENTITY_OPS = new Set(['Identity', 'Dropout']);

export function eliminateIdentity(graph: Graph): Graph {
  const outs = outputNames(graph);
  const readers = consumers(graph);
  const writers = producers(graph);
  const inputs = new Set(graph.inputs.map((i) => i.name));
  const renames = new Map<string, string>();
  const renamedOutputs = new Map<string, string>();  // producer output → graph output name
  const dropped = new Set<GraphNode>();
  for (const node of graph.nodes) {
    if (!IDENTITY_OPS.has(node.op) || node.inputs.length < 1 || !node.inputs[0]) continue;
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
