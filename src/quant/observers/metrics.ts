/** Measures of quantization damage, for reports and tests. */
import { KilnRangeError } from '../../errors.js';
import { shapeError, typeError } from '../../validate.js';

type Floats = Float32Array | Float64Array;

/**
 * Signal-to-quantization-noise ratio in dB: 10·log10(Σ ref² / Σ (ref - approx)²).
 * Infinity when approx equals ref; -Infinity when ref is all zeros but approx is not.
 */
export function sqnr(ref: Floats, approx: Floats): number {
  for (const [name, a] of [['ref', ref], ['approx', approx]] as const) {
    if (!(a instanceof Float32Array) && !(a instanceof Float64Array)) throw typeError(name, 'a Float32Array or Float64Array', a);
  }
  if (ref.length !== approx.length) throw shapeError('approx', `${ref.length} elements (as ref)`, `${approx.length}`);
  if (ref.length === 0) throw new KilnRangeError('Expected at least one element for ref but received 0');
  let signal = 0;
  let noise = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = ref[i] - approx[i];
    signal += ref[i] * ref[i];
    noise += d * d;
  }
  if (!Number.isFinite(signal) || Number.isNaN(noise)) {
    throw new KilnRangeError('Expected finite values for ref and approx but received NaN or Infinity');
  }
  if (noise === 0) return Infinity;
  return 10 * Math.log10(signal / noise);
}
