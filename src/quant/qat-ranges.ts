/** The activation ranges a QatModel hands to convertToInt8, keyed by value name of the prepared graph. */
import { ErrorCode, KilnError } from '../errors.js';
import type { Graph, GraphNode } from '../graph/ir.js';
import type { QatModel } from './qat-model.js';
import type { FloatRange } from './qparams.js';

/** Ops that move or select quantized values without changing their quantization (docs/int8-ir.md). */
const PASS_THROUGH = new Set(['MaxPool', 'Flatten', 'Reshape', 'Identity', 'Dropout']);

/**
 * The activation ranges of a QatModel keyed by value name in `prepared` (its lowered, prepared
 * graph): each quantizer's value, plus every value reachable from it through ops that pass
 * quantized values through (both ways: a Conv+ReLU's output whose fake-quant runs after a MaxPool
 * gets the same range, which is exact since max-pooling keeps the range).
 */
export function qatRanges(model: QatModel, prepared: Graph): Map<string, FloatRange> {
  const producers = new Map<string, GraphNode>();
  const readers = new Map<string, GraphNode[]>();
  for (const node of prepared.nodes) {
    for (const o of node.outputs) producers.set(o, node);
    for (const i of node.inputs) if (i) readers.set(i, [...(readers.get(i) ?? []), node]);
  }
  const values = new Set([...prepared.inputs.map((v) => v.name), ...producers.keys()]);
  const ranges = new Map<string, FloatRange>();
  for (const q of model.quantizers) {
    if (q.valueName === undefined) throw new KilnError(ErrorCode.INVALID_STATE, `The quantizer ${q.observer.name} was not lowered`);
    // toGraph renames the model's last value to the graph output.
    const name = values.has(q.valueName) ? q.valueName : prepared.outputs[0].name;
    const range = q.range();
    const stack = [name];
    while (stack.length > 0) {
      const v = stack.pop()!;
      if (ranges.has(v)) continue;
      ranges.set(v, range);
      const producer = producers.get(v);
      if (producer && PASS_THROUGH.has(producer.op) && producer.inputs[0]) stack.push(producer.inputs[0]);
      for (const r of readers.get(v) ?? []) if (PASS_THROUGH.has(r.op)) stack.push(r.outputs[0]);
    }
  }
  return ranges;
}
