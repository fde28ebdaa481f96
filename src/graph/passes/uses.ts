/** Small helpers the passes share: who reads a value, and renaming values. */
import type { Graph, GraphNode } from '../ir.js';

/** Value name → the nodes that read it. */
export function consumers(graph: Graph): Map<string, GraphNode[]> {
  const map = new Map<string, GraphNode[]>();
  for (const node of graph.nodes) {
    for (const input of node.inputs) {
      if (!input) continue;
      const list = map.get(input);
      if (list) list.push(node);
      else map.set(input, [node]);
    }
  }
  return map;
}

/** The value of a one-element initializer, else undefined (a per-image value, or none). */
export function constantScalar(graph: Graph, name: string | undefined): number | undefined {
  if (!name) return undefined;
  const t = graph.initializers.get(name);
  return t && t.size === 1 ? Number((t.data as ArrayLike<number>)[0]) : undefined;
}

/** Value name → the node that writes it. */
export function producers(graph: Graph): Map<string, GraphNode> {
  const map = new Map<string, GraphNode>();
  for (const node of graph.nodes) for (const output of node.outputs) if (output) map.set(output, node);
  return map;
}

export function outputNames(graph: Graph): Set<string> {
  return new Set(graph.outputs.map((o) => o.name));
}

/** A copy of `nodes` where every read of a value in `renames` reads its new name. */
export function renameInputs(nodes: GraphNode[], renames: Map<string, string>): GraphNode[] {
  if (renames.size === 0) return nodes;
  const resolve = (name: string) => {
    let n = name;
    for (let hops = 0; renames.has(n) && hops < 1000; hops++) n = renames.get(n)!;
    return n;
  };
  return nodes.map((node) => (node.inputs.some((i) => renames.has(i)) ? { ...node, inputs: node.inputs.map(resolve) } : node));
}

/** A name not used by any value or initializer of the graph, starting with `base`. */
export function freshName(graph: Graph, base: string, taken: Set<string> = new Set()): string {
  const used = new Set<string>([...graph.initializers.keys(), ...graph.inputs.map((i) => i.name), ...taken]);
  for (const node of graph.nodes) for (const o of node.outputs) used.add(o);
  let name = base;
  for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
  taken.add(name);
  return name;
}
