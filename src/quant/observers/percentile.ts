/**
 * Percentile calibration: clip the rarest (100 - p)% of values, read off a histogram of everything
 * observed (ONNX Runtime's "Percentile" method). Two-sided (default) cuts half of that mass from each
 * tail; symmetric takes the p-th percentile of |x| and clips to [-T, T].
 */
import { boolean, integer, number, options as checkOptions, optional, rangeError } from '../../validate.js';
import type { FloatRange } from '../qparams.js';
import { Histogram } from './histogram.js';
import { Observer } from './observer.js';

export interface PercentileObserverOptions {
  /** Percentage of values kept inside the range, in (0, 100]. Default 99.99. */
  percentile?: number;
  /** Percentile of |x| and a range symmetric about 0 (clipped to what was observed). Default false. */
  symmetric?: boolean;
  /** Histogram bins. Default 2048. */
  bins?: number;
}

export class PercentileObserver extends Observer {
  readonly percentile: number;
  readonly symmetric: boolean;
  /** The histogram behind the estimate (its bin width bounds the error against the sorted-sample percentile). */
  readonly histogram: Histogram;

  constructor(name: string, options?: PercentileObserverOptions) {
    super(name);
    const o = checkOptions<PercentileObserverOptions>('options', options);
    this.percentile = optional(o.percentile, 99.99, (v) => {
      const p = number('options.percentile', v, 0, 100);
      if (p === 0) throw rangeError('options.percentile', 'a number in (0, 100]', p);
      return p;
    });
    this.symmetric = optional(o.symmetric, false, (v) => boolean('options.symmetric', v));
    const bins = optional(o.bins, 2048, (v) => integer('options.bins', v, 1, 1 << 20));
    this.histogram = new Histogram(bins, this.symmetric ? 'absolute' : 'signed');
  }

  protected collect(data: Float32Array): void {
    this.histogram.add(data);
  }

  protected computeRange(): FloatRange {
    const keep = this.percentile / 100;
    if (this.symmetric) {
      const t = this.histogram.quantile(keep);
      return this.clipToObserved(-t, t);
    }
    const tail = (1 - keep) / 2;
    return { min: this.histogram.quantile(tail), max: this.histogram.quantile(1 - tail) };
  }
}
