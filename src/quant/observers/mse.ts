/**
 * MSE calibration: the clipping range that minimises the expected squared error of
 * quantize→dequantize over everything observed, searched on a histogram.
 *
 * Candidates shrink the observed range by α = c/candidates, c = 1..candidates: [-α·A, α·A] with
 * A = max|x| for `'int8'` (symmetric), α·[min(min, 0), max(max, 0)] for `'uint8'` (asymmetric, the
 * zero point kept where the full range puts it). For each candidate the error is integrated exactly
 * over every bin assuming values spread evenly within it: the quantizer is piecewise constant, so
 * each bin splits at the rounding midpoints into pieces whose squared error has a closed form. This
 * stays accurate when a bin is wider than a quantization step, where evaluating bin centres does not.
 */
import { integer, oneOf, options as checkOptions, optional } from '../../validate.js';
import { QUANT_KINDS, quantParams, roundHalfEven, storageRange, type FloatRange, type QuantKind } from '../qparams.js';
import { Histogram, type HistogramSnapshot } from './histogram.js';
import { Observer } from './observer.js';

export interface MseObserverOptions {
  /** The quantization the range is optimised for. Default `'uint8'` (asymmetric activations). */
  kind?: QuantKind;
  /** Histogram bins. Default 2048. */
  bins?: number;
  /** Number of candidate ranges (α steps). Default 1024. */
  candidates?: number;
}

export class MseObserver extends Observer {
  readonly kind: QuantKind;
  readonly candidates: number;
  readonly histogram: Histogram;

  constructor(name: string, options?: MseObserverOptions) {
    super(name);
    const o = checkOptions<MseObserverOptions>('options', options);
    this.kind = optional(o.kind, 'uint8' as QuantKind, (v) => oneOf('options.kind', v, QUANT_KINDS));
    const bins = optional(o.bins, 2048, (v) => integer('options.bins', v, 1, 1 << 16));
    this.candidates = optional(o.candidates, 1024, (v) => integer('options.candidates', v, 1, 1 << 16));
    this.histogram = new Histogram(bins, 'signed');
  }

  protected collect(data: Float32Array): void {
    this.histogram.add(data);
  }

  protected computeRange(): FloatRange {
    const h = this.histogram.snapshot();
    const full = this.observedRange();
    let best = candidateRange(full, this.kind, 1);
    let bestError = expectedSquaredError(h, best, this.kind);
    // From the widest down, replacing only on a strict improvement: ties keep the least clipping.
    for (let c = this.candidates - 1; c >= 1; c--) {
      const r = candidateRange(full, this.kind, c / this.candidates);
      const e = expectedSquaredError(h, r, this.kind);
      if (e < bestError) {
        bestError = e;
        best = r;
      }
    }
    return this.clipToObserved(best.min, best.max);
  }
}

/** The range a fraction α of the observed one gives, for a kind. */
export function candidateRange(observed: FloatRange, kind: QuantKind, alpha: number): FloatRange {
  if (kind === 'int8') {
    const a = alpha * Math.max(Math.abs(observed.min), Math.abs(observed.max));
    return { min: -a, max: a };
  }
  return { min: alpha * Math.min(observed.min, 0), max: alpha * Math.max(observed.max, 0) };
}

/**
 * Mean squared quantize→dequantize error of the histogram's data under the parameters of `range`,
 * values assumed evenly spread within each bin.
 */
export function expectedSquaredError(h: HistogramSnapshot, range: FloatRange, kind: QuantKind): number {
  const { scale, zeroPoint } = quantParams(range, kind);
  const { qmin, qmax } = storageRange(kind);
  const level = (x: number): number => Math.min(qmax, Math.max(qmin, roundHalfEven(x / scale) + zeroPoint));
  if (h.width === 0) {
    const err = h.lo - (level(h.lo) - zeroPoint) * scale;
    return err * err;
  }
  let sum = 0;
  for (let b = 0; b < h.counts.length; b++) {
    const count = h.counts[b];
    if (count === 0) continue;
    const a = h.lo + b * h.width;
    const z = a + h.width;
    let integral = 0;
    for (let l = level(a), last = level(z); l <= last; l++) {
      const v = (l - zeroPoint) * scale;
      // Level l owns [v - scale/2, v + scale/2]; the end levels own everything beyond (saturation).
      const lo = l === qmin ? a : Math.max(a, v - scale / 2);
      const hi = l === qmax ? z : Math.min(z, v + scale / 2);
      if (hi <= lo) continue;
      const u = lo - v;
      const w = hi - v;
      integral += ((hi - lo) * (u * u + u * w + w * w)) / 3;
    }
    sum += (count * integral) / h.width;
  }
  return sum / h.total;
}
