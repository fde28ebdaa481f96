/** AdamW (Loshchilov & Hutter): Adam with decoupled weight decay. */
import { Adam } from './adam.js';
import type { AdamOptions } from './adam.js';

/**
 * `AdamW({lr, betas, eps, weightDecay = 0.01})`: the Adam step on the raw gradient, plus
 * p -= lr * weightDecay * p for parameters with `decay` (PyTorch's `AdamW`).
 */
export class AdamW extends Adam {
  protected override readonly decoupled: boolean = true;

  constructor(options?: AdamOptions) {
    super(options);
  }
}
