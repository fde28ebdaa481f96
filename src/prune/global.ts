/**
 * Global magnitude pruning: one threshold across the chosen layers (units of smallest mean |w|
 * anywhere go first), with each layer's sparsity kept within [minSparsity, maxSparsity].
 */
import { KilnRangeError } from '../errors.js';
import { lowest, maskFromUnits, unitScores, unitsFor } from './criteria.js';
import type { PrunableLayer } from './layers.js';
import type { Mask } from './mask.js';
import { unitGrid } from './patterns.js';
import type { Pattern } from './patterns.js';

export interface GlobalLimits {
  /** Each layer prunes at least this share of its units (default 0). */
  minSparsity: number;
  /** Each layer prunes at most this share of its units (default 0.99). */
  maxSparsity: number;
}

/**
 * Masks reaching `sparsity` over all the layers' weights together: every layer first prunes its
 * minimum, then units are pruned in increasing score order across layers, skipping layers at their
 * maximum, until the total is reached (within half a unit).
 * @throws RangeError for an N:M pattern (its sparsity is fixed per group, not global)
 */
export function globalMasks(layers: readonly PrunableLayer[], pattern: Pattern, sparsity: number, limits: GlobalLimits, current?: readonly Mask[]): Mask[] {
  if (pattern.kind === 'n:m') throw new KilnRangeError(`Expected a block, filter or unstructured pattern for method 'global' but received '${pattern.name}' (an N:M pattern fixes each group's sparsity)`);
  const grids = layers.map((l) => unitGrid(pattern, l.outputs, l.reduction, l.spatial));
  const scores = layers.map((l, i) => unitScores(l, pattern, { method: 'magnitude' }, current?.[i]));
  const total = layers.reduce((s, l) => s + l.weight.value.data.length, 0);
  const target = Math.round(sparsity * total);
  const pruned = layers.map(() => new Uint8Array(0));
  const counts = layers.map(() => 0);
  let done = 0;
  layers.forEach((_, l) => {
    pruned[l] = new Uint8Array(grids[l].count);
    const first = lowest(scores[l], unitsFor(limits.minSparsity, grids[l].count));
    for (const u of first) pruned[l][u] = 1;
    counts[l] = first.length;
    done += first.length * grids[l].size;
  });
  // Every remaining unit, in increasing score order across layers.
  const entries: { l: number; u: number; s: number }[] = [];
  layers.forEach((_, l) => scores[l].forEach((s, u) => void (pruned[l][u] === 0 && entries.push({ l, u, s }))));
  entries.sort((a, b) => a.s - b.s || a.l - b.l || a.u - b.u);
  const max = grids.map((g) => Math.floor(limits.maxSparsity * g.count + 1e-9));
  for (const { l, u } of entries) {
    if (done >= target) break;
    const size = grids[l].size;
    if (counts[l] >= max[l] || target - done < size / 2) continue;
    pruned[l][u] = 1;
    counts[l]++;
    done += size;
  }
  return layers.map((layer, l) => {
    const units: number[] = [];
    pruned[l].forEach((p, u) => void (p && units.push(u)));
    return maskFromUnits(layer, pattern, units);
  });
}
