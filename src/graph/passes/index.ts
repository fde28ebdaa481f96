/**
 * Graph optimisation passes (each a pure Graph → Graph function) and the levels that run them,
 * named like onnxruntime's `graphOptimizationLevel`:
 * - 'disabled': none (the runtime still treats Identity/Dropout as free views);
 * - 'basic': Identity/Dropout removal, BatchNormalization folding, dead-node elimination;
 * - 'extended' and 'all': basic, then activation fusion into Conv/ConvTranspose/Gemm.
 */
import type { Graph } from '../ir.js';
import { eliminateDeadNodes } from './eliminate-dead.js';
import { eliminateIdentity } from './eliminate-identity.js';
import { foldBatchNorm } from './fold-batchnorm.js';
import { fuseActivations } from './fuse-activation.js';

export { eliminateDeadNodes, eliminateIdentity, foldBatchNorm, fuseActivations };
export { activationOf } from './fuse-activation.js';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';
export const GRAPH_OPTIMIZATION_LEVELS: readonly GraphOptimizationLevel[] = ['disabled', 'basic', 'extended', 'all'];

export function optimizeGraph(graph: Graph, level: GraphOptimizationLevel = 'all'): Graph {
  if (level === 'disabled') return graph;
  let g = eliminateIdentity(graph);
  g = foldBatchNorm(g);
  g = eliminateDeadNodes(g);
  if (level === 'basic') return g;
  g = fuseActivations(g);
  return eliminateDeadNodes(g);
}
