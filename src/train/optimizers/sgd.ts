/** Stochastic gradient descent with momentum (PyTorch semantics). */
import { native } from '../../binding.js';
import type { Parameter } from '../../nn/module.js';
import { checkKeys } from '../../nn/layers/checks.js';
import { KilnRangeError } from '../../errors.js';
import { call } from '../../runtime/async-policy.js';
import { boolean, number, optional, options as checkOptions } from '../../validate.js';
import { Optimizer } from './optimizer.js';
import type { OptimizerConfig } from './optimizer.js';

export interface SgdOptions {
  /** Learning rate, >= 0. */
  lr: number;
  /** Momentum factor in [0, 1) (default 0). */
  momentum?: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0). */
  nesterov?: boolean;
  /** L2 penalty added to the gradient of parameters with `decay` (default 0). */
  weightDecay?: number;
  /** Damping of the gradient entering the momentum buffer, in [0, 1] (default 0). */
  dampening?: number;
}

/**
 * `SGD({lr, momentum, nesterov, weightDecay, dampening})`:
 * g' = g + weightDecay * p; v = momentum * v + (1 - dampening) * g'; p -= lr * (nesterov ? g' + momentum * v : v).
 * The velocity starts at zero (with dampening 0 the first step equals PyTorch's, which starts it at g').
 */
export class SGD extends Optimizer {
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  readonly dampening: number;
  protected readonly stateArrays = 1;

  constructor(options: SgdOptions) {
    const opts = checkOptions<SgdOptions>('SGD options', options ?? null);
    checkKeys('SGD options', opts, ['lr', 'momentum', 'nesterov', 'weightDecay', 'dampening']);
    super(opts.lr as number, 'SGD');
    this.momentum = optional(opts.momentum, 0, (v) => number('SGD options.momentum', v, 0, 1));
    if (this.momentum === 1) throw new KilnRangeError('Expected a number in [0, 1) for SGD options.momentum but received 1 (number)');
    this.nesterov = optional(opts.nesterov, false, (v) => boolean('SGD options.nesterov', v));
    this.weightDecay = optional(opts.weightDecay, 0, (v) => number('SGD options.weightDecay', v, 0, Infinity));
    this.dampening = optional(opts.dampening, 0, (v) => number('SGD options.dampening', v, 0, 1));
    if (this.nesterov && (this.momentum === 0 || this.dampening !== 0)) {
      throw new KilnRangeError(
        `Expected momentum > 0 and dampening 0 with SGD options.nesterov but received momentum ${this.momentum}, dampening ${this.dampening}`,
      );
    }
  }

  protected update(p: Parameter, [velocity]: Float32Array[]): Promise<void> {
    return call(
      native.sgdStep,
      {
        param: p.value.data, grad: p.grad, velocity, length: p.grad.length, lr: this.lr,
        momentum: this.momentum, dampening: this.dampening, weightDecay: p.decay ? this.weightDecay : 0, nesterov: this.nesterov,
      },
      5 * p.grad.length,
    );
  }

  getConfig(): OptimizerConfig {
    return { type: 'sgd', lr: this.lr, momentum: this.momentum, nesterov: this.nesterov, weightDecay: this.weightDecay, dampening: this.dampening };
  }
}
