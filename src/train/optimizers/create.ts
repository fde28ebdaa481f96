/** Builds an optimizer from a plain options object `{type, ...hyper-parameters}` (trainer, CLI, getConfig()). */
import { checkKeys } from '../../nn/layers/checks.js';
import { oneOf, options as checkOptions } from '../../validate.js';
import { Adam } from './adam.js';
import { AdamW } from './adamw.js';
import type { Optimizer } from './optimizer.js';
import { SGD } from './sgd.js';

/** Options of any optimizer; fields of the other types are ignored (so `type` can be switched). */
export interface OptimizerOptions {
  type: 'sgd' | 'adam' | 'adamw';
  /** Learning rate (required for SGD; Adam/AdamW default 1e-3). */
  lr?: number;
  /** SGD only. */
  momentum?: number;
  /** SGD only. */
  nesterov?: boolean;
  /** SGD only. */
  dampening?: number;
  /** Adam/AdamW only. */
  betas?: [number, number];
  /** Adam/AdamW only. */
  eps?: number;
  weightDecay?: number;
}

export const OPTIMIZER_TYPES = ['sgd', 'adam', 'adamw'] as const;

const KEYS = {
  sgd: ['lr', 'momentum', 'nesterov', 'dampening', 'weightDecay'],
  adam: ['lr', 'betas', 'eps', 'weightDecay'],
  adamw: ['lr', 'betas', 'eps', 'weightDecay'],
} as const;

/** `createOptimizer({type: 'sgd', lr: 0.05, momentum: 0.9})`; accepts `getConfig()` output. */
export function createOptimizer(options: OptimizerOptions): Optimizer {
  const opts = checkOptions<OptimizerOptions>('optimizer', options ?? null);
  checkKeys('optimizer', opts, ['type', ...new Set(Object.values(KEYS).flat())]);
  const type = oneOf('optimizer.type', opts.type, OPTIMIZER_TYPES);
  const own: Record<string, unknown> = {};
  for (const k of KEYS[type]) if (opts[k] !== undefined) own[k] = opts[k];
  switch (type) {
    case 'sgd':
      return new SGD(own as unknown as ConstructorParameters<typeof SGD>[0]);
    case 'adam':
      return new Adam(own);
    case 'adamw':
      return new AdamW(own);
  }
}
