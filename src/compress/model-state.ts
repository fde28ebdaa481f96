/**
 * The model as it moves through a compression pipeline: a trainable Module until quantization,
 * then an int8 Graph. Stages that train in place work on a copy, so a backed-off try starts from
 * the same model the first try did.
 */
import { toGraph } from '../graph/from-module.js';
import type { Graph } from '../graph/ir.js';
import type { Module } from '../nn/module.js';
import type { QuantizationReport } from '../quant/ptq.js';
import { moduleFromKilnFile, save } from '../runtime/model-io.js';
import { decodeKilnFile, encodeKilnFile } from '../runtime/kiln-file.js';
import type { SparseFormat } from '../sparse-tensor.js';

/** What pruning left, so a later fine-tune keeps the same zeros. */
export interface PruneState {
  sparsity: number;
  pattern: string;
  layers?: string[];
}

export type ModelState = (
  | { kind: 'module'; module: Module; inputShape: number[]; pruned?: PruneState }
  | { kind: 'graph'; graph: Graph; quantization?: QuantizationReport }
) & {
  /** Set by the pack stage: the sparse formats its file may store weights in. */
  packFormats?: SparseFormat[];
};

/** The state's inference graph (a Module lowered at its input shape). */
export function graphOf(state: ModelState): Graph {
  return state.kind === 'module' ? toGraph(state.module, state.inputShape) : state.graph;
}

/** A deep copy of a Module (config, parameters and buffers), through the .kiln encoding. */
export function cloneModule(module: Module): Module {
  const tensors = new Map([...module.parameters().map((p) => [p.name, p.value] as const), ...module.buffers().map((b) => [b.name, b.value] as const)]);
  const bytes = encodeKilnFile({ model: { kind: 'module', config: module.config() }, tensors, metadata: {} });
  return moduleFromKilnFile(decodeKilnFile(bytes));
}

/** Writes the state as a .kiln file: dense, or packed sparse after a pack stage. */
export async function saveState(state: ModelState, path: string, metadata: Record<string, unknown>): Promise<void> {
  const sparse = state.packFormats ? { sparse: { formats: state.packFormats } } : {};
  if (state.kind === 'module') await save(state.module, path, { inputShape: state.inputShape, metadata, ...sparse });
  else await save(state.graph, path, { metadata, ...sparse });
}
