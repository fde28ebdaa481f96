/**
 * Losses on logits. Cross-entropy runs on the native softmax kernel; label smoothing is a cheap
 * correction on top of it in JS (a few hundred elements per batch).
 */
import { native } from '../binding.js';
import { call } from '../runtime/async-policy.js';
import { Tensor } from '../tensor.js';
import { describe, number, optional, options as checkOptions, shapeError, typeError } from '../validate.js';
import { KilnRangeError } from '../errors.js';
import { BufferSlot } from './layers/buffer-slot.js';
import { checkKeys, wrongDtype } from './layers/checks.js';

export interface CrossEntropyOptions {
  /**
   * Share of the target mass spread evenly over all classes, in [0, 1) (default 0): the target is
   * (1 - s) * onehot + s / classes.
   */
  labelSmoothing?: number;
}

export interface LossResult {
  /** Mean loss over the batch. */
  loss: number;
  /** d(mean loss)/d(logits), [N, classes]; absent when not asked for. */
  grad?: Tensor<'float32'>;
  /** Loss of each example. */
  losses: Float32Array;
}

/**
 * Softmax cross-entropy from logits [N, classes] against integer labels in [0, classes).
 * With `reuseBuffers`, the gradient and per-example losses are overwritten by the next call.
 */
export class CrossEntropyLoss {
  readonly labelSmoothing: number;
  /** See `Module.reuseBuffers`. */
  reuseBuffers = false;
  private readonly gradSlot = new BufferSlot();
  private readonly lossSlot = new BufferSlot();

  constructor(options?: CrossEntropyOptions) {
    const opts = checkOptions<CrossEntropyOptions>('CrossEntropyLoss options', options);
    checkKeys('CrossEntropyLoss options', opts, ['labelSmoothing']);
    this.labelSmoothing = optional(opts.labelSmoothing, 0, (v) => number('CrossEntropyLoss options.labelSmoothing', v, 0, 1));
    if (this.labelSmoothing === 1) throw new KilnRangeError('Expected a number in [0, 1) for CrossEntropyLoss options.labelSmoothing but received 1 (number)');
  }

  /** Mean loss and, when `withGrad` (default true), its gradient with respect to the logits. */
  async compute(logits: Tensor<'float32'>, labels: Int32Array, withGrad = true): Promise<LossResult> {
    const [rows, cols] = checkLogits(logits, labels);
    const losses = this.lossSlot.take(rows, this.reuseBuffers);
    const grad = withGrad ? this.gradSlot.take(rows * cols, this.reuseBuffers, logits.data) : null;
    const z = logits.data;
    await call(native.softmaxCrossEntropy, { logits: z, labels, rows, cols, losses, gradLogits: grad, gradScale: 1 / rows }, 8 * rows * cols);
    const s = this.labelSmoothing;
    let total = 0;
    for (let i = 0; i < rows; i++) {
      if (s > 0) {
        // -sum_j t_j log p_j = CE(label) + s * (z_label - mean_j z_j).
        let mean = 0;
        for (let j = 0; j < cols; j++) mean += z[i * cols + j];
        mean /= cols;
        losses[i] += s * (z[i * cols + labels[i]] - mean);
        if (grad) {
          // (p - t) / N = (p - onehot) / N + s * (onehot - 1 / cols) / N.
          const shift = s / cols / rows;
          for (let j = 0; j < cols; j++) grad[i * cols + j] -= shift;
          grad[i * cols + labels[i]] += s / rows;
        }
      }
      total += losses[i];
    }
    return { loss: total / rows, losses, ...(grad ? { grad: new Tensor('float32', grad, [rows, cols]) } : {}) };
  }
}

/** One-off softmax cross-entropy (see `CrossEntropyLoss`). */
export function crossEntropy(logits: Tensor<'float32'>, labels: Int32Array, options?: CrossEntropyOptions): Promise<LossResult> {
  return new CrossEntropyLoss(options).compute(logits, labels);
}

/** Validates logits [N, C] (float32) and N labels in [0, C); returns [N, C]. */
export function checkLogits(logits: unknown, labels: unknown): [number, number] {
  if (!(logits instanceof Tensor)) throw typeError('logits', 'a Tensor', logits);
  if (logits.type !== 'float32') throw wrongDtype('logits', logits);
  if (logits.dims.length !== 2 || logits.dims[0] < 1 || logits.dims[1] < 1) {
    throw shapeError('logits', 'a non-empty rank-2 tensor [N, classes]', `[${logits.dims.join(', ')}]`);
  }
  const [rows, cols] = logits.dims;
  if (!(labels instanceof Int32Array)) throw typeError('labels', 'an Int32Array of class indices', labels);
  if (labels.length !== rows) throw shapeError('labels', `${rows} labels (one per row of logits)`, `${labels.length} labels`);
  for (let i = 0; i < rows; i++) {
    const y = labels[i];
    if (y < 0 || y >= cols) throw new KilnRangeError(`Expected a class index in [0, ${cols - 1}] for labels[${i}] but received ${describe(y)}`);
  }
  return [rows, cols];
}
