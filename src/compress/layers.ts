/**
 * Per-layer figures of a stage's model for the run record: weight sparsity and its pattern, dense
 * and non-zero MACs per image, int8 error (SQNR) and the kernel the runtime chose.
 */
import { inferInt8GraphShapes, isInt8Graph } from '../graph/int8-ir.js';
import type { Graph } from '../graph/ir.js';
import { inferShapes } from '../graph/shape-inference.js';
import { outputMajor, weightedNodes } from '../graph/weights.js';
import { detectPattern } from '../prune/detect.js';
import type { QuantizationReport } from '../quant/ptq.js';
import { kernelOf } from '../runtime/step-kernels.js';
import type { LayerRecord } from './record.js';

/**
 * @param steps node name -> the session's step text (see stepTexts), for the kernel column
 * @param quantization the int8 stage's report, for SQNR
 */
export function layerRecords(graph: Graph, steps?: ReadonlyMap<string, string>, quantization?: QuantizationReport): LayerRecord[] {
  const shapes = isInt8Graph(graph) ? inferInt8GraphShapes(graph) : inferShapes(graph);
  const sqnr = new Map((quantization?.layers ?? []).map((l) => [l.node, l.sqnrDb]));
  const out: LayerRecord[] = [];
  for (const { node, weight } of weightedNodes(graph)) {
    if (weight.type !== 'float32' && weight.type !== 'int8') continue;
    const view = outputMajor(node, weight);
    const spatial = node.op === 'Conv' || node.op === 'QLinearConv' ? weight.dims.slice(2).reduce((a, b) => a * b, 1) : 1;
    let zeros = 0;
    for (let i = 0; i < view.data.length; i++) if (view.data[i] === 0) zeros++;
    const sparsity = view.data.length ? zeros / view.data.length : 0;
    // Each output element costs one reduction row: MACs = output elements / output channels * weights.
    const outShape = shapes.get(node.outputs[0] ?? '')?.slice(1) ?? [];
    const outElements = outShape.every((d) => typeof d === 'number') ? (outShape as number[]).reduce((a, b) => a * b, 1) : view.outputs;
    const macs = Math.round((outElements / view.outputs) * view.data.length);
    const step = steps?.get(node.name);
    const db = sqnr.get(node.name);
    out.push({
      name: node.name,
      op: node.op,
      weights: view.data.length,
      sparsity,
      pattern: detectPattern(view.data, view.outputs, view.reduction, spatial),
      macs,
      ...(db !== undefined && Number.isFinite(db) ? { sqnrDb: db } : {}),
      ...(step !== undefined ? { kernel: kernelOf(node.op, step) } : {}),
    });
  }
  return out;
}
