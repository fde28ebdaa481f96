/**
 * Fake quantization for QAT: the forward is bit for bit qparams.ts quantize -> dequantize (per tensor
 * and per channel, ties and saturation included); the straight-through gradient agrees with finite
 * differences of the staircase taken over whole quantization steps away from rounding boundaries
 * (slope 1 inside the range, 0 where it saturates); the activation layer's observer moves only in
 * training mode and stops when frozen.
 */
import { describe, expect, it } from 'vitest';

import { fakeQuantize, fakeQuantizePerChannel, straightThroughGradient } from '../../src/quant/fake-quant.js';
import { ActivationFakeQuant } from '../../src/quant/qat-activation.js';
import {
  dequantizePerChannel,
  perChannelQuantParams,
  quantParams,
  quantizeDequantize,
  quantizePerChannel,
  type QuantParams,
} from '../../src/quant/qparams.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** Random values spread over [lo, hi] plus exact ties (half-steps), grid points, zeros and far outliers. */
function testValues(rng: Rng, n: number, params: QuantParams, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const pick = i % 5;
    const q = rng.int(300) - 150;
    if (pick === 0) out[i] = (q + 0.5) * params.scale; // a tie (as close as float32 gets)
    else if (pick === 1) out[i] = q * params.scale; // on the grid
    else if (pick === 2) out[i] = rng.uniform(lo * 4, hi * 4); // often saturating
    else out[i] = rng.uniform(lo, hi);
  }
  out[0] = 0;
  out[1] = -0;
  return out;
}

describe('fakeQuantize', () => {
  it('equals quantize -> dequantize of qparams.ts bit for bit (uint8 and int8, ties, saturation)', () => {
    const rng = new Rng(11);
    const ranges = [
      { min: -1.3, max: 2.7 },
      { min: 0, max: 6.1 },
      { min: 0.25, max: 0.75 },
      { min: -3e-3, max: 1e-3 },
    ];
    for (const range of ranges) {
      for (const kind of ['uint8', 'int8'] as const) {
        const params = quantParams(range, kind);
        const x = testValues(rng, 2001, params, range.min, range.max);
        const expected = quantizeDequantize(x, params);
        const out = new Float32Array(x.length).fill(NaN);
        const mask = new Uint8Array(x.length).fill(7);
        fakeQuantize(x, params, out, mask);
        expect(bits(out)).toEqual(bits(expected));
        // Some values did saturate and some did not, so both mask values are exercised.
        expect(mask.every((m) => m === 0 || m === 1)).toBe(true);
        expect(mask.includes(0) && mask.includes(1)).toBe(true);
        // In place too.
        const inPlace = x.slice();
        fakeQuantize(inPlace, params, inPlace);
        expect(bits(inPlace)).toEqual(bits(expected));
      }
    }
  });

  it('per output channel equals quantizePerChannel -> dequantizePerChannel bit for bit', () => {
    const rng = new Rng(12);
    for (const shape of [[1, 1], [7, 3, 3, 3], [13, 5], [2, 1, 1, 1]]) {
      const count = shape.reduce((a, b) => a * b, 1);
      const w = new Float32Array(count);
      for (let i = 0; i < count; i++) w[i] = rng.normal() * (1 + (i % 3));
      const params = perChannelQuantParams(w, shape, 'int8');
      const expected = dequantizePerChannel(quantizePerChannel(w, shape, params), shape, params);
      const out = new Float32Array(count).fill(NaN);
      fakeQuantizePerChannel(w, params, out);
      expect(bits(out)).toEqual(bits(expected));
    }
  });

  it('refuses NaN and infinities with a RangeError naming the tensor and index', () => {
    const params = quantParams({ min: -1, max: 1 });
    for (const bad of [NaN, Infinity, -Infinity]) {
      const x = new Float32Array([0.5, bad]);
      expect(() => fakeQuantize(x, params, new Float32Array(2), undefined, 'conv1 output')).toThrow(
        new RegExp(`Expected finite values for conv1 output but received ${bad} at index 1`),
      );
    }
  });
});

describe('straight-through estimator', () => {
  /** fake-quant of one value in float64 terms (the forward under test). */
  function fq(x: number, params: QuantParams): number {
    const out = new Float32Array(1);
    fakeQuantize(new Float32Array([x]), params, out);
    return out[0];
  }

  it('matches central finite differences over whole steps: slope 1 inside the range, 0 outside', () => {
    const rng = new Rng(13);
    for (const [range, kind] of [[{ min: -2, max: 3 }, 'uint8'], [{ min: 0, max: 1 }, 'uint8'], [{ min: -1, max: 1 }, 'int8']] as const) {
      const params = quantParams(range, kind);
      const { scale: s, zeroPoint: zp } = params;
      const [qmin, qmax] = kind === 'uint8' ? [0, 255] : [-128, 127];
      const lo = (qmin - zp) * s;
      const hi = (qmax - zp) * s;
      const xs: number[] = [];
      const checked = { inside: 0, outside: 0 };
      while (xs.length < 400) {
        // Codes well beyond both ends, positions within a cell kept 0.2 step from its rounding boundaries.
        const cell = rng.int(qmax - qmin + 80) + qmin - 40;
        const x = Math.fround((cell - zp + rng.uniform(-0.3, 0.3)) * s);
        xs.push(x);
      }
      const input = new Float32Array(xs);
      const mask = new Uint8Array(xs.length);
      fakeQuantize(input, params, new Float32Array(xs.length), mask);
      const upstream = new Float32Array(xs.length).map(() => rng.uniform(-2, 2));
      const grad = new Float32Array(xs.length).fill(NaN);
      straightThroughGradient(upstream, mask, grad);
      xs.forEach((x, i) => {
        // A difference of m steps each way moves exactly m cells (x stays 0.2 step from any boundary).
        const m = 3;
        const steps = [x - m * s, x + m * s];
        const bothInside = steps.every((v) => v > lo + s && v < hi - s);
        const bothOutside = steps.every((v) => v < lo - s) || steps.every((v) => v > hi + s);
        if (!bothInside && !bothOutside) return; // the difference straddles the clamp edge
        const slope = (fq(x + m * s, params) - fq(x - m * s, params)) / (2 * m * s);
        expect(slope).toBeCloseTo(bothInside ? 1 : 0, 5);
        expect(grad[i]).toBe(bothInside ? upstream[i] : 0);
        if (bothInside) checked.inside++;
        else checked.outside++;
      });
      expect(checked.inside).toBeGreaterThan(100);
      expect(checked.outside).toBeGreaterThan(5);
    }
  });
});

describe('ActivationFakeQuant', () => {
  const tensor = (values: number[], dims = [1, values.length]): Tensor<'float32'> => new Tensor('float32', new Float32Array(values), dims);

  it('tracks a moving-average range in training mode, leaves it in eval mode and when frozen', async () => {
    const fq = new ActivationFakeQuant('act', 0.5);
    fq.train(true);
    await fq.forward(tensor([0, 4]));
    expect(fq.range()).toEqual({ min: 0, max: 4 });
    await fq.forward(tensor([-2, 8]));
    expect(fq.range()).toEqual({ min: -1, max: 6 });
    fq.eval();
    await fq.forward(tensor([-100, 100]));
    expect(fq.range()).toEqual({ min: -1, max: 6 });
    fq.train(true).freeze();
    await fq.forward(tensor([-100, 100]));
    expect(fq.range()).toEqual({ min: -1, max: 6 });
    // The output uses the frozen range: saturated at both ends.
    const y = await fq.forward(tensor([-100, 0.3, 100]));
    const expected = quantizeDequantize(new Float32Array([-100, 0.3, 100]), quantParams({ min: -1, max: 6 }));
    expect(bits(y.data)).toEqual(bits(expected));
    // Backward: the STE mask of that batch.
    const g = await fq.backward(tensor([1, 2, 3], [1, 3]));
    expect(Array.from(g.data)).toEqual([0, 2, 0]);
  });

  it('a first batch in eval mode initialises the range; backward needs a training forward', async () => {
    const fq = new ActivationFakeQuant('act');
    fq.eval();
    await fq.forward(tensor([0, 2]));
    expect(fq.range()).toEqual({ min: 0, max: 2 });
    await expect(fq.backward(tensor([1, 1]))).rejects.toThrow(/backward\(\) was called before forward\(\) in training mode/);
  });

  it('refuses NaN activations with the tensor named, in training and eval mode', async () => {
    const fq = new ActivationFakeQuant('conv1 output');
    await expect(fq.forward(tensor([0, NaN]))).rejects.toThrow(/Expected finite values for conv1 output but received NaN at index 1/);
    await fq.forward(tensor([0, 1]));
    fq.eval();
    await expect(fq.forward(tensor([Infinity, 0]))).rejects.toThrow(/Expected finite values for conv1 output but received Infinity at index 0/);
  });
});
