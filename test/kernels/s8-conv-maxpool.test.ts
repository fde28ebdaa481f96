/**
 * uint8 NHWC max pooling (native.maxPoolU8Nhwc) against a naive reference, bit for bit on every
 * ISA: padding never wins, channel counts around the 32/64-byte vector widths, strides, dilation,
 * asymmetric pads. Outputs are checked over two fills (0x00, 0xFF), so an unwritten byte fails.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { native, type Pool2dGeometry } from '../../src/binding.js';
import { Rng } from '../../src/util/rng.js';
import { ISAS, expectInvalidArg, windowGeometry } from './kernel-helpers.js';

const initialIsa = native.cpuInfo().isa;
afterAll(() => {
  native.setIsa(initialIsa);
  native.setNumThreads(0);
});

function geometry(batch: number, channels: number, h: number, w: number, k: [number, number], s: [number, number],
  pads: [number, number, number, number], d: [number, number]): Pool2dGeometry {
  return { batch, channels, ...windowGeometry({ inHeight: h, inWidth: w, kernel: k, stride: s, pads, dilation: d }, s) };
}

function reference(g: Pool2dGeometry, x: Uint8Array): Uint8Array {
  const out = new Uint8Array(g.batch * g.outHeight * g.outWidth * g.channels);
  let i = 0;
  for (let b = 0; b < g.batch; b++) {
    for (let oh = 0; oh < g.outHeight; oh++) {
      for (let ow = 0; ow < g.outWidth; ow++) {
        for (let c = 0; c < g.channels; c++) {
          let best = 0;
          for (let y = 0; y < g.kernelH; y++) {
            const ih = oh * g.strideH - g.padTop + y * g.dilationH;
            if (ih < 0 || ih >= g.inHeight) continue;
            for (let xk = 0; xk < g.kernelW; xk++) {
              const iw = ow * g.strideW - g.padLeft + xk * g.dilationW;
              if (iw < 0 || iw >= g.inWidth) continue;
              best = Math.max(best, x[((b * g.inHeight + ih) * g.inWidth + iw) * g.channels + c]);
            }
          }
          out[i++] = best;
        }
      }
    }
  }
  return out;
}

describe('maxPoolU8Nhwc against the reference, every ISA', () => {
  it('random geometries and channel counts around the vector widths', () => {
    const rng = new Rng(21);
    const channels = [1, 3, 31, 32, 33, 64, 65, 97, 130];
    const cases: Pool2dGeometry[] = [
      geometry(2, 32, 11, 11, [2, 2], [2, 2], [0, 0, 0, 0], [1, 1]),  // SeedCNN's pool
      geometry(1, 5, 7, 9, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1]),
      geometry(3, 2, 8, 5, [3, 2], [2, 3], [2, 0, 1, 1], [1, 1]),
      geometry(1, 7, 9, 9, [2, 3], [1, 2], [0, 1, 0, 2], [2, 2]),
    ];
    for (let t = 0; t < 6; t++) {
      const c = channels[rng.int(channels.length)];
      const k: [number, number] = [1 + rng.int(3), 1 + rng.int(3)];
      const pads: [number, number, number, number] = [rng.int(k[0]), rng.int(k[1]), rng.int(k[0]), rng.int(k[1])];
      cases.push(geometry(1 + rng.int(2), c, k[0] + rng.int(8), k[1] + rng.int(8), k, [1 + rng.int(3), 1 + rng.int(3)], pads, [1, 1]));
    }
    for (const c of channels) cases.push(geometry(1, c, 6, 5, [3, 3], [2, 2], [1, 1, 1, 1], [1, 1]));
    for (const g of cases) {
      const x = Uint8Array.from({ length: g.batch * g.inHeight * g.inWidth * g.channels }, () => rng.int(256));
      const want = reference(g, x);
      for (const isa of ISAS) {
        native.setIsa(isa);
        for (const threads of [1, 2]) {
          native.setNumThreads(threads);
          for (const fill of [0x00, 0xff]) {
            const out = new Uint8Array(want.length).fill(fill);
            native.maxPoolU8Nhwc({ ...g, input: x, output: out }, false);
            for (let i = 0; i < want.length; i++) {
              if (out[i] !== want[i]) expect.fail(`${JSON.stringify(g)} on ${isa}: element ${i} is ${out[i]}, expected ${want[i]}`);
            }
          }
        }
      }
    }
  });

  it('refuses wrong lengths and geometry', () => {
    const g = geometry(1, 4, 6, 6, [2, 2], [2, 2], [0, 0, 0, 0], [1, 1]);
    expectInvalidArg(() => native.maxPoolU8Nhwc({ ...g, input: new Uint8Array(143), output: new Uint8Array(36) }, false), 'RangeError', /input/);
    expectInvalidArg(() => native.maxPoolU8Nhwc({ ...g, input: new Uint8Array(144), output: new Uint8Array(37) }, false), 'RangeError', /output/);
    expectInvalidArg(() => native.maxPoolU8Nhwc({ ...g, outHeight: 4, input: new Uint8Array(144), output: new Uint8Array(36) }, false), 'RangeError', /outHeight/);
    expectInvalidArg(() => native.maxPoolU8Nhwc({ ...g, input: new Float32Array(144) as unknown as Uint8Array, output: new Uint8Array(36) }, false), 'TypeError', /input/);
  });
});
