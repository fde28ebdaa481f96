/**
 * Graph optimisation passes (each a pure Graph → Graph function) and the levels that run them,
 * named like onnxruntime's `graphOptimizationLevel`:
 * - 'disabled': none (the runtime still treats Identity/Dropout as free views);
 * - 'basic': removal of nodes that copy their input (Identity, Dropout, a one-input Concat, a zero
 *   Pad), BatchNormalization folding, dead-node elimination;
 * - 'extended': basic, then activation fusion into Conv/ConvTranspose/Gemm (bit for bit);
 * - 'all': extended, then the erf form of GELU into one Gelu node (a few ulps off the five steps',
 *   as Winograd, which the compiler enables at 'all' too, is off the direct sum's).
 */
import type { Graph } from '../ir.js';
import { eliminateDeadNodes } from './eliminate-dead.js';
import { eliminateIdentity } from './eliminate-identity.js';
import { foldBatchNorm } from './fold-batchnorm.js';
import { fuseActivations } from './fuse-activation.js';
import { fuseGelu } from './fuse-gelu.js';

export { eliminateDeadNodes, eliminateIdentity, foldBatchNorm, fuseActivations, fuseGelu };
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
  if (level === 'all') g = fuseGelu(g);
  return eliminateDeadNodes(g);
}
