/**
 * The base of every calibration observer: argument and finiteness checks, the observed extremes,
 * the "no data yet" state, and the range → quantization parameter step they all share.
 */
import { ErrorCode, KilnError, KilnRangeError } from '../../errors.js';
import { string, typeError } from '../../validate.js';
import { quantParams, type FloatRange, type QuantKind, type QuantParams } from '../qparams.js';

/**
 * Check a batch and return its extremes. A NaN or an infinity would poison every statistic silently,
 * so it is refused with the tensor's name and the first offending index.
 */
export function batchRange(name: string, data: unknown): FloatRange {
  if (!(data instanceof Float32Array)) throw typeError(name, 'a Float32Array', data);
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    // v - v is NaN for NaN and ±Infinity, 0 for every finite value.
    if (v - v !== 0) throw new KilnRangeError(`Expected finite values for ${name} but received ${v} at index ${i}`);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

export abstract class Observer {
  /** The tensor being calibrated; every error names it. */
  readonly name: string;
  private seenMin = Infinity;
  private seenMax = -Infinity;
  private cached: FloatRange | undefined;

  protected constructor(name: string) {
    this.name = string('name', name);
  }

  /**
   * Record one calibration batch (call once per batch, any number of times). Empty batches are ignored.
   * @throws RangeError (code ERR_KILN_INVALID_ARG) naming the tensor on NaN or ±Infinity; the
   *   observer's state is unchanged.
   */
  observe(data: Float32Array): void {
    const batch = batchRange(this.name, data);
    if (data.length === 0) return;
    this.collect(data, batch);
    this.seenMin = Math.min(this.seenMin, batch.min);
    this.seenMax = Math.max(this.seenMax, batch.max);
    this.cached = undefined;
  }

  /** True once a non-empty batch has been observed. */
  get hasData(): boolean {
    return this.seenMin <= this.seenMax;
  }

  /** Extremes of everything observed (what a min-max observer without momentum would return). */
  observedRange(): FloatRange {
    this.requireData();
    return { min: this.seenMin, max: this.seenMax };
  }

  /**
   * The calibrated clipping range. Computed on first call after new data, then cached.
   * @throws KilnError ERR_KILN_INVALID_STATE before any data ("no calibration data").
   */
  range(): FloatRange {
    this.requireData();
    this.cached ??= this.computeRange();
    return this.cached;
  }

  /** Quantization parameters for the calibrated range (`'uint8'` asymmetric by default). */
  qparams(kind: QuantKind = 'uint8'): QuantParams {
    return quantParams(this.range(), kind, this.name);
  }

  /** Fraction of `data` outside the calibrated [min, max] (0 for an empty array). */
  clippingFraction(data: Float32Array): number {
    batchRange(this.name, data);
    const { min, max } = this.range();
    let outside = 0;
    for (let i = 0; i < data.length; i++) if (data[i] < min || data[i] > max) outside++;
    return data.length === 0 ? 0 : outside / data.length;
  }

  /** Accumulate a checked, non-empty batch whose extremes are `batch`. */
  protected abstract collect(data: Float32Array, batch: FloatRange): void;

  /** The range from the accumulated state (data is guaranteed). */
  protected abstract computeRange(): FloatRange;

  /** Clip a symmetric threshold to what was actually observed (so ReLU outputs get [0, T], not [-T, T]). */
  protected clipToObserved(lo: number, hi: number): FloatRange {
    return { min: Math.max(this.seenMin, Math.min(lo, this.seenMax)), max: Math.min(this.seenMax, Math.max(hi, this.seenMin)) };
  }

  private requireData(): void {
    if (!this.hasData) {
      throw new KilnError(ErrorCode.INVALID_STATE, `Expected calibration data for ${this.name} but received no calibration data (call observe() first)`);
    }
  }
}
