/**
 * Min-max calibration: the range is the extremes of the data, or for QAT an exponential moving
 * average of per-batch extremes (PyTorch's MovingAverageMinMaxObserver), which follows the
 * activations as the weights change and forgets one-off outliers.
 */
import { number, options as checkOptions, optional, rangeError } from '../../validate.js';
import type { FloatRange } from '../qparams.js';
import { Observer } from './observer.js';

export interface MinMaxObserverOptions {
  /**
   * Weight of each new batch in a moving average of the per-batch min and max, in (0, 1]:
   * min ← (1 - momentum)·min + momentum·batchMin. Omitted: the running extremes over all batches.
   */
  momentum?: number;
}

export class MinMaxObserver extends Observer {
  /** Undefined for running extremes. */
  readonly momentum: number | undefined;
  private min = 0;
  private max = 0;
  private batches = 0;

  constructor(name: string, options?: MinMaxObserverOptions) {
    super(name);
    const o = checkOptions<MinMaxObserverOptions>('options', options);
    this.momentum = optional(o.momentum, undefined, (v) => {
      const m = number('options.momentum', v, 0, 1);
      if (m === 0) throw rangeError('options.momentum', 'a number in (0, 1]', m);
      return m;
    });
  }

  protected collect(_data: Float32Array, batch: FloatRange): void {
    const m = this.momentum;
    if (this.batches === 0) {
      this.min = batch.min;
      this.max = batch.max;
    } else if (m === undefined) {
      this.min = Math.min(this.min, batch.min);
      this.max = Math.max(this.max, batch.max);
    } else {
      this.min += m * (batch.min - this.min);
      this.max += m * (batch.max - this.max);
    }
    this.batches++;
  }

  protected computeRange(): FloatRange {
    return { min: this.min, max: this.max };
  }
}
