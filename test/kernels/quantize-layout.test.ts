/**
 * QuantizeLinear / DequantizeLinear fused with NCHW <-> NHWC (native.quantizeU8NchwToNhwc,
 * native.dequantizeU8NhwcToNchw) against references written here, bit for bit on every ISA:
 * quantize = saturate(round_half_even(fround(x / scale)) + zeroPoint) with a true division (ONNX),
 * NaN -> zeroPoint; dequantize = fround((q - zeroPoint) * scale). Exact ties, infinities, -0,
 * NaN and huge values are included; uint8 outputs are checked over two fills (0x00, 0xFF), float
 * outputs start as NaN, so an unwritten element fails.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { native } from '../../src/binding.js';
import { Rng } from '../../src/util/rng.js';
import { ISAS, expectInvalidArg, roundHalfEven } from './kernel-helpers.js';

const initialIsa = native.cpuInfo().isa;
afterAll(() => {
  native.setIsa(initialIsa);
  native.setNumThreads(0);
});

function quantizeOne(x: number, scale: number, zp: number): number {
  if (Number.isNaN(x)) return zp;
  const v = Math.fround(x / scale);  // float64 quotient of float32s, rounded once to float32
  if (v === Infinity) return 255;
  if (v === -Infinity) return 0;
  return Math.max(0, Math.min(255, roundHalfEven(v) + zp));
}

interface Layout { batch: number; channels: number; plane: number }

function referenceQuantize(x: Float32Array, l: Layout, scale: number, zp: number): Uint8Array {
  const out = new Uint8Array(x.length);
  for (let b = 0; b < l.batch; b++) {
    for (let c = 0; c < l.channels; c++) {
      for (let p = 0; p < l.plane; p++) {
        out[(b * l.plane + p) * l.channels + c] = quantizeOne(x[(b * l.channels + c) * l.plane + p], scale, zp);
      }
    }
  }
  return out;
}

function referenceDequantize(q: Uint8Array, l: Layout, scale: number, zp: number): Float32Array {
  const out = new Float32Array(q.length);
  for (let b = 0; b < l.batch; b++) {
    for (let c = 0; c < l.channels; c++) {
      for (let p = 0; p < l.plane; p++) {
        out[(b * l.channels + c) * l.plane + p] = Math.fround((q[(b * l.plane + p) * l.channels + c] - zp) * scale);
      }
    }
  }
  return out;
}

/** Floats that exercise every branch: in range, saturating, exact ties, specials. */
function inputs(rng: Rng, n: number, scale: number): Float32Array {
  const x = new Float32Array(n);
  const specials = [Number.NaN, Infinity, -Infinity, -0, 0, 3.4e38, -3.4e38, 1e-40];
  for (let i = 0; i < n; i++) {
    const r = rng.int(10);
    if (r === 0) x[i] = specials[rng.int(specials.length)];
    else if (r <= 2) x[i] = (rng.int(600) - 300 + 0.5) * scale;  // a tie when the division is exact
    else x[i] = rng.uniform(-300, 300) * scale;
  }
  return x;
}

function firstMismatch(a: ArrayLike<number>, b: ArrayLike<number>): number {
  for (let i = 0; i < b.length; i++) if (!Object.is(a[i], b[i]) && !(a[i] === b[i] && a[i] !== 0)) return i;
  return -1;
}

const LAYOUTS: Layout[] = [
  { batch: 1, channels: 1, plane: 1 },
  { batch: 2, channels: 1, plane: 97 },     // plain quantize (channels 1)
  { batch: 3, channels: 13, plane: 1 },     // plain quantize (plane 1)
  { batch: 1, channels: 3, plane: 64 },
  { batch: 2, channels: 5, plane: 131 },    // tiles of 64 pixels with a ragged tail
  { batch: 1, channels: 32, plane: 169 },
  { batch: 3, channels: 7, plane: 2000 },   // several pieces over threads
  { batch: 1, channels: 2, plane: 17 },
  { batch: 5, channels: 1, plane: 9000 },   // several pieces, plain
];

describe('quantizeU8NchwToNhwc / dequantizeU8NhwcToNchw against the references, every ISA', () => {
  it('quantize: ties to even, saturation, NaN -> zero point, layout change', () => {
    const rng = new Rng(11);
    LAYOUTS.forEach((l, li) => {
      // Power-of-two scales make x / scale exact, so the (k + 0.5) inputs are true ties.
      const scale = li % 2 === 0 ? 2 ** -(rng.int(8)) : Math.fround(rng.uniform(0.001, 0.1));
      const zp = [0, 255, 128, rng.int(256)][li % 4];
      const n = l.batch * l.channels * l.plane;
      const x = inputs(rng, n, scale);
      const want = referenceQuantize(x, l, scale, zp);
      for (const isa of ISAS) {
        native.setIsa(isa);
        for (const threads of [1, 2]) {
          native.setNumThreads(threads);
          for (const fill of [0x00, 0xff]) {
            const out = new Uint8Array(n).fill(fill);
            native.quantizeU8NchwToNhwc({ input: x, output: out, ...l, scale, zeroPoint: zp }, false);
            const bad = firstMismatch(out, want);
            if (bad >= 0) {
              expect.fail(`${JSON.stringify(l)} zp ${zp} scale ${scale} on ${isa}, ${threads} thread(s): element ${bad} is ${out[bad]}, expected ${want[bad]}`);
            }
          }
        }
      }
    });
  });

  it('dequantize: (q - zero point) * scale in float32, layout change', () => {
    const rng = new Rng(12);
    LAYOUTS.forEach((l, li) => {
      const scale = Math.fround(rng.uniform(0.0001, 2));
      const zp = [0, 255, 128, rng.int(256)][li % 4];
      const n = l.batch * l.channels * l.plane;
      const q = Uint8Array.from({ length: n }, () => rng.int(256));
      const want = referenceDequantize(q, l, scale, zp);
      for (const isa of ISAS) {
        native.setIsa(isa);
        for (const threads of [1, 2]) {
          native.setNumThreads(threads);
          const out = new Float32Array(n).fill(Number.NaN);
          native.dequantizeU8NhwcToNchw({ input: q, output: out, ...l, scale, zeroPoint: zp }, false);
          const bad = firstMismatch(out, want);
          if (bad >= 0) expect.fail(`${JSON.stringify(l)} on ${isa}: element ${bad} is ${out[bad]}, expected ${want[bad]}`);
        }
      }
    });
  });

  it('round trip: dequantize(quantize(x)) is within half a step of x inside the range', async () => {
    const l = { batch: 2, channels: 3, plane: 50 };
    const rng = new Rng(13);
    const scale = 0.05, zp = 100;
    const x = Float32Array.from({ length: 300 }, () => rng.uniform(-4.9, 7.7));
    const q = new Uint8Array(300);
    await native.quantizeU8NchwToNhwc({ input: x, output: q, ...l, scale, zeroPoint: zp }, true);
    const back = new Float32Array(300);
    await native.dequantizeU8NhwcToNchw({ input: q, output: back, ...l, scale, zeroPoint: zp }, true);
    for (let i = 0; i < 300; i++) expect(Math.abs(back[i] - x[i])).toBeLessThanOrEqual(scale / 2 + 1e-6);
  });

  it('refuses wrong lengths, scales, zero points and overlapping buffers', () => {
    const l = { batch: 2, channels: 3, plane: 5 };
    const x = new Float32Array(30);
    const q = new Uint8Array(30);
    expectInvalidArg(() => native.quantizeU8NchwToNhwc({ input: new Float32Array(29), output: q, ...l, scale: 1, zeroPoint: 0 }, false), 'RangeError', /input/);
    expectInvalidArg(() => native.quantizeU8NchwToNhwc({ input: x, output: new Uint8Array(31), ...l, scale: 1, zeroPoint: 0 }, false), 'RangeError', /output/);
    expectInvalidArg(() => native.quantizeU8NchwToNhwc({ input: x, output: q, ...l, scale: 0, zeroPoint: 0 }, false), 'RangeError', /scale/);
    expectInvalidArg(() => native.quantizeU8NchwToNhwc({ input: x, output: q, ...l, scale: Number.NaN, zeroPoint: 0 }, false), 'RangeError', /scale/);
    expectInvalidArg(() => native.quantizeU8NchwToNhwc({ input: x, output: q, ...l, scale: 1, zeroPoint: -1 }, false), 'RangeError', /zeroPoint/);
    expectInvalidArg(() => native.dequantizeU8NhwcToNchw({ input: q, output: x, ...l, channels: 0, scale: 1, zeroPoint: 0 }, false), 'RangeError', /channels/);
    expectInvalidArg(() => native.dequantizeU8NhwcToNchw({ input: new Uint8Array(3), output: x, ...l, scale: 1, zeroPoint: 0 }, false), 'RangeError', /input/);
    const buf = new ArrayBuffer(200);
    expectInvalidArg(() => native.dequantizeU8NhwcToNchw({ input: new Uint8Array(buf, 0, 30), output: new Float32Array(buf, 0, 30), ...l, scale: 1, zeroPoint: 0 }, false), 'RangeError');
  });
});
