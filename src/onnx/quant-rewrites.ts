/**
 * The bookkeeping of the pattern rewrites that turn quantized ONNX node chains into int8 IR ops
 * (lift-qdq.ts, and the DynamicQuantizeLinear pattern in map-qoperator.ts): who produces and who
 * reads each value, and which nodes a lifted op replaces or swallows. Both passes walk the same
 * node list, so one instance records both, and import-quant.ts then emits the result in order.
 */
import type { GraphNode } from '../graph/ir.js';

export class QuantRewrites {
  readonly producer = new Map<string, GraphNode>();
  readonly consumers = new Map<string, GraphNode[]>();
  /** Nodes swallowed by a lifted op. */
  readonly removed = new Set<GraphNode>();
  /** Lifted replacements, by the node they take the place of. */
  readonly replaced = new Map<GraphNode, GraphNode[]>();

  constructor(nodes: readonly GraphNode[], readonly graphOutputs: ReadonlySet<string>) {
    for (const n of nodes) {
      for (const o of n.outputs) if (o !== '') this.producer.set(o, n);
      for (const i of n.inputs) {
        if (i === '') continue;
        const list = this.consumers.get(i);
        if (list) list.push(n);
        else this.consumers.set(i, [n]);
      }
    }
  }

  /** The one node reading `value`, when it is not a graph output and not swallowed already. */
  soleConsumer(value: string): GraphNode | undefined {
    const c = this.consumers.get(value);
    return c !== undefined && c.length === 1 && !this.graphOutputs.has(value) && !this.removed.has(c[0]!) ? c[0] : undefined;
  }

  /** Registers a lifted node in place of `node`, swallowing the nodes of its output chain. */
  replace(node: GraphNode, lifted: GraphNode[], swallowed: GraphNode[]): void {
    for (const s of swallowed) this.removed.add(s);
    this.replaced.set(node, lifted);
  }
}
