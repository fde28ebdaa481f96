/**
 * Pruning criteria: how a layer's units (single weights, blocks, filters) are scored, and the mask
 * that prunes the lowest-scored ones. Units already pruned score -Infinity, so recomputing a mask
 * at a higher sparsity (iterative and gradual schedules) never revives a pruned weight.
 */
import { KilnRangeError } from '../errors.js';
import { Rng } from '../util/rng.js';
import type { PrunableLayer } from './layers.js';
import { Mask } from './mask.js';
import { forEachInUnit, reductionOffset, unitGrid } from './patterns.js';
import type { BlockPattern, NmPattern, Pattern } from './patterns.js';

export const METHODS = ['magnitude', 'global', 'random', 'l1', 'l2', 'bn'] as const;
/**
 * - magnitude: per layer, the units of smallest mean |w|;
 * - global: the same score, with one threshold across all chosen layers (see global.ts);
 * - random: seeded random scores (the baseline any study needs);
 * - l1 / l2: mean |w| / root mean square of each unit (whole filters by default);
 * - bn: |gamma| of the BatchNorm2d right after the conv (filter pattern only).
 */
export type MethodName = (typeof METHODS)[number];

/** What a criterion needs besides the layer: the method, and random scores for 'random'. */
export interface ScoreContext {
  method: MethodName;
  /** One uniform score per weight, for method 'random' (drawn once per layer, so masks are stable). */
  random?: Float64Array;
}

/** Seeded per-weight random scores for a layer (index `layerIndex` of the pruned layers). */
export function randomScores(size: number, seed: number, layerIndex: number): Float64Array {
  const rng = new Rng(seed * 1009 + layerIndex);
  const out = new Float64Array(size);
  for (let i = 0; i < size; i++) out[i] = rng.next();
  return out;
}

/**
 * One score per unit of a block pattern (lower = pruned first). Units fully pruned in `current`
 * score -Infinity.
 * @throws RangeError for method 'bn' on a layer without a following BatchNorm2d or with a pattern other than 'filter'
 */
export function unitScores(layer: PrunableLayer, pattern: BlockPattern, ctx: ScoreContext, current?: Mask): Float64Array {
  const grid = unitGrid(pattern, layer.outputs, layer.reduction, layer.spatial);
  const w = layer.weight.value.data;
  const scores = new Float64Array(grid.count);
  if (ctx.method === 'bn') {
    if (pattern.cols !== 'row') throw new KilnRangeError(`Expected pattern 'filter' for method 'bn' but received '${pattern.name}'`);
    if (!layer.batchNorm) throw new KilnRangeError(`Expected a BatchNorm2d right after layer '${layer.name}' for method 'bn' but received a ${layer.type} without one`);
    const gamma = layer.batchNorm.weight.value.data;
    for (let u = 0; u < grid.count; u++) scores[u] = Math.abs(gamma[u]);
  }
  for (let u = 0; u < grid.count; u++) {
    let sum = 0;
    let alive = current === undefined;
    forEachInUnit(grid, layer.reduction, u, (i) => {
      if (current && current.keep[i] === 1) alive = true;
      if (ctx.method === 'l2') sum += w[i] * w[i];
      else if (ctx.method === 'random') sum += ctx.random![i];
      else sum += Math.abs(w[i]);
    });
    if (!alive) scores[u] = -Infinity;
    else if (ctx.method === 'l2') scores[u] = Math.sqrt(sum / grid.size);
    else if (ctx.method !== 'bn') scores[u] = sum / grid.size;
  }
  return scores;
}

/** Indices of the `k` lowest scores (ties: lower index first). */
export function lowest(scores: Float64Array, k: number): Uint32Array {
  const order = new Uint32Array(scores.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((a, b) => scores[a] - scores[b] || a - b);
  return order.subarray(0, k);
}

/** The weight mask pruning the given units of a block pattern. */
export function maskFromUnits(layer: PrunableLayer, pattern: BlockPattern, units: ArrayLike<number>): Mask {
  const grid = unitGrid(pattern, layer.outputs, layer.reduction, layer.spatial);
  const mask = Mask.dense(layer.weight);
  for (let j = 0; j < units.length; j++) forEachInUnit(grid, layer.reduction, units[j], (i) => void (mask.keep[i] = 0));
  return mask;
}

/** Units to prune for a target sparsity: round(sparsity * units). */
export function unitsFor(sparsity: number, count: number): number {
  return Math.min(count, Math.round(sparsity * count));
}

/**
 * The N:M mask at `sparsity`: in every group of M consecutive reduction weights (input channels at
 * one kernel position, see patterns.ts) the min(M - N, floor(M * sparsity)) lowest-scored are
 * pruned (so M - N at the pattern's own sparsity).
 */
export function nmMask(layer: PrunableLayer, pattern: NmPattern, sparsity: number, ctx: ScoreContext, current?: Mask): Mask {
  const { m, n } = pattern;
  const k = Math.min(m - n, Math.floor(m * sparsity + 1e-9));
  const w = layer.weight.value.data;
  const mask = Mask.dense(layer.weight);
  const score = (i: number): number => (current && current.keep[i] === 0 ? -Infinity : ctx.method === 'random' ? ctx.random![i] : Math.abs(w[i]));
  const idx = new Array<number>(m);
  const { reduction } = layer;
  const spatial = layer.spatial;
  for (let g = 0; g < w.length; g += m) {
    const row = g - (g % reduction);
    for (let j = 0; j < m; j++) idx[j] = row + reductionOffset((g % reduction) + j, reduction, spatial);
    idx.sort((a, b) => score(a) - score(b) || a - b);
    for (let j = 0; j < k; j++) mask.keep[idx[j]] = 0;
  }
  return mask;
}

/** The weight mask of one layer at `sparsity` (per-layer criteria; 'global' is in global.ts). */
export function layerMask(layer: PrunableLayer, pattern: Pattern, sparsity: number, ctx: ScoreContext, current?: Mask): Mask {
  if (pattern.kind === 'n:m') return nmMask(layer, pattern, sparsity, ctx, current);
  const scores = unitScores(layer, pattern, ctx, current);
  return maskFromUnits(layer, pattern, lowest(scores, unitsFor(sparsity, scores.length)));
}

/** For the 'filter' pattern: the bias mask pruning the bias of every fully pruned filter. */
export function biasMask(layer: PrunableLayer, weight: Mask): Mask | undefined {
  if (!layer.bias) return undefined;
  const mask = Mask.dense(layer.bias);
  for (let o = 0; o < layer.outputs; o++) {
    let alive = false;
    for (let i = o * layer.reduction; i < (o + 1) * layer.reduction && !alive; i++) alive = weight.keep[i] === 1;
    if (!alive) mask.keep[o] = 0;
  }
  return mask;
}
