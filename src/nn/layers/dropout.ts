/** Inverted dropout: in training, zeroes each element with probability p and scales the rest by 1/(1-p). */
import type { GraphBuilder } from '../../graph/ir.js';
import { Tensor } from '../../tensor.js';
import { Rng } from '../../util/rng.js';
import { integer, number, options as checkOptions, rangeError } from '../../validate.js';
import { Module } from '../module.js';
import type { LayerConfig } from '../module.js';
import { BufferSlot } from './buffer-slot.js';
import { checkGradOutput, checkInput, checkKeys, checkShape } from './checks.js';

export interface DropoutOptions {
  /** Seed of the masks (default 0): masks then repeat run to run. */
  seed?: number;
}

/** `Dropout(p, options)`: identity in eval mode (and lowered to nothing). Any shape. */
export class Dropout extends Module {
  readonly p: number;
  private readonly rng: Rng;
  private readonly seed: number;
  private mask: Float32Array | undefined;
  private maskDims: readonly number[] | undefined;
  private readonly maskSlot = new BufferSlot();
  private readonly output = new BufferSlot();
  private readonly gradInput = new BufferSlot();

  constructor(p = 0.5, options?: DropoutOptions) {
    super();
    const opts = checkOptions<DropoutOptions>('Dropout options', options);
    checkKeys('Dropout options', opts, ['seed']);
    this.p = number('Dropout p', p, 0, 1);
    if (this.p === 1) throw rangeError('Dropout p', 'a probability in [0, 1)', p);
    this.seed = opts.seed === undefined ? 0 : integer('Dropout options.seed', opts.seed, 0, Number.MAX_SAFE_INTEGER);
    this.rng = new Rng(this.seed);
  }

  /** The scale factors (0 or 1/(1-p)) of the last training forward, or undefined. */
  get lastMask(): Float32Array | undefined {
    return this.mask;
  }

  override outputShape(inputShape: readonly number[]): number[] {
    return checkShape('Dropout', inputShape, null, '[N, ...]').slice();
  }

  override async forward(input: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const x = checkInput('Dropout', input, null, '[N, ...]');
    this.maskDims = x.dims;
    if (!this.training || this.p === 0) {
      this.mask = undefined;
      return x;
    }
    const n = x.size;
    const mask = this.maskSlot.take(n, this.reuseBuffers);
    const output = this.output.take(n, this.reuseBuffers, x.data);
    const keep = 1 / (1 - this.p);
    const src = x.data;
    for (let i = 0; i < n; i++) {
      const m = this.rng.next() < this.p ? 0 : keep;
      mask[i] = m;
      output[i] = src[i] * m;
    }
    this.mask = mask;
    return new Tensor('float32', output, x.dims);
  }

  override async backward(gradOutput: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    checkGradOutput('Dropout', gradOutput, this.maskDims, this.maskDims);
    const mask = this.mask;
    if (mask === undefined) return gradOutput;
    const gradInput = this.gradInput.take(mask.length, this.reuseBuffers, gradOutput.data);
    const g = gradOutput.data;
    for (let i = 0; i < mask.length; i++) gradInput[i] = g[i] * mask[i];
    return new Tensor('float32', gradInput, gradOutput.dims);
  }

  override lower(builder: GraphBuilder, input: string, inputShape: readonly number[]): string {
    void builder;
    this.outputShape(inputShape);
    return input;
  }

  override config(): LayerConfig {
    return { type: 'Dropout', p: this.p, seed: this.seed };
  }
}
