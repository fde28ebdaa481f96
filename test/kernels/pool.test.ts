import { describe, expect, it } from 'vitest';

import { native, type Pool2dGeometry } from '../../src/binding.js';
import { Rng } from '../../src/util/rng.js';
import {
  expectClose, expectIdentical, expectInvalidArg, forEachIsa, randomArray, sentinel, type WindowCase, windowGeometry,
} from './kernel-helpers.js';

interface PoolCase extends WindowCase {
  name: string;
  batch: number;
  channels: number;
}

/** Pool strides default to the kernel (ONNX). */
function geometry(c: PoolCase): Pool2dGeometry {
  return { batch: c.batch, channels: c.channels, ...windowGeometry(c, c.kernel) };
}

const inLength = (g: Pool2dGeometry) => g.batch * g.channels * g.inHeight * g.inWidth;
const outLength = (g: Pool2dGeometry) => g.batch * g.channels * g.outHeight * g.outWidth;

/**
 * Calls visit(plane, output offset, taps) per window. Taps are [h, w] pairs in row-major window
 * order, `inside` those within the input, `padded` the count within the padded extent.
 */
function forEachWindow(
  g: Pool2dGeometry,
  visit: (plane: number, o: number, inside: number[], padded: number) => void,
): void {
  for (let p = 0; p < g.batch * g.channels; p++) {
    for (let oh = 0; oh < g.outHeight; oh++) {
      for (let ow = 0; ow < g.outWidth; ow++) {
        const inside: number[] = [];
        let padded = 0;
        for (let kh = 0; kh < g.kernelH; kh++) {
          const h = oh * g.strideH - g.padTop + kh * g.dilationH;
          for (let kw = 0; kw < g.kernelW; kw++) {
            const w = ow * g.strideW - g.padLeft + kw * g.dilationW;
            if (h >= -g.padTop && h < g.inHeight + g.padBottom && w >= -g.padLeft && w < g.inWidth + g.padRight) padded++;
            if (h >= 0 && h < g.inHeight && w >= 0 && w < g.inWidth) inside.push(h * g.inWidth + w);
          }
        }
        visit(p, (p * g.outHeight + oh) * g.outWidth + ow, inside, padded);
      }
    }
  }
}

function referenceMax(g: Pool2dGeometry, input: Float32Array) {
  const out = new Float64Array(outLength(g));
  const idx = new Int32Array(outLength(g));
  const plane = g.inHeight * g.inWidth;
  forEachWindow(g, (p, o, inside) => {
    let best = -Infinity;
    let at = -1;
    for (const t of inside) {
      const v = input[p * plane + t];
      if (at < 0 || v > best) {
        best = v;
        at = t;
      }
    }
    out[o] = best;
    idx[o] = at;
  });
  return { out, idx };
}

function referenceAvg(g: Pool2dGeometry, input: Float32Array, includePad: boolean) {
  const out = new Float64Array(outLength(g));
  const scale = new Float64Array(outLength(g));
  const plane = g.inHeight * g.inWidth;
  forEachWindow(g, (p, o, inside, padded) => {
    const divisor = includePad ? padded : inside.length;
    let sum = 0;
    let mag = 0;
    for (const t of inside) {
      sum += input[p * plane + t];
      mag += Math.abs(input[p * plane + t]);
    }
    out[o] = divisor === 0 ? 0 : sum / divisor;
    scale[o] = divisor === 0 ? 0 : mag / divisor;
  });
  return { out, scale };
}

function referenceAvgBackward(g: Pool2dGeometry, gradOutput: Float32Array, includePad: boolean) {
  const gi = new Float64Array(inLength(g));
  const scale = new Float64Array(inLength(g));
  const plane = g.inHeight * g.inWidth;
  forEachWindow(g, (p, o, inside, padded) => {
    const divisor = includePad ? padded : inside.length;
    if (divisor === 0) return;
    for (const t of inside) {
      gi[p * plane + t] += gradOutput[o] / divisor;
      scale[p * plane + t] += Math.abs(gradOutput[o] / divisor);
    }
  });
  return { gi, scale };
}

const CASES: PoolCase[] = [
  { name: '1x1 window', batch: 1, channels: 1, inHeight: 1, inWidth: 1, kernel: [1, 1] },
  { name: 'MNIST 2x2/2 (odd input drops the last row)', batch: 3, channels: 32, inHeight: 11, inWidth: 11, kernel: [2, 2] },
  { name: '2x2/2 rows wider than a vector', batch: 2, channels: 3, inHeight: 10, inWidth: 37, kernel: [2, 2] },
  { name: 'overlapping 3x3/2 with padding', batch: 2, channels: 5, inHeight: 7, inWidth: 9, kernel: [3, 3], stride: [2, 2], pads: [1, 1, 1, 1] },
  { name: 'asymmetric pads, primes', batch: 1, channels: 3, inHeight: 13, inWidth: 7, kernel: [3, 2], stride: [1, 3], pads: [2, 0, 1, 1] },
  { name: 'dilated', batch: 2, channels: 2, inHeight: 11, inWidth: 10, kernel: [3, 2], stride: [2, 1], pads: [1, 2, 2, 0], dilation: [2, 3] },
  { name: 'window larger than input', batch: 2, channels: 1, inHeight: 2, inWidth: 3, kernel: [4, 5], stride: [1, 1], pads: [2, 2, 2, 2] },
  { name: 'global', batch: 5, channels: 7, inHeight: 6, inWidth: 5, kernel: [6, 5] },
];

function prepared(c: PoolCase, seed: number) {
  const g = geometry(c);
  const rng = new Rng(seed);
  return { g, input: randomArray(rng, inLength(g)), gradOutput: randomArray(rng, outLength(g)) };
}

function maxForward(g: Pool2dGeometry, input: Float32Array) {
  const output = sentinel(outLength(g));
  const indices = new Int32Array(outLength(g)).fill(-7);
  native.maxPool2dForward({ ...g, input, output, indices }, false);
  return { output, indices };
}

describe('maxPool2d', () => {
  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s: forward, indices and backward on every ISA', (_n, c, i) => {
    const { g, input, gradOutput } = prepared(c, 100 + i);
    const ref = referenceMax(g, input);
    // Scatter by indices in float64: the backward reference, overlapping windows included.
    const plane = g.inHeight * g.inWidth;
    const refGrad = new Float64Array(inLength(g));
    const refScale = new Float64Array(inLength(g));
    const outPlane = g.outHeight * g.outWidth;
    for (let o = 0; o < ref.idx.length; o++) {
      const p = Math.floor(o / outPlane);
      refGrad[p * plane + ref.idx[o]] += gradOutput[o];
      refScale[p * plane + ref.idx[o]] += Math.abs(gradOutput[o]);
    }
    forEachIsa((isa) => {
      const { output, indices } = maxForward(g, input);
      expectClose(output, ref.out, `${c.name} output [${isa}]`, { rel: 0, abs: 0 });
      expect(Array.from(indices), `${c.name} indices [${isa}]`).toEqual(Array.from(ref.idx));
      const gradInput = sentinel(inLength(g));
      native.maxPool2dBackward({ ...g, gradOutput, indices, gradInput }, false);
      expectClose(gradInput, refGrad, `${c.name} gradInput [${isa}]`, { scale: refScale, rel: 1e-6, abs: 0 });
    });
    // Output without indices is the same output.
    const output = sentinel(outLength(g));
    native.maxPool2dForward({ ...g, input, output }, false);
    expectIdentical(output, maxForward(g, input).output, `${c.name} without indices`);
  });

  it('lets -inf win over padding, prefers the first of equal values, and propagates NaN', () => {
    const g = geometry({ name: 'p', batch: 1, channels: 1, inHeight: 2, inWidth: 2, kernel: [2, 2], stride: [1, 1], pads: [1, 1, 1, 1] });
    const { output, indices } = maxForward(g, new Float32Array(4).fill(-Infinity));
    expect(Array.from(output)).toEqual(new Array(9).fill(-Infinity));
    // Windows (row-major) over the padded 4x4: each picks its first in-plane position.
    expect(Array.from(indices)).toEqual([0, 0, 1, 0, 0, 1, 2, 2, 3]);
    const ties = maxForward(g, new Float32Array([5, 5, 5, 5]));
    expect(Array.from(ties.indices)).toEqual([0, 0, 1, 0, 0, 1, 2, 2, 3]);
    const nan = maxForward(g, new Float32Array([1, Number.NaN, 2, 3]));
    expect(Number.isNaN(nan.output[1])).toBe(true);
    expect(nan.indices[1]).toBe(1);
    expect(nan.output[8]).toBe(3);
  });

  it('2x2/2 windows: ties keep the first tap, NaN wins over numbers, -inf still has a winner, on every ISA', () => {
    // 4 x 40 plane -> 2 x 20 outputs: more than one SIMD vector per row on every path.
    const g = geometry({ name: 't', batch: 1, channels: 1, inHeight: 4, inWidth: 40, kernel: [2, 2] });
    const rng = new Rng(77);
    const input = new Float32Array(160);
    const expectedOut: number[] = [];
    const expectedIdx: number[] = [];
    for (let oh = 0; oh < 2; oh++) {
      for (let ow = 0; ow < 20; ow++) {
        const taps = [2 * oh * 40 + 2 * ow, 2 * oh * 40 + 2 * ow + 1, (2 * oh + 1) * 40 + 2 * ow, (2 * oh + 1) * 40 + 2 * ow + 1];
        const kind = (oh * 20 + ow) % 5;
        let values: number[];
        if (kind === 0) values = [3, 3, 3, 3]; // tie: the first tap
        else if (kind === 1) values = [1, Number.NaN, 5, Number.NaN]; // the first NaN
        else if (kind === 2) values = [-Infinity, -Infinity, -Infinity, -Infinity];
        else if (kind === 3) values = [0, -1, 0, 2]; // the last tap
        else values = [0, 1, 2, 3].map(() => Math.fround(rng.uniform(-1, 1)));
        taps.forEach((t, k) => (input[t] = values[k]));
        let best = 0;
        for (let k = 1; k < 4; k++) {
          const v = values[k];
          const b = values[best];
          if (v > b || (Number.isNaN(v) && !Number.isNaN(b))) best = k;
        }
        expectedOut.push(values[best]);
        expectedIdx.push(taps[best]);
      }
    }
    forEachIsa((isa) => {
      const { output, indices } = maxForward(g, input);
      expect(Array.from(indices), `indices [${isa}]`).toEqual(expectedIdx);
      expect(Array.from(output), `output [${isa}]`).toEqual(expectedOut);
    });
  });

  it('marks windows that cover no input with -inf and index -1; backward skips them', () => {
    // Dilation 3 over a 1x1 input with 2 of padding: both windows fall entirely in padding.
    const g = geometry({ name: 'e', batch: 1, channels: 1, inHeight: 1, inWidth: 1, kernel: [2, 1], stride: [1, 1], pads: [2, 0, 2, 0], dilation: [3, 1] });
    expect(g.outHeight).toBe(2);
    const { output, indices } = maxForward(g, new Float32Array([4]));
    expect(Array.from(output)).toEqual([-Infinity, -Infinity]);
    expect(Array.from(indices)).toEqual([-1, -1]);
    const gradInput = sentinel(1);
    native.maxPool2dBackward({ ...g, gradOutput: new Float32Array([1, 2]), indices, gradInput }, false);
    expect(gradInput[0]).toBe(0);
  });

  it('runs on a worker when async', async () => {
    const { g, input, gradOutput } = prepared(CASES[2], 9);
    const sync = maxForward(g, input);
    const output = sentinel(outLength(g));
    const indices = new Int32Array(outLength(g));
    await native.maxPool2dForward({ ...g, input, output, indices }, true);
    expectIdentical(output, sync.output, 'async output');
    expect(Array.from(indices)).toEqual(Array.from(sync.indices));
    const a = sentinel(inLength(g));
    const b = sentinel(inLength(g));
    await native.maxPool2dBackward({ ...g, gradOutput, indices, gradInput: a }, true);
    native.maxPool2dBackward({ ...g, gradOutput, indices, gradInput: b }, false);
    expectIdentical(a, b, 'async gradInput');
  });
});

describe('avgPool2d', () => {
  for (const includePad of [false, true]) {
    it.each(CASES.map((c, i) => [c.name, c, i] as const))(`%s (countIncludePad ${includePad}) on every ISA`, (_n, c, i) => {
      const { g, input, gradOutput } = prepared(c, 200 + i);
      const ref = referenceAvg(g, input, includePad);
      const refBack = referenceAvgBackward(g, gradOutput, includePad);
      forEachIsa((isa) => {
        const output = sentinel(outLength(g));
        native.avgPool2dForward({ ...g, input, output, countIncludePad: includePad }, false);
        expectClose(output, ref.out, `${c.name} output [${isa}]`, { scale: ref.scale });
        const gradInput = sentinel(inLength(g));
        native.avgPool2dBackward({ ...g, gradOutput, gradInput, countIncludePad: includePad }, false);
        expectClose(gradInput, refBack.gi, `${c.name} gradInput [${isa}]`, { scale: refBack.scale });
      });
    });
  }

  it('divides by the padded window only with countIncludePad (ONNX)', () => {
    const g = geometry({ name: 'c', batch: 1, channels: 1, inHeight: 2, inWidth: 2, kernel: [2, 2], stride: [1, 1], pads: [1, 1, 0, 0] });
    const input = new Float32Array([4, 4, 4, 4]);
    const excl = sentinel(4);
    const incl = sentinel(4);
    native.avgPool2dForward({ ...g, input, output: excl, countIncludePad: false }, false);
    native.avgPool2dForward({ ...g, input, output: incl, countIncludePad: true }, false);
    expect(Array.from(excl)).toEqual([4, 4, 4, 4]);
    expect(Array.from(incl)).toEqual([1, 2, 2, 4]);
  });

  it('runs on a worker when async', async () => {
    const { g, input } = prepared(CASES[3], 10);
    const a = sentinel(outLength(g));
    const b = sentinel(outLength(g));
    await native.avgPool2dForward({ ...g, input, output: a, countIncludePad: true }, true);
    native.avgPool2dForward({ ...g, input, output: b, countIncludePad: true }, false);
    expectIdentical(a, b, 'async output');
  });
});

describe('pool argument checks', () => {
  const { g, input, gradOutput } = prepared(CASES[2], 11);
  const good = () => ({ ...g, input, output: new Float32Array(outLength(g)) });

  it('refuses wrong lengths, an inconsistent output size and bad counts', () => {
    expectInvalidArg(() => native.maxPool2dForward({ ...good(), input: new Float32Array(3) }, false), 'RangeError', /input/);
    expectInvalidArg(() => native.maxPool2dForward({ ...good(), indices: new Int32Array(2) }, false), 'RangeError', /indices/);
    expectInvalidArg(() => native.avgPool2dForward({ ...good(), output: new Float32Array(1), countIncludePad: false }, false), 'RangeError', /output/);
    expectInvalidArg(() => native.maxPool2dForward({ ...good(), outHeight: g.outHeight + 1 }, false), 'RangeError', /outHeight/);
    expectInvalidArg(() => native.maxPool2dForward({ ...good(), strideW: 0 }, false), 'RangeError', /strideW/);
    expectInvalidArg(() => native.maxPool2dForward({ ...good(), channels: 0 }, false), 'RangeError', /channels/);
    expectInvalidArg(() => native.maxPool2dForward({ ...good(), kernelH: 2.5 }, false), 'TypeError', /kernelH/);
    expectInvalidArg(() => native.avgPool2dForward({ ...good() } as never, false), 'TypeError', /countIncludePad/);
  });

  it('refuses wrong types and indices that do not address the plane', () => {
    expectInvalidArg(() => native.maxPool2dForward({ ...good(), indices: new Float32Array(outLength(g)) as never }, false), 'TypeError', /indices/);
    const indices = new Int32Array(outLength(g));
    indices[3] = g.inHeight * g.inWidth;
    const gradInput = new Float32Array(inLength(g));
    expectInvalidArg(() => native.maxPool2dBackward({ ...g, gradOutput, indices, gradInput }, false), 'RangeError', /indices\[3\]/);
    indices[3] = -2;
    expectInvalidArg(() => native.maxPool2dBackward({ ...g, gradOutput, indices, gradInput }, false), 'RangeError', /indices\[3\]/);
  });

  it('refuses an output overlapping the input', () => {
    const shared = new Float32Array(inLength(g) + outLength(g));
    expectInvalidArg(
      () => native.maxPool2dForward({ ...g, input: shared.subarray(0, inLength(g)), output: shared.subarray(1, 1 + outLength(g)) }, false),
      'RangeError',
      /overlap/,
    );
  });
});
