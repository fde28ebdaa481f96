/**
 * Shared by the conv, pool, int8, elementwise, softmax, optimizer and batch-norm kernel tests:
 * seeded data, NaN-filled outputs, window geometries, walking every ISA, the references' rounding,
 * and comparison against float64 references.
 */
import { expect } from 'vitest';

import { native, type WindowGeometry } from '../../src/binding.js';
import { Rng } from '../../src/util/rng.js';

/** Uniform values in [lo, hi), seeded. */
export function randomArray(rng: Rng, length: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = rng.uniform(lo, hi);
  return out;
}

/** An output buffer every element of which must be written: NaN until then. */
export function sentinel(length: number): Float32Array {
  return new Float32Array(length).fill(Number.NaN);
}

/** Output extent of one window axis: input, pads before and after, kernel, stride, dilation. */
export function outSize(input: number, begin: number, end: number, k: number, s: number, d: number): number {
  return Math.floor((input + begin + end - d * (k - 1) - 1) / s) + 1;
}

/** The window of a conv or pool test case; stride, pads and dilation may be left to defaults. */
export interface WindowCase {
  inHeight: number;
  inWidth: number;
  kernel: [number, number];
  stride?: [number, number];
  /** top, left, bottom, right */
  pads?: [number, number, number, number];
  dilation?: [number, number];
}

/** The window fields of a geometry (output extent included); `defaultStride` where the case has none. */
export function windowGeometry(c: WindowCase, defaultStride: [number, number]): WindowGeometry {
  const [strideH, strideW] = c.stride ?? defaultStride;
  const [padTop, padLeft, padBottom, padRight] = c.pads ?? [0, 0, 0, 0];
  const [dilationH, dilationW] = c.dilation ?? [1, 1];
  const [kernelH, kernelW] = c.kernel;
  return {
    inHeight: c.inHeight,
    inWidth: c.inWidth,
    outHeight: outSize(c.inHeight, padTop, padBottom, kernelH, strideH, dilationH),
    outWidth: outSize(c.inWidth, padLeft, padRight, kernelW, strideW, dilationW),
    kernelH,
    kernelW,
    strideH,
    strideW,
    padTop,
    padLeft,
    padBottom,
    padRight,
    dilationH,
    dilationW,
  };
}

/** Round half to even (ONNX QuantizeLinear), for the int8 references' requantize steps. */
export { roundHalfEven } from '../../src/quant/qparams.js';

/** The ISA paths this CPU can run, lowest first. */
export const ISAS: readonly string[] = native.cpuInfo().supportedIsas;

/** Runs `body` once on every ISA path, restoring the ISA that was active before. */
export function forEachIsa(body: (isa: string) => void): void {
  const initial = native.cpuInfo().isa;
  try {
    for (const isa of ISAS) {
      native.setIsa(isa);
      body(isa);
    }
  } finally {
    native.setIsa(initial);
  }
}

/** Async variant of forEachIsa. */
export async function forEachIsaAsync(body: (isa: string) => Promise<void>): Promise<void> {
  const initial = native.cpuInfo().isa;
  try {
    for (const isa of ISAS) {
      native.setIsa(isa);
      await body(isa);
    }
  } finally {
    native.setIsa(initial);
  }
}

/**
 * Every element of `actual` must be within `rel * scale[i] + abs` of the float64 `expected[i]`,
 * where `scale[i]` is the sum of magnitudes of the terms that made expected[i] (so rounding in a
 * long float32 sum is allowed, a missing or wrong term is not). NaN anywhere fails, naming the
 * first bad index.
 */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  label: string,
  options: { scale?: ArrayLike<number>; rel?: number; abs?: number } = {},
): void {
  const rel = options.rel ?? 1e-5;
  const abs = options.abs ?? 1e-6;
  expect(actual.length, `${label}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const a = actual[i];
    const s = options.scale ? options.scale[i] : Math.abs(e);
    const tol = rel * s + abs;
    if (Number.isNaN(a) || !(Math.abs(a - e) <= tol)) {
      expect.fail(`${label}: element ${i} is ${a}, expected ${e} (tolerance ${tol})`);
    }
  }
}

/** Bitwise equality of two float arrays (NaN patterns included). */
export function expectIdentical(actual: Float32Array, expected: Float32Array, label: string): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) expect.fail(`${label}: element ${i} is ${actual[i]}, expected exactly ${expected[i]}`);
  }
}

/** Expects `fn` to throw a TypeError or RangeError with code ERR_KILN_INVALID_ARG. */
export function expectInvalidArg(fn: () => unknown, kind: 'TypeError' | 'RangeError', message?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a throw').toBeInstanceOf(kind === 'TypeError' ? TypeError : RangeError);
  expect((caught as { code?: string }).code).toBe('ERR_KILN_INVALID_ARG');
  if (message) expect((caught as Error).message).toMatch(message);
}
