/** Adam (Kingma & Ba), with L2 weight decay folded into the gradient as PyTorch's `Adam`. */
import { native } from '../../binding.js';
import type { Parameter } from '../../nn/module.js';
import { checkKeys } from '../../nn/layers/checks.js';
import { KilnRangeError } from '../../errors.js';
import { call } from '../../runtime/async-policy.js';
import { number, optional, options as checkOptions, typeError } from '../../validate.js';
import { Optimizer } from './optimizer.js';
import type { OptimizerConfig } from './optimizer.js';

export interface AdamOptions {
  /** Learning rate, >= 0 (default 1e-3). */
  lr?: number;
  /** Decay rates of the first and second moment estimates, each in [0, 1) (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Added to the root of the second moment (default 1e-8). */
  eps?: number;
  /** Weight decay of parameters with `decay` (default 0 for Adam, 0.01 for AdamW). */
  weightDecay?: number;
}

/**
 * `Adam({lr, betas, eps, weightDecay})`: m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
 * p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps), with g = grad + weightDecay * p.
 */
export class Adam extends Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  protected readonly stateArrays = 2;
  /** AdamW: decay applied to the weights directly (p -= lr * wd * p), not through the moments. */
  protected readonly decoupled: boolean = false;
  private readonly kind: string;

  constructor(options?: AdamOptions) {
    const name = new.target === Adam ? 'Adam' : 'AdamW';
    const opts = checkOptions<AdamOptions>(`${name} options`, options);
    checkKeys(`${name} options`, opts, ['lr', 'betas', 'eps', 'weightDecay']);
    super(opts.lr ?? 1e-3, name);
    this.kind = name;
    const betas = opts.betas ?? [0.9, 0.999];
    if (!Array.isArray(betas) || betas.length !== 2) throw typeError(`${name} options.betas`, 'an array [beta1, beta2]', betas);
    [this.beta1, this.beta2] = betas.map((b, i) => {
      const beta = number(`${name} options.betas[${i}]`, b, 0, 1);
      if (beta === 1) throw new KilnRangeError(`Expected a number in [0, 1) for ${name} options.betas[${i}] but received 1 (number)`);
      return beta;
    });
    this.eps = optional(opts.eps, 1e-8, (v) => number(`${name} options.eps`, v, 0, Infinity, true));
    this.weightDecay = optional(opts.weightDecay, name === 'Adam' ? 0 : 0.01, (v) => number(`${name} options.weightDecay`, v, 0, Infinity));
  }

  protected update(p: Parameter, [m, v]: Float32Array[]): Promise<void> {
    return call(
      native.adamStep,
      {
        param: p.value.data, grad: p.grad, m, v, length: p.grad.length, lr: this.lr,
        beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: p.decay ? this.weightDecay : 0,
        decoupled: this.decoupled, step: this.steps,
      },
      10 * p.grad.length,
    );
  }

  getConfig(): OptimizerConfig {
    return { type: this.kind.toLowerCase(), lr: this.lr, betas: [this.beta1, this.beta2], eps: this.eps, weightDecay: this.weightDecay };
  }
}
