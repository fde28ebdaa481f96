/**
 * The optimizer contract: `step(params)` updates every parameter in place from its gradient
 * (gradients are overwritten by each backward, so there is no zeroGrad). State (momentum,
 * moments) is kept per Parameter object and starts at zero.
 */
import { allocFloat32 } from '../../memory.js';
import type { Parameter } from '../../nn/module.js';
import { Tensor } from '../../tensor.js';
import { shapeError, number, typeError } from '../../validate.js';

export interface OptimizerConfig {
  type: string;
  lr: number;
  [option: string]: unknown;
}

export abstract class Optimizer {
  private learningRate: number;
  /** Steps taken so far. */
  protected steps = 0;
  private readonly states = new WeakMap<Parameter, Float32Array[]>();

  protected constructor(lr: number, name: string) {
    this.learningRate = number(`${name} options.lr`, lr, 0, Infinity);
  }

  /** Learning rate of the next step; schedules set it before each step. */
  get lr(): number {
    return this.learningRate;
  }

  set lr(value: number) {
    this.learningRate = number('lr', value, 0, Infinity);
  }

  /** Number of steps taken. */
  get iterations(): number {
    return this.steps;
  }

  /** Updates each parameter in place from its `grad`. */
  async step(params: readonly Parameter[]): Promise<void> {
    if (!Array.isArray(params)) throw typeError('params', 'an array of Parameters', params);
    params.forEach((p, i) => checkParameter(p, i));
    this.steps++;
    for (const p of params) await this.update(p, this.stateOf(p));
  }

  /**
   * This parameter's state arrays (SGD: [velocity]; Adam/AdamW: [m, v]), or undefined before its
   * first step. For inspection: the arrays are live, writing them changes the next step.
   */
  stateFor(param: Parameter): readonly Float32Array[] | undefined {
    return this.states.get(param);
  }

  /**
   * Zeroes the state (velocity, moments) of `param` wherever `keep[i]` is 0, so that a weight a
   * pruning mask holds at zero gets no momentum back. No-op before the parameter's first step.
   * @throws RangeError ERR_KILN_SHAPE_MISMATCH when `keep` does not have one entry per element
   */
  zeroStateWhere(param: Parameter, keep: Uint8Array): void {
    if (!(keep instanceof Uint8Array)) throw typeError('keep', 'a Uint8Array', keep);
    const n = param.value.data.length;
    if (keep.length !== n) throw shapeError('keep', `${n} entries (as ${param.name})`, `${keep.length}`);
    const state = this.states.get(param);
    if (state === undefined) return;
    for (const a of state) {
      if (a.length !== n) continue;
      for (let i = 0; i < n; i++) if (keep[i] === 0) a[i] = 0;
    }
  }

  /** Hyper-parameters, enough to rebuild the optimizer (`optimizerFromConfig`). */
  abstract getConfig(): OptimizerConfig;

  /** Number of per-element state arrays each parameter needs (velocity: 1; Adam moments: 2). */
  protected abstract readonly stateArrays: number;

  /** One parameter's update; `state` holds `stateArrays` zero-initialised arrays. */
  protected abstract update(param: Parameter, state: Float32Array[]): Promise<void> | void;

  private stateOf(p: Parameter): Float32Array[] {
    const n = p.value.data.length;
    let s = this.states.get(p);
    // A parameter that changed size (e.g. pruned channels removed) starts a fresh state.
    if (s === undefined || s.some((a) => a.length !== n)) {
      s = Array.from({ length: this.stateArrays }, () => allocFloat32(n));
      this.states.set(p, s);
    }
    return s;
  }
}

function checkParameter(p: unknown, i: number): void {
  const name = `params[${i}]`;
  const param = p as Parameter | null;
  if (param === null || typeof param !== 'object' || !(param.value instanceof Tensor) || param.value.type !== 'float32' || !(param.grad instanceof Float32Array)) {
    throw typeError(name, 'a Parameter { name, value: float32 Tensor, grad: Float32Array, decay }', p);
  }
  if (param.grad.length !== param.value.data.length) {
    throw shapeError(`${name}.grad`, `${param.value.data.length} elements (as the value)`, `${param.grad.length}`);
  }
}
