/** Removes nodes whose outputs nothing reads (and initializers nothing uses). */
import type { Graph, GraphNode } from '../ir.js';

export function eliminateDeadNodes(graph: Graph): Graph {
  const live = new Set(graph.outputs.map((o) => o.name));
  const kept: GraphNode[] = [];
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const node = graph.nodes[i];
    if (!node.outputs.some((o) => o && live.has(o))) continue;
    kept.push(node);
    for (const input of node.inputs) if (input) live.add(input);
  }
  kept.reverse();
  const initializers = new Map([...graph.initializers].filter(([name]) => live.has(name)));
  if (kept.length === graph.nodes.length && initializers.size === graph.initializers.size) return graph;
  return { ...graph, nodes: kept, initializers };
}
