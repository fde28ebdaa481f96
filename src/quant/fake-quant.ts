/**
 * Fake quantization for quantization-aware training: x -> dequantize(quantize(x)) in float32, and
 * the straight-through estimator (STE) for its gradient.
 *
 * The forward uses the very arithmetic of qparams.ts (`quantize`/`dequantize`, ONNX QuantizeLinear
 * and DequantizeLinear): q = saturate(roundHalfEven(fround(x / scale)) + zeroPoint), then
 * fround((q - zeroPoint) * scale). A fake-quantized tensor is therefore bit for bit what the int8
 * graph reconstructs from the codes convertToInt8 stores (tests check this against qparams.ts).
 * The loops are written out here rather than calling `quantizeDequantize` because they run on every
 * activation of every training batch, and the STE needs the in-range mask of the same pass.
 *
 * STE (Bengio et al. 2013; PyTorch's FakeQuantize): the staircase has zero derivative almost
 * everywhere, so backward treats it as the identity where the code was not saturated, i.e. where
 * qmin <= roundHalfEven(x / scale) + zeroPoint <= qmax, and as zero where it was clamped. The
 * scale and zero point get no gradient: observers set them (activations) or the weights' own extremes
 * do (weights), as in PyTorch's default FakeQuantize, not learned as in LSQ.
 */
import { KilnRangeError } from '../errors.js';
import { storageRange, type PerChannelQuantParams, type QuantParams } from './qparams.js';

/**
 * out[i] = fake-quantized data[i] (out may alias data). When `mask` is given, mask[i] = 1 where the
 * code was inside [qmin, qmax] before saturation (the STE passes the gradient there), else 0.
 * A NaN or an infinity is refused with a RangeError naming `name` and the index (its code would be
 * meaningless, and the int8 graph refuses it too).
 */
export function fakeQuantize(data: Float32Array, params: QuantParams, out: Float32Array, mask?: Uint8Array, name = 'data'): void {
  fakeQuantizeRange(data, 0, data.length, params.scale, params.zeroPoint, storageRange(params.kind), out, mask, name);
}

/**
 * Per-output-channel fake quantization along axis 0 (OIHW conv weights, [out, in] Linear weights):
 * channel c (the elements [c*per, (c+1)*per)) uses scales[c] and zeroPoints[c].
 */
export function fakeQuantizePerChannel(data: Float32Array, params: PerChannelQuantParams, out: Float32Array, mask?: Uint8Array, name = 'data'): void {
  const channels = params.scales.length;
  const per = data.length / channels;
  const range = storageRange(params.kind);
  for (let c = 0; c < channels; c++) {
    fakeQuantizeRange(data, c * per, (c + 1) * per, params.scales[c], params.zeroPoints[c], range, out, mask, name);
  }
}

function fakeQuantizeRange(
  data: Float32Array,
  begin: number,
  end: number,
  scale: number,
  zeroPoint: number,
  { qmin, qmax }: { qmin: number; qmax: number },
  out: Float32Array,
  mask: Uint8Array | undefined,
  name: string,
): void {
  for (let i = begin; i < end; i++) {
    // roundHalfEven inlined (this loop runs over every activation of every batch): Math.round
    // rounds ties up, so a tie that landed on an odd integer goes back down by one. `& 1` keeps the
    // parity of any integer below 2^53 (ToInt32 is modulo 2^32), and larger values have no ties.
    const v = Math.fround(data[i] / scale);
    let r = Math.round(v);
    if (r - v === 0.5 && (r & 1) !== 0) r -= 1;
    const unclamped = r + zeroPoint;
    // Not finite exactly when the input was NaN or infinite (x - x is then NaN).
    if (unclamped - unclamped !== 0) throw new KilnRangeError(`Expected finite values for ${name} but received ${data[i]} at index ${i}`);
    const inside = unclamped >= qmin && unclamped <= qmax;
    const q = inside ? unclamped : unclamped < qmin ? qmin : qmax;
    out[i] = (q - zeroPoint) * scale;
    if (mask !== undefined) mask[i] = inside ? 1 : 0;
  }
}

/** STE backward: gradInput[i] = gradOutput[i] where mask[i] is 1, else 0 (gradInput may alias gradOutput). */
export function straightThroughGradient(gradOutput: Float32Array, mask: Uint8Array, gradInput: Float32Array): void {
  for (let i = 0; i < gradOutput.length; i++) gradInput[i] = mask[i] === 1 ? gradOutput[i] : 0;
}
