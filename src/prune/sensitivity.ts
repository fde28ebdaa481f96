/**
 * Sensitivity analysis: for each prunable layer, held-out accuracy with only that layer pruned
 * (one-shot, no fine-tune) at a range of sparsities, the others dense; and from it a suggested
 * per-layer sparsity for an accepted accuracy drop.
 */
import type { Dataset } from '../data/dataset.js';
import { checkKeys } from '../nn/layers/checks.js';
import { Module } from '../nn/module.js';
import { evaluate } from '../train/evaluate.js';
import { number, optional, options as checkOptions, typeError } from '../validate.js';
import type { MethodName } from './criteria.js';
import type { LayerSelection } from './layers.js';
import type { PatternName } from './patterns.js';
import { checkSparsity, Pruner } from './pruner.js';

export const SENSITIVITY_SPARSITIES: readonly number[] = Object.freeze([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]);

export interface SensitivityOptions {
  /** Sparsities tried per layer, each in [0, 1) (default 0.1 ... 0.9, 0.95). */
  sparsities?: readonly number[];
  /** Criterion (default 'magnitude'; 'global' is per layer here, as one layer is pruned at a time). */
  method?: Exclude<MethodName, 'global'>;
  pattern?: PatternName | string;
  /** Layers to analyse (default: every prunable layer, the first conv and last Linear included). */
  layers?: LayerSelection;
  /** Accepted drop of accuracy (a fraction: 0.005 = half a point) for the suggestion (default 0.005). */
  maxDrop?: number;
  /** Seed of method 'random'. */
  seed?: number;
  /** Called after each layer. */
  onLayer?: (layer: string, done: number, total: number) => void;
}

export interface LayerSensitivity {
  name: string;
  type: 'Conv2d' | 'Linear';
  size: number;
  /** Accuracy at each tried sparsity, in the order of `sparsities`. */
  points: { sparsity: number; accuracy: number }[];
  /** Largest tried sparsity such that it and every smaller one lose at most `maxDrop` accuracy (0 if none). */
  suggested: number;
}

export interface SensitivityReport {
  /** Held-out accuracy of the unpruned model. */
  baseline: number;
  maxDrop: number;
  method: string;
  pattern: string;
  sparsities: number[];
  layers: LayerSensitivity[];
  /** Layer name -> suggested sparsity (what `prune({ sparsity })` accepts as a per-layer map). */
  suggestion: Record<string, number>;
}

/**
 * Prunes one layer at a time (one-shot, weights restored after each point) and measures accuracy
 * on `validation`. The model is left as it was.
 * @example
 * const { suggestion } = await analyzeSensitivity(model, test, { maxDrop: 0.005 });
 * await prune(model, train, { sparsity: suggestion, schedule: 'agp', epochs: 4 });
 */
export async function analyzeSensitivity(model: Module, validation: Dataset, options?: SensitivityOptions): Promise<SensitivityReport> {
  if (!(model instanceof Module)) throw typeError('model', 'a Module', model);
  const opts = checkOptions<SensitivityOptions>('options', options);
  checkKeys('options', opts, ['sparsities', 'method', 'pattern', 'layers', 'maxDrop', 'seed', 'onLayer']);
  if ((opts.method as string) === 'global') throw typeError('options.method', "a per-layer method (not 'global': one layer is pruned at a time)", opts.method);
  const sparsities = opts.sparsities === undefined ? [...SENSITIVITY_SPARSITIES] : checkList(opts.sparsities);
  const maxDrop = optional(opts.maxDrop, 0.005, (v) => number('options.maxDrop', v, 0, 1));
  if (opts.onLayer !== undefined && typeof opts.onLayer !== 'function') throw typeError('options.onLayer', 'a function', opts.onLayer);
  const all = new Pruner(model, { method: opts.method, pattern: opts.pattern, layers: opts.layers ?? (() => true), seed: opts.seed });
  const baseline = (await evaluate(model, validation)).accuracy;
  const layers: LayerSensitivity[] = [];
  for (const [i, layer] of all.layers.entries()) {
    const saved = [layer.weight.value.data.slice(), layer.bias?.value.data.slice()];
    const points: { sparsity: number; accuracy: number }[] = [];
    try {
      for (const sparsity of sparsities) {
        layer.weight.value.data.set(saved[0]!);
        if (layer.bias && saved[1]) layer.bias.value.data.set(saved[1]);
        const fresh = new Pruner(model, { method: opts.method, pattern: opts.pattern, layers: [layer.name], seed: opts.seed });
        fresh.update(sparsity);
        points.push({ sparsity, accuracy: (await evaluate(model, validation)).accuracy });
      }
    } finally {
      layer.weight.value.data.set(saved[0]!);
      if (layer.bias && saved[1]) layer.bias.value.data.set(saved[1]);
    }
    // The largest sparsity below which every tried one stays within the accepted drop.
    let suggested = 0;
    for (const p of [...points].sort((a, b) => a.sparsity - b.sparsity)) {
      if (baseline - p.accuracy > maxDrop + 1e-12) break;
      suggested = p.sparsity;
    }
    layers.push({ name: layer.name, type: layer.type, size: layer.weight.value.data.length, points, suggested });
    opts.onLayer?.(layer.name, i + 1, all.layers.length);
  }
  return {
    baseline,
    maxDrop,
    method: all.method,
    pattern: all.pattern.name,
    sparsities,
    layers,
    suggestion: Object.fromEntries(layers.map((l) => [l.name, l.suggested])),
  };
}

function checkList(value: unknown): number[] {
  if (!Array.isArray(value) || value.length === 0) throw typeError('options.sparsities', 'a non-empty array of sparsities', value);
  return value.map((v, i) => checkSparsity(`options.sparsities[${i}]`, v));
}
