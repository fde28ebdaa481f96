/**
 * Quantization parameters and calibration observers: exactness of qparams, observers against
 * independent references (sorted samples, brute-force MSE, analytic optima), histogram re-binning,
 * and the error contract (NaN/Inf/no data).
 */
import { describe, expect, it } from 'vitest';

import { ErrorCode, KilnError } from '../../src/errors.js';
import {
  EntropyObserver,
  Histogram,
  MinMaxObserver,
  MseObserver,
  PercentileObserver,
  createObserver,
  expectedSquaredError,
  sqnr,
  type Observer,
} from '../../src/quant/observers/index.js';
import {
  dequantize,
  dequantizePerChannel,
  perChannelQuantParams,
  quantParams,
  quantize,
  quantizeDequantize,
  quantizePerChannel,
  roundHalfEven,
  type FloatRange,
  type QuantKind,
} from '../../src/quant/qparams.js';
import { Rng } from '../../src/util/rng.js';

const rng = new Rng(20240611);

function laplace(n: number, b = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng.next() - 0.5;
    out[i] = -b * Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
  }
  return out;
}

/** Laplace(1) quantiles at (i + 0.5)/n: a sample without sampling noise, so the brute-force MSE curve is smooth. */
function laplaceQuantiles(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = (i + 0.5) / n - 0.5;
    out[i] = -Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
  }
  return out;
}

function uniform(n: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.uniform(lo, hi);
  return out;
}

function normal(n: number, sigma = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = sigma * rng.normal();
  return out;
}

/** The ceil(q·n)-th smallest value (1-based), the sample quantile a histogram estimate must share a bin with. */
function sortedQuantile(sorted: Float64Array, q: number): number {
  const k = Math.ceil(q * sorted.length);
  return k <= 0 ? sorted[0] : sorted[k - 1];
}

function actualMse(data: Float32Array, range: FloatRange, kind: QuantKind): number {
  const approx = quantizeDequantize(data, quantParams(range, kind));
  let sum = 0;
  for (let i = 0; i < data.length; i++) sum += (data[i] - approx[i]) ** 2;
  return sum / data.length;
}

function expectCode(fn: () => unknown, code: string, ctor: abstract new (...args: never[]) => Error, text?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ctor);
  expect((caught as { code?: string }).code).toBe(code);
  if (text) expect((caught as Error).message).toMatch(text);
}

describe('roundHalfEven / quantize / dequantize', () => {
  it('rounds ties to even like ONNX QuantizeLinear', () => {
    expect([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 2.4999, 2.5001, 1e15 + 0.5].map(roundHalfEven)).toEqual([0, 2, 2, 4, 0, -2, -2, 2, 3, 1e15]);
    const q = quantize(new Float32Array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5]), { kind: 'int8', scale: 1, zeroPoint: 0 });
    expect(Array.from(q)).toEqual([0, 2, 2, 0, -2, -2]);
    const u = quantize(new Float32Array([0.5, 1.5, 2.5]), { kind: 'uint8', scale: 1, zeroPoint: 10 });
    expect(Array.from(u)).toEqual([10, 12, 12]);
  });

  it('saturates to the storage range and dequantizes as (q - zp) * scale', () => {
    const x = new Float32Array([-1000, -1, 0, 1, 1000]);
    expect(Array.from(quantize(x, { kind: 'int8', scale: 0.5, zeroPoint: 0 }))).toEqual([-128, -2, 0, 2, 127]);
    expect(Array.from(quantize(x, { kind: 'uint8', scale: 0.5, zeroPoint: 3 }))).toEqual([0, 1, 3, 5, 255]);
    const back = dequantize(new Uint8Array([0, 3, 255]), { kind: 'uint8', scale: 0.5, zeroPoint: 3 });
    expect(Array.from(back)).toEqual([-1.5, 0, 126]);
  });

  it('refuses bad parameters, NaN data and the wrong storage type', () => {
    const x = new Float32Array([1]);
    expectCode(() => quantize(x, { kind: 'int8', scale: 0, zeroPoint: 0 }), ErrorCode.INVALID_ARG, RangeError, /params.scale/);
    expectCode(() => quantize(x, { kind: 'uint8', scale: 1, zeroPoint: 256 }), ErrorCode.INVALID_ARG, RangeError, /zeroPoint/);
    expectCode(() => quantize(x, { kind: 'int16' as QuantKind, scale: 1, zeroPoint: 0 }), ErrorCode.INVALID_ARG, RangeError, /kind/);
    expectCode(() => quantize(new Float32Array([0, NaN]), { kind: 'int8', scale: 1, zeroPoint: 0 }), ErrorCode.INVALID_ARG, RangeError, /index 1/);
    expectCode(() => dequantize(new Int8Array(1), { kind: 'uint8', scale: 1, zeroPoint: 0 }), ErrorCode.INVALID_ARG, TypeError, /Uint8Array/);
  });
});

describe('quantParams', () => {
  const ranges: FloatRange[] = [
    { min: -1, max: 1 },
    { min: -0.3, max: 7.9 },
    { min: 0.25, max: 3 }, // all positive: extended down to 0
    { min: -5, max: -0.5 }, // all negative: extended up to 0
    { min: -1e-3, max: 1e5 },
    { min: -3.4e38, max: 3.4e38 },
    { min: 2, max: 2 },
  ];
  for (let i = 0; i < 40; i++) {
    const a = rng.normal() * 10 ** rng.uniform(-3, 3);
    const b = rng.normal() * 10 ** rng.uniform(-3, 3);
    ranges.push({ min: Math.fround(Math.min(a, b)), max: Math.fround(Math.max(a, b)) });
  }

  it('uint8 asymmetric: 0 exactly representable, zero point in [0, 255], range ends at the end codes', () => {
    for (const r of ranges) {
      const p = quantParams(r, 'uint8');
      const lo = Math.min(r.min, 0);
      const hi = Math.max(r.max, 0);
      expect(p.kind).toBe('uint8');
      expect(p.scale).toBe(Math.fround((hi - lo) / 255));
      expect(Number.isInteger(p.zeroPoint) && p.zeroPoint >= 0 && p.zeroPoint <= 255).toBe(true);
      const zero = quantize(new Float32Array([0]), p);
      expect(zero[0]).toBe(p.zeroPoint);
      expect(dequantize(zero, p)[0]).toBe(0);
      const ends = quantize(new Float32Array([lo, hi]), p);
      expect(ends[0]).toBeLessThanOrEqual(1);
      expect(ends[1]).toBeGreaterThanOrEqual(254);
      // Inside the range the rounding error is at most half a step (plus float32 slack).
      const inside = new Float32Array(64).map(() => rng.uniform(lo, hi));
      const back = quantizeDequantize(inside, p);
      for (let i = 0; i < inside.length; i++) expect(Math.abs(back[i] - inside[i])).toBeLessThanOrEqual(p.scale * 0.5 * (1 + 1e-5) + 1e-6 * Math.abs(inside[i]));
    }
  });

  it('int8 symmetric: zero point 0, scale max|x| / 127, ±max at ±127, q(-x) = -q(x)', () => {
    for (const r of ranges) {
      const p = quantParams(r, 'int8');
      const amax = Math.max(Math.abs(r.min), Math.abs(r.max));
      expect(p.zeroPoint).toBe(0);
      expect(p.scale).toBe(Math.fround(amax / 127));
      const x = new Float32Array([amax, -amax, ...Array.from({ length: 32 }, () => rng.uniform(-amax, amax))]);
      const q = quantize(x, p);
      expect(q[0]).toBe(127);
      expect(q[1]).toBe(-127);
      const neg = quantize(x.map((v) => -v), p);
      for (let i = 0; i < x.length; i++) expect(neg[i]).toBe(-q[i] || 0);
    }
  });

  it('degenerate ranges get scale 1 and zero point 0; a constant non-zero range is extended to 0', () => {
    expect(quantParams({ min: 0, max: 0 }, 'uint8')).toEqual({ kind: 'uint8', scale: 1, zeroPoint: 0 });
    expect(quantParams({ min: 0, max: 0 }, 'int8')).toEqual({ kind: 'int8', scale: 1, zeroPoint: 0 });
    expect(quantParams({ min: -1e-40, max: 1e-40 }, 'int8')).toEqual({ kind: 'int8', scale: 1, zeroPoint: 0 });
    expect(quantParams({ min: 0, max: 1e-39 }, 'uint8')).toEqual({ kind: 'uint8', scale: 1, zeroPoint: 0 });
    const p = quantParams({ min: 5, max: 5 }, 'uint8');
    expect(p).toEqual({ kind: 'uint8', scale: Math.fround(5 / 255), zeroPoint: 0 });
    expect(quantParams({ min: -5, max: -5 }, 'uint8').zeroPoint).toBe(255);
  });

  it('refuses NaN, Infinity and inverted ranges, naming the tensor', () => {
    expectCode(() => quantParams({ min: NaN, max: 1 }, 'uint8', 'conv1.out'), ErrorCode.INVALID_ARG, RangeError, /conv1\.out\.min/);
    expectCode(() => quantParams({ min: 0, max: Infinity }, 'int8', 'fc.w'), ErrorCode.INVALID_ARG, RangeError, /fc\.w\.max/);
    expectCode(() => quantParams({ min: 2, max: 1 }, 'uint8', 'relu3'), ErrorCode.INVALID_ARG, RangeError, /min <= max for relu3/);
    expectCode(() => quantParams({ min: -1, max: 1 }, 'uint4' as QuantKind), ErrorCode.INVALID_ARG, RangeError, /kind/);
    expectCode(() => quantParams(null as unknown as FloatRange), ErrorCode.INVALID_ARG, TypeError);
    expectCode(() => quantParams({ min: -1e300, max: 1e300 }, 'uint8'), ErrorCode.INVALID_ARG, RangeError, /float32/);
  });
});

describe('per-channel quantization (OIHW, axis 0)', () => {
  const dims = [7, 3, 3, 3];
  const per = 27;
  const w = normal(7 * per, 0.2);
  w.fill(0, 2 * per, 3 * per); // an all-zero channel (a pruned filter)
  w.fill(-0.75, 4 * per, 5 * per); // a constant channel
  for (let i = 6 * per; i < 7 * per; i++) w[i] *= 50; // a channel with a much wider range

  for (const kind of ['int8', 'uint8'] as const) {
    it(`${kind}: one scale per output channel, each the per-tensor rule on that channel`, () => {
      const p = perChannelQuantParams(w, dims, kind, 'conv1.weight');
      expect(p.scales.length).toBe(7);
      for (let c = 0; c < 7; c++) {
        let min = Infinity;
        let max = -Infinity;
        for (let i = c * per; i < (c + 1) * per; i++) {
          min = Math.min(min, w[i]);
          max = Math.max(max, w[i]);
        }
        const ref = quantParams({ min, max }, kind);
        expect([p.scales[c], p.zeroPoints[c]]).toEqual([ref.scale, ref.zeroPoint]);
      }
      expect(p.scales[2]).toBe(1);
      const q = quantizePerChannel(w, dims, p);
      const back = dequantizePerChannel(q, dims, p);
      for (let c = 0; c < 7; c++) {
        for (let i = c * per; i < (c + 1) * per; i++) expect(Math.abs(back[i] - w[i])).toBeLessThanOrEqual(p.scales[c] * 0.5 * (1 + 1e-5));
      }
      // The all-zero channel comes back exactly; per-tensor scaling would have crushed the narrow channels.
      for (let i = 2 * per; i < 3 * per; i++) expect(back[i]).toBe(0);
      expect(p.scales[0]).toBeLessThan(p.scales[6] / 10);
    });
  }

  it('refuses shapes that do not match the data and NaN weights, naming the tensor', () => {
    expectCode(() => perChannelQuantParams(w, [7, 3, 3, 2], 'int8'), ErrorCode.SHAPE_MISMATCH, RangeError);
    expectCode(() => perChannelQuantParams(w, [], 'int8'), ErrorCode.SHAPE_MISMATCH, RangeError);
    const bad = w.slice();
    bad[100] = NaN;
    expectCode(() => perChannelQuantParams(bad, dims, 'int8', 'conv2.weight'), ErrorCode.INVALID_ARG, RangeError, /conv2\.weight.*index 100/);
    const p = perChannelQuantParams(w, dims, 'int8');
    expectCode(() => quantizePerChannel(w, [1, 7 * per], p), ErrorCode.SHAPE_MISMATCH, RangeError);
    expectCode(() => dequantizePerChannel(new Uint8Array(w.length), dims, p), ErrorCode.INVALID_ARG, TypeError);
  });
});

describe('Histogram', () => {
  it('growing over batches keeps the total and equals binning all the data directly on the final grid', () => {
    for (const mode of ['signed', 'absolute'] as const) {
      const h = new Histogram(256, mode);
      // Constant first, then growing right, both ways, then left only (the range must keep covering the old data).
      const batches = [new Float32Array(500), uniform(1000, 0.1, 0.2), normal(2000, 0.5), uniform(1000, -3, 40), laplace(3000, 2), uniform(200, -60, -59)];
      let all: number[] = [];
      let widths = 0;
      for (const b of batches) {
        const before = h.binWidth;
        h.add(b);
        if (h.binWidth !== before) widths++;
        all = all.concat(Array.from(b));
      }
      expect(widths).toBeGreaterThanOrEqual(3); // the range really grew several times
      const snap = h.snapshot();
      expect(snap.total).toBe(all.length);
      expect(snap.counts.reduce((a, c) => a + c, 0)).toBe(all.length);
      const direct = new Float64Array(256);
      for (const x of all) {
        const v = mode === 'absolute' ? Math.abs(x) : x;
        direct[Math.min(255, Math.max(0, Math.floor((v - snap.lo) / snap.width)))]++;
      }
      expect(Array.from(snap.counts)).toEqual(Array.from(direct));
      const values = Float64Array.from(all.map((x) => (mode === 'absolute' ? Math.abs(x) : x))).sort();
      expect(snap.min).toBe(values[0]);
      expect(snap.max).toBe(values[values.length - 1]);
      for (const q of [0.01, 0.25, 0.5, 0.9, 0.999]) {
        expect(Math.abs(h.quantile(q) - sortedQuantile(values, q))).toBeLessThanOrEqual(snap.width * (1 + 1e-9));
      }
    }
  });

  it('a constant first batch is a point mass until the data spreads', () => {
    const h = new Histogram(16);
    h.add(new Float32Array([2, 2, 2]));
    expect(h.binWidth).toBe(0);
    expect(h.quantile(0.5)).toBe(2);
    h.add(new Float32Array([-6]));
    const s = h.snapshot();
    expect(s.width).toBe(0.5);
    expect(s.counts[0]).toBe(1);
    expect(s.counts[15]).toBe(3); // 2 is the upper edge: the last bin
  });
});

/** Every observer kind, with options small enough for the error tests. */
function everyObserver(name: string): Observer[] {
  return [
    new MinMaxObserver(name),
    new MinMaxObserver(name, { momentum: 0.1 }),
    new PercentileObserver(name),
    new PercentileObserver(name, { symmetric: true }),
    new EntropyObserver(name),
    new MseObserver(name),
    new MseObserver(name, { kind: 'int8' }),
  ];
}

describe('observer errors', () => {
  it('range() and qparams() before any data (or only empty batches) → ERR_KILN_INVALID_STATE', () => {
    for (const o of everyObserver('conv2.out')) {
      expectCode(() => o.range(), ErrorCode.INVALID_STATE, KilnError, /conv2\.out.*no calibration data/);
      o.observe(new Float32Array(0));
      expectCode(() => o.qparams(), ErrorCode.INVALID_STATE, KilnError, /no calibration data/);
    }
  });

  it('NaN and ±Infinity are refused with ERR_KILN_INVALID_ARG naming the tensor, leaving the state unchanged', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      for (const o of everyObserver('block3.relu')) {
        const data = new Float32Array([0.5, -1, 2, bad, 1]);
        expectCode(() => o.observe(data), ErrorCode.INVALID_ARG, RangeError, new RegExp(`block3\\.relu.*${bad}.*index 3`));
        expectCode(() => o.range(), ErrorCode.INVALID_STATE, KilnError);
        o.observe(new Float32Array([-1, 3]));
        const before = o.range();
        expectCode(() => o.observe(data), ErrorCode.INVALID_ARG, RangeError);
        expect(o.range()).toEqual(before);
        expectCode(() => o.clippingFraction(data), ErrorCode.INVALID_ARG, RangeError);
      }
    }
  });

  it('all-zero data (a dead channel) gives the range [0, 0] and the safe scale 1 for every observer', () => {
    for (const o of everyObserver('dead')) {
      o.observe(new Float32Array(100));
      o.observe(new Float32Array(7));
      expect(o.range()).toEqual({ min: 0, max: 0 });
      expect(o.qparams()).toEqual({ kind: 'uint8', scale: 1, zeroPoint: 0 });
      expect(o.clippingFraction(new Float32Array([0, 1]))).toBe(0.5);
    }
  });

  it('wrong argument types and options', () => {
    const o = new MinMaxObserver('x');
    expectCode(() => o.observe([1, 2] as unknown as Float32Array), ErrorCode.INVALID_ARG, TypeError, /Float32Array for x/);
    expectCode(() => o.observe(new Float64Array(2) as unknown as Float32Array), ErrorCode.INVALID_ARG, TypeError);
    expectCode(() => new MinMaxObserver(3 as unknown as string), ErrorCode.INVALID_ARG, TypeError, /name/);
    expectCode(() => new MinMaxObserver('x', { momentum: 0 }), ErrorCode.INVALID_ARG, RangeError, /momentum/);
    expectCode(() => new MinMaxObserver('x', { momentum: 1.5 }), ErrorCode.INVALID_ARG, RangeError, /momentum/);
    expectCode(() => new PercentileObserver('x', { percentile: 0 }), ErrorCode.INVALID_ARG, RangeError, /percentile/);
    expectCode(() => new PercentileObserver('x', { percentile: 100.5 }), ErrorCode.INVALID_ARG, RangeError, /percentile/);
    expectCode(() => new EntropyObserver('x', { bins: 64 }), ErrorCode.INVALID_ARG, RangeError, /quantizedBins/);
    expectCode(() => new MseObserver('x', { kind: 'int4' as QuantKind }), ErrorCode.INVALID_ARG, RangeError, /kind/);
    expectCode(() => createObserver('kl' as 'entropy', 'x'), ErrorCode.INVALID_ARG, RangeError, /method/);
  });
});

describe('MinMaxObserver', () => {
  it('running extremes over batches', () => {
    const o = new MinMaxObserver('act');
    o.observe(new Float32Array([3, -1, 2]));
    o.observe(new Float32Array([5, 0]));
    o.observe(new Float32Array([1]));
    expect(o.range()).toEqual({ min: -1, max: 5 });
    expect(o.qparams('uint8')).toEqual(quantParams({ min: -1, max: 5 }, 'uint8'));
    expect(o.qparams('int8')).toEqual({ kind: 'int8', scale: Math.fround(5 / 127), zeroPoint: 0 });
    expect(o.clippingFraction(new Float32Array([-1, 5, 0]))).toBe(0);
    expect(o.clippingFraction(new Float32Array([-1.5, 5, 0, 6]))).toBe(0.5);
  });

  it('momentum: an exponential moving average of per-batch extremes, starting from the first batch', () => {
    const o = new MinMaxObserver('act', { momentum: 0.1 });
    o.observe(new Float32Array([-1, 1]));
    expect(o.range()).toEqual({ min: -1, max: 1 });
    o.observe(new Float32Array([-3, 0, 3]));
    const r = o.range();
    expect(r.min).toBeCloseTo(-1.2, 12);
    expect(r.max).toBeCloseTo(1.2, 12);
    o.observe(new Float32Array([0.5]));
    expect(o.range().min).toBeCloseTo(-1.2 + 0.1 * (0.5 + 1.2), 12);
    expect(o.range().max).toBeCloseTo(1.2 + 0.1 * (0.5 - 1.2), 12);
    expect(o.observedRange()).toEqual({ min: -3, max: 3 });
  });
});

describe('PercentileObserver', () => {
  const data = normal(60_000, 2);
  // Fed in batches of growing spread so the histogram re-bins on the way.
  const batches = [data.subarray(0, 100).map((v) => v / 8), data.subarray(100, 20_000), data.subarray(20_000).map((v) => v * 1.5)];
  const all = Float64Array.from(batches.flatMap((b) => Array.from(b)));
  const sorted = all.slice().sort();
  const sortedAbs = all.map(Math.abs).sort();

  for (const percentile of [90, 99, 99.9, 99.99]) {
    it(`two-sided ${percentile}: each end within one bin of the sorted-sample quantile`, () => {
      const o = new PercentileObserver('act', { percentile });
      for (const b of batches) o.observe(b);
      const r = o.range();
      const w = o.histogram.binWidth;
      const tail = (1 - percentile / 100) / 2;
      expect(Math.abs(r.min - sortedQuantile(sorted, tail))).toBeLessThanOrEqual(w * (1 + 1e-9));
      expect(Math.abs(r.max - sortedQuantile(sorted, 1 - tail))).toBeLessThanOrEqual(w * (1 + 1e-9));
      // The fraction clipped is the requested one, up to the values inside the two edge bins.
      const clipped = o.clippingFraction(Float32Array.from(all));
      expect(Math.abs(clipped - (1 - percentile / 100))).toBeLessThanOrEqual(0.002 + 2 / all.length);
    });

    it(`symmetric ${percentile}: ±T with T within one bin of the sorted |x| quantile`, () => {
      const o = new PercentileObserver('act', { percentile, symmetric: true });
      for (const b of batches) o.observe(b);
      const r = o.range();
      expect(r.min).toBe(-r.max);
      expect(Math.abs(r.max - sortedQuantile(sortedAbs, percentile / 100))).toBeLessThanOrEqual(o.histogram.binWidth * (1 + 1e-9));
    });
  }

  it('percentile 100 is the min-max range; ReLU data keeps a lower end of 0', () => {
    const o = new PercentileObserver('act', { percentile: 100 });
    o.observe(data);
    expect(o.range()).toEqual({ min: Math.min(...data), max: Math.max(...data) });
    const s = new PercentileObserver('relu', { percentile: 99, symmetric: true });
    s.observe(data.map((v) => Math.max(v, 0)));
    expect(s.range().min).toBe(0);
  });
});

describe('EntropyObserver (KL divergence)', () => {
  it('clips heavy-tailed (Laplace) data well below its maximum, inside the observed range', () => {
    // Noise-free quantiles: with random draws the few points in the far tail move T by ±10%.
    const d = laplaceQuantiles(50_000);
    const o = new EntropyObserver('act');
    o.observe(d);
    const r = o.range();
    const { min, max } = o.observedRange();
    const amax = Math.max(-min, max);
    expect(r.min).toBeGreaterThanOrEqual(min);
    expect(r.max).toBeLessThanOrEqual(max);
    // [-T, T] clipped to the observed extremes.
    const t = Math.max(-r.min, r.max);
    expect(r.min).toBe(Math.max(min, -t));
    expect(r.max).toBe(Math.min(max, t));
    expect(t).toBeGreaterThan(0.5 * amax);
    expect(t).toBeLessThan(0.95 * amax);
  });

  it('is not pulled down by a spike of exact zeros (ReLU outputs, image backgrounds)', () => {
    // 80% zeros, the rest uniform on (0, 1]: the zeros are exact in any uint8 range, so T should
    // keep (nearly) the whole uniform part, as it does without them.
    const spiky = new Float32Array(20_000);
    const u = uniform(4_000, 0, 1);
    spiky.set(u.map(Math.abs), 16_000);
    const o = new EntropyObserver('relu');
    o.observe(spiky);
    expect(o.range().min).toBe(0);
    expect(o.range().max).toBeGreaterThanOrEqual(0.9 * o.observedRange().max);
  });

  it('keeps (nearly) the whole range of uniform data', () => {
    const o = new EntropyObserver('act');
    o.observe(uniform(20_000, -1, 1));
    const r = o.range();
    const { max } = o.observedRange();
    expect(r.max).toBeGreaterThanOrEqual(0.98 * max);
    expect(r.max).toBeLessThanOrEqual(max);
  });

  it('ReLU outputs calibrate to [0, T] with T inside the data', () => {
    const o = new EntropyObserver('relu');
    o.observe(laplace(20_000).map((v) => Math.max(v, 0)));
    const r = o.range();
    expect(r.min).toBe(0);
    expect(r.max).toBeGreaterThan(0);
    expect(r.max).toBeLessThan(o.observedRange().max);
  });
});

/** Brute force: the candidate c in 1..candidates whose range has the smallest actual MSE on `data`. */
function bruteForceMse(data: Float32Array, kind: QuantKind, candidates: number) {
  let min = Infinity;
  let max = -Infinity;
  for (const v of data) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const amax = Math.max(-min, max);
  const rangeAt = (c: number): FloatRange =>
    kind === 'int8' ? { min: (-c / candidates) * amax, max: (c / candidates) * amax } : { min: (c / candidates) * min, max: (c / candidates) * max };
  const indexOf = (r: FloatRange): number => (kind === 'int8' ? (r.max / amax) * candidates : (r.max / max) * candidates);
  let bestC = candidates;
  let bestMse = Infinity;
  for (let c = candidates; c >= 1; c--) {
    const m = actualMse(data, rangeAt(c), kind);
    if (m < bestMse) {
      bestMse = m;
      bestC = c;
    }
  }
  return { bestC, bestMse, rangeAt, indexOf };
}

describe('MseObserver', () => {
  for (const kind of ['int8', 'uint8'] as const) {
    it(`${kind}: the chosen range is the brute-force minimiser of the actual quantize-dequantize MSE (within a candidate)`, () => {
      const candidates = 256;
      const d = laplaceQuantiles(50_000);
      const o = new MseObserver('act', { kind, candidates });
      o.observe(d);
      const bf = bruteForceMse(d, kind, candidates);
      expect(Math.abs(bf.indexOf(o.range()) - bf.bestC)).toBeLessThanOrEqual(1 + 1e-9);
      expect(actualMse(d, o.range(), kind)).toBeLessThanOrEqual(bf.bestMse * 1.002);
      // A real interior optimum: no clipping and clipping at a third are both clearly worse.
      expect(actualMse(d, bf.rangeAt(candidates), kind)).toBeGreaterThan(bf.bestMse * 1.05);
      expect(actualMse(d, bf.rangeAt(candidates / 3), kind)).toBeGreaterThan(bf.bestMse * 1.05);
    });
  }

  it('on a random sample the chosen range is within 1% of the brute-force MSE (sampling noise flattens the optimum)', () => {
    const d = laplace(20_000);
    const o = new MseObserver('act', { kind: 'int8', candidates: 128 });
    o.observe(d);
    const bf = bruteForceMse(d, 'int8', 128);
    expect(actualMse(d, o.range(), 'int8')).toBeLessThanOrEqual(bf.bestMse * 1.01);
    expect(bf.indexOf(o.range())).toBeLessThan(128);
  });

  it('the histogram estimate of the error matches the sample error', () => {
    const d = normal(20_000);
    const o = new MseObserver('act', { kind: 'int8' });
    o.observe(d);
    const h = o.histogram.snapshot();
    for (const t of [0.5, 1, 2, 3, 4]) {
      const r = { min: -t, max: t };
      const est = expectedSquaredError(h, r, 'int8');
      expect(Math.abs(est - actualMse(d, r, 'int8')) / est).toBeLessThan(0.03);
    }
  });

  it('finds the analytic optimum for Laplace(1) at 8 bits (α·e^α = 12·127², α ≈ 9.9)', () => {
    // Expected error of clipping Laplace(1) at α with step α/127: α²/(12·127²)·(1 - e^-α) + 2e^-α.
    let alpha = 10;
    for (let i = 0; i < 50; i++) alpha = Math.log((12 * 127 * 127) / alpha);
    const o = new MseObserver('act', { kind: 'int8' });
    o.observe(laplace(200_000));
    expect(Math.abs(o.range().max - alpha) / alpha).toBeLessThan(0.1);
  });
});

describe('createObserver and sqnr', () => {
  it('createObserver builds each method', () => {
    expect(createObserver('minmax', 'a')).toBeInstanceOf(MinMaxObserver);
    expect(createObserver('percentile', 'a', { percentile: 99.9 })).toBeInstanceOf(PercentileObserver);
    expect(createObserver('entropy', 'a')).toBeInstanceOf(EntropyObserver);
    const m = createObserver('mse', 'a', { kind: 'int8' });
    expect(m).toBeInstanceOf(MseObserver);
    expect((m as MseObserver).kind).toBe('int8');
  });

  it('sqnr: known values, and 8-bit uniform quantization at 20·log10(255) dB', () => {
    expect(sqnr(new Float32Array([1, 1, 1, 1]), new Float32Array([1, 1, 1, 0]))).toBeCloseTo(10 * Math.log10(4), 12);
    expect(sqnr(new Float32Array([1, 2]), new Float32Array([1, 2]))).toBe(Infinity);
    const x = uniform(50_000, -1, 1);
    const p = quantParams({ min: -1, max: 1 }, 'uint8');
    expect(sqnr(x, quantizeDequantize(x, p))).toBeCloseTo(20 * Math.log10(255), 0);
    expectCode(() => sqnr(new Float32Array(2), new Float32Array(3)), ErrorCode.SHAPE_MISMATCH, RangeError);
    expectCode(() => sqnr(new Float32Array(0), new Float32Array(0)), ErrorCode.INVALID_ARG, RangeError);
  });
});
