/**
 * A fixed-size histogram that widens its range when new data falls outside it, for calibration over
 * many batches without knowing the range in advance (ONNX Runtime's HistogramCollector does the same).
 *
 * Re-binning is exact: the range only ever grows by an integer factor k of the bin width, with the new
 * lower edge on the old grid, so every old bin lies wholly inside one new bin and its count moves there
 * unsplit. Resolution halves (at least) on each growth; the bin count stays fixed. ONNX Runtime instead
 * appends bins (memory grows with the range); PyTorch splits counts proportionally (approximate).
 */
import { ErrorCode, KilnError, KilnRangeError } from '../../errors.js';
import { integer, number, oneOf } from '../../validate.js';

/** `'signed'`: bins over x. `'absolute'`: bins over |x| from 0 (entropy, symmetric percentile). */
export type HistogramMode = 'signed' | 'absolute';

/** A copy of a histogram's state, for the threshold searches. */
export interface HistogramSnapshot {
  /** Lower edge of bin 0. */
  readonly lo: number;
  /** Bin width; 0 while every value seen was equal to `lo` (all the count is in bin 0). */
  readonly width: number;
  readonly counts: Float64Array;
  readonly total: number;
  /** Smallest and largest binned value (of |x| in absolute mode). */
  readonly min: number;
  readonly max: number;
}

export class Histogram {
  readonly bins: number;
  readonly mode: HistogramMode;
  private counts: Float64Array;
  private lo = 0;
  private width = 0;
  private total = 0;
  private min = Infinity;
  private max = -Infinity;

  /**
   * @param bins number of bins (fixed for the histogram's life)
   * @param mode `'signed'` (default) or `'absolute'`
   */
  constructor(bins = 2048, mode: HistogramMode = 'signed') {
    this.bins = integer('bins', bins, 1, 1 << 24);
    this.mode = oneOf('mode', mode, ['signed', 'absolute'] as const);
    this.counts = new Float64Array(bins);
  }

  /** Lower edge of bin `i` (i = bins gives the upper edge of the range). */
  edge(i: number): number {
    return this.lo + i * this.width;
  }

  get binWidth(): number {
    return this.width;
  }

  get count(): number {
    return this.total;
  }

  /**
   * Add a batch. Values must be finite (the observers check before calling); in absolute mode |x| is binned.
   */
  add(data: ArrayLike<number>): void {
    if (data.length === 0) return;
    const abs = this.mode === 'absolute';
    let dmin = Infinity;
    let dmax = -Infinity;
    for (let i = 0; i < data.length; i++) {
      const v = abs ? Math.abs(data[i]) : data[i];
      if (v - v !== 0) throw new KilnRangeError(`Expected finite values for histogram data but received ${v} at index ${i}`);
      if (v < dmin) dmin = v;
      if (v > dmax) dmax = v;
    }
    if (this.total === 0) this.start(abs ? 0 : dmin, dmax);
    else if (dmin < this.lo || dmax > this.edge(this.bins)) this.grow(dmin, dmax);
    this.min = Math.min(this.min, dmin);
    this.max = Math.max(this.max, dmax);
    this.total += data.length;
    if (this.width === 0) {
      // Every value so far equals lo (the grow/start above guarantees it).
      this.counts[0] += data.length;
      return;
    }
    const last = this.bins - 1;
    const inv = 1 / this.width;
    for (let i = 0; i < data.length; i++) {
      const v = abs ? Math.abs(data[i]) : data[i];
      const b = Math.floor((v - this.lo) * inv);
      this.counts[b < 0 ? 0 : b > last ? last : b] += 1;
    }
  }

  /** Copy of the state. */
  snapshot(): HistogramSnapshot {
    return { lo: this.lo, width: this.width, counts: this.counts.slice(), total: this.total, min: this.min, max: this.max };
  }

  /**
   * The q-quantile (q in [0, 1]) of the binned values, assuming values spread evenly within a bin.
   * The true sample quantile (the ceil(q·n)-th smallest value) lies in the same bin, so the two differ
   * by at most one bin width. Clamped to the observed [min, max].
   */
  quantile(q: number): number {
    number('q', q, 0, 1);
    if (this.total === 0) throw new KilnError(ErrorCode.INVALID_STATE, 'Expected data in the histogram before a quantile but received no data');
    if (this.width === 0) return this.lo;
    const target = q * this.total;
    if (target <= 0) return this.min;
    let cum = 0;
    for (let b = 0; b < this.bins; b++) {
      const c = this.counts[b];
      if (c > 0 && cum + c >= target) {
        const v = this.edge(b) + ((target - cum) / c) * this.width;
        return Math.min(this.max, Math.max(this.min, v));
      }
      cum += c;
    }
    return this.max;
  }

  private start(lo: number, hi: number): void {
    this.lo = lo;
    this.width = hi > lo ? (hi - lo) / this.bins : 0;
    this.counts.fill(0);
  }

  /** Widen the range to cover [dmin, dmax], moving existing counts into the coarser bins. */
  private grow(dmin: number, dmax: number): void {
    const old = this.counts;
    const oldLo = this.lo;
    const oldWidth = this.width;
    this.counts = new Float64Array(this.bins);
    if (oldWidth === 0) {
      // A point mass at oldLo: any range covering it and the new data will do.
      const lo = this.mode === 'absolute' ? 0 : Math.min(oldLo, dmin);
      const hi = Math.max(oldLo, dmax);
      this.lo = lo;
      this.width = (hi - lo) / this.bins;
      this.counts[this.binOf(oldLo)] += old[0];
      return;
    }
    // The new range must cover the old one too, not only the new batch.
    const top = Math.max(dmax, oldLo + this.bins * oldWidth);
    let j = dmin < oldLo ? Math.ceil((oldLo - dmin) / oldWidth) : 0;
    while (oldLo - j * oldWidth > dmin) j++;
    const lo = oldLo - j * oldWidth;
    let k = Math.max(1, Math.ceil((top - lo) / (this.bins * oldWidth)));
    while (lo + k * this.bins * oldWidth < top) k++;
    this.lo = lo;
    this.width = k * oldWidth;
    for (let m = 0; m < old.length; m++) {
      // The centre of an old bin is half an old width from any new edge, so float error cannot misplace it.
      if (old[m] > 0) this.counts[this.binOf(oldLo + (m + 0.5) * oldWidth)] += old[m];
    }
  }

  private binOf(v: number): number {
    const b = Math.floor((v - this.lo) / this.width);
    return b < 0 ? 0 : b >= this.bins ? this.bins - 1 : b;
  }
}
