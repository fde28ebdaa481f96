/**
 * A Pruner holds the masks of the chosen layers of one model: it recomputes them at a target
 * sparsity (keeping what is pruned pruned), re-applies them to the weights, and zeroes an
 * optimizer's state at the pruned positions. The schedules and `prune()` drive it.
 */
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../train/optimizers/optimizer.js';
import { integer, number, oneOf, optional, rangeError } from '../validate.js';
import { biasMask, layerMask, METHODS, randomScores } from './criteria.js';
import type { MethodName, ScoreContext } from './criteria.js';
import { globalMasks } from './global.js';
import type { GlobalLimits } from './global.js';
import { selectLayers } from './layers.js';
import type { LayerSelection, PrunableLayer } from './layers.js';
import { Mask } from './mask.js';
import { checkPatternFits, parsePattern, patternSparsity } from './patterns.js';
import type { Pattern, PatternName } from './patterns.js';

export interface PrunerOptions {
  /** Criterion (default 'magnitude'). */
  method?: MethodName;
  /** Sparsity pattern (default 'unstructured'; 'filter' for methods 'l1', 'l2' and 'bn'). */
  pattern?: PatternName | string;
  /** Layer names ('3' or '3.weight') or a predicate; default: all but the first Conv2d and the last Linear. */
  layers?: LayerSelection;
  /** Method 'global' only: each layer's sparsity at least this (default 0). */
  minSparsity?: number;
  /** Method 'global' only: each layer's sparsity at most this (default 0.99). */
  maxSparsity?: number;
  /** Seed of method 'random' (default 0). */
  seed?: number;
}

/** Sparsity of one pruned layer. */
export interface LayerSparsity {
  /** Layer name ('3'). */
  name: string;
  type: 'Conv2d' | 'Linear';
  /** The masked weight's parameter name ('3.weight'). */
  parameter: string;
  dims: number[];
  /** Weights pruned (zero by mask). */
  zeros: number;
  /** Weights in the layer. */
  size: number;
  /** zeros / size. */
  sparsity: number;
}

/** A sparsity in [0, 1). */
export function checkSparsity(name: string, value: unknown): number {
  const s = number(name, value, 0, 1);
  if (s === 1) throw rangeError(name, 'a number in [0, 1)', value);
  return s;
}

export class Pruner {
  readonly layers: readonly PrunableLayer[];
  readonly pattern: Pattern;
  readonly method: MethodName;
  /** One weight mask per layer, in `layers` order. */
  readonly masks: Mask[];
  /** Pattern 'filter': the bias masks of pruned filters (undefined for layers without bias or other patterns). */
  readonly biasMasks: (Mask | undefined)[];
  private readonly limits: GlobalLimits;
  private readonly contexts: ScoreContext[];

  /**
   * Chooses the layers and checks the pattern fits each (before any work).
   * @throws RangeError ERR_KILN_INVALID_ARG for an unknown layer name (listing the prunable ones), an
   *   N:M whose M does not divide a layer's reduction size, a block that does not divide its
   *   dimension, method 'bn' without a BatchNorm2d after a layer, min/max sparsity out of range
   */
  constructor(model: Module, options: PrunerOptions = {}, label: (option: string) => string = (o) => `options.${o}`) {
    this.method = optional<MethodName>(options.method, 'magnitude', (v) => oneOf(label('method'), v, METHODS));
    const structured = this.method === 'l1' || this.method === 'l2' || this.method === 'bn';
    this.pattern = parsePattern(options.pattern ?? (structured ? 'filter' : 'unstructured'), label('pattern'));
    const isGlobal = this.method === 'global';
    for (const k of ['minSparsity', 'maxSparsity'] as const) {
      if (options[k] !== undefined && !isGlobal) throw rangeError(label(k), "nothing unless the method is 'global'", options[k]);
    }
    const minSparsity = optional(options.minSparsity, 0, (v) => checkSparsity(label('minSparsity'), v));
    const maxSparsity = optional(options.maxSparsity, 0.99, (v) => number(label('maxSparsity'), v, minSparsity, 1));
    this.limits = { minSparsity, maxSparsity };
    const seed = optional(options.seed, 0, (v) => integer(label('seed'), v, 0, 2 ** 32));
    this.layers = selectLayers(model, options.layers, label('layers'));
    for (const l of this.layers) checkPatternFits(this.pattern, l.name, l.outputs, l.reduction, l.spatial);
    if (isGlobal && this.pattern.kind === 'n:m') {
      throw rangeError(label('pattern'), "a block, filter or unstructured pattern for method 'global' (N:M fixes each group's sparsity)", this.pattern.name);
    }
    if (this.method === 'bn') {
      if (this.pattern.name !== 'filter') throw rangeError(label('pattern'), "'filter' for method 'bn'", this.pattern.name);
      const without = this.layers.find((l) => !l.batchNorm);
      if (without) throw rangeError(label('layers'), "layers each followed by a BatchNorm2d for method 'bn'", `'${without.name}' (${without.type}) without one`);
    }
    this.contexts = this.layers.map((l, i) => ({
      method: this.method,
      ...(this.method === 'random' ? { random: randomScores(l.weight.value.data.length, seed, i) } : {}),
    }));
    this.masks = this.layers.map((l) => Mask.dense(l.weight));
    this.biasMasks = this.layers.map(() => undefined);
  }

  /** The sparsity the pattern forces (N:M), else undefined. */
  get fixedSparsity(): number | undefined {
    return patternSparsity(this.pattern);
  }

  /**
   * Recomputes every mask at `sparsity` (one for all layers, or one per layer in `layers` order)
   * from the current weights (pruned units stay pruned) and applies them.
   * @throws RangeError for a per-layer list with method 'global' (one threshold for all) or of the wrong length
   */
  update(sparsity: number | readonly number[]): void {
    const each = typeof sparsity === 'number' ? this.layers.map(() => sparsity) : [...sparsity];
    if (each.length !== this.layers.length) throw rangeError('sparsity', `${this.layers.length} per-layer sparsities`, sparsity);
    each.forEach((s, i) => checkSparsity(`sparsity[${i}]`, s));
    if (this.method === 'global' && typeof sparsity !== 'number') throw rangeError('sparsity', "one number for method 'global'", sparsity);
    const next = this.method === 'global'
      ? globalMasks(this.layers, this.pattern, each[0] ?? 0, this.limits, this.masks)
      : this.layers.map((l, i) => layerMask(l, this.pattern, each[i], this.contexts[i], this.masks[i]));
    next.forEach((m, i) => {
      this.masks[i] = m;
      this.biasMasks[i] = this.pattern.kind === 'block' && this.pattern.cols === 'row' ? biasMask(this.layers[i], m) : undefined;
    });
    this.apply();
  }

  /** Zeroes the pruned weights (and pruned filters' biases). */
  apply(): void {
    this.layers.forEach((l, i) => {
      this.masks[i].apply(l.weight);
      const b = this.biasMasks[i];
      if (b && l.bias) b.apply(l.bias);
    });
  }

  /** Zeroes `optimizer`'s velocity / moments at every pruned position, so nothing revives. */
  zeroState(optimizer: Optimizer): void {
    this.layers.forEach((l, i) => {
      optimizer.zeroStateWhere(l.weight, this.masks[i].keep);
      const b = this.biasMasks[i];
      if (b && l.bias) optimizer.zeroStateWhere(l.bias, b.keep);
    });
  }

  /** Per-layer sparsity of the masks. */
  report(): LayerSparsity[] {
    return this.layers.map((l, i) => {
      const m = this.masks[i];
      const zeros = m.zeros;
      return { name: l.name, type: l.type, parameter: l.weight.name, dims: [...l.weight.value.dims], zeros, size: m.keep.length, sparsity: zeros / m.keep.length };
    });
  }
}
