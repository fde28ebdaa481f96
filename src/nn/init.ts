/**
 * Weight initialisation, seeded. Kaiming (He) keeps activation variance through ReLU layers;
 * Xavier (Glorot) suits linear/tanh layers. Fan sizes follow PyTorch: for a weight
 * [out, in, ...kernel], fanIn = in * prod(kernel), fanOut = out * prod(kernel).
 */
import { Rng } from '../util/rng.js';
import { oneOf } from '../validate.js';

export type InitKind = 'kaiming-uniform' | 'kaiming-normal' | 'xavier-uniform' | 'xavier-normal';
export const INIT_KINDS: readonly InitKind[] = ['kaiming-uniform', 'kaiming-normal', 'xavier-uniform', 'xavier-normal'];

/** Generator used by layers built without `seed` or `rng`: reproducible in construction order. */
let defaultRng = new Rng(0);

/** Re-seeds the generator that layers without `seed`/`rng` draw from (like torch.manual_seed). */
export function setDefaultSeed(seed: number): void {
  defaultRng = new Rng(seed);
}

/** The generator a layer uses: `rng` if given, else a new one from `seed`, else the default one. */
export function layerRng(seed: number | undefined, rng: Rng | undefined): Rng {
  if (rng !== undefined) return rng;
  if (seed !== undefined) return new Rng(seed);
  return defaultRng;
}

/** Fan-in and fan-out of a weight [out, in, ...kernel]. */
export function fans(dims: readonly number[]): { fanIn: number; fanOut: number } {
  let receptive = 1;
  for (let i = 2; i < dims.length; i++) receptive *= dims[i];
  return { fanIn: (dims[1] ?? 1) * receptive, fanOut: dims[0] * receptive };
}

/** ReLU gain sqrt(2): He et al. 2015. */
const RELU_GAIN = Math.SQRT2;

/** U(-b, b) with b = gain * sqrt(3 / fanIn). */
export function kaimingUniform(out: Float32Array, fanIn: number, rng: Rng, gain = RELU_GAIN): Float32Array {
  return uniform(out, gain * Math.sqrt(3 / fanIn), rng);
}

/** N(0, (gain / sqrt(fanIn))^2). */
export function kaimingNormal(out: Float32Array, fanIn: number, rng: Rng, gain = RELU_GAIN): Float32Array {
  return normal(out, gain / Math.sqrt(fanIn), rng);
}

/** U(-b, b) with b = gain * sqrt(6 / (fanIn + fanOut)). */
export function xavierUniform(out: Float32Array, fanIn: number, fanOut: number, rng: Rng, gain = 1): Float32Array {
  return uniform(out, gain * Math.sqrt(6 / (fanIn + fanOut)), rng);
}

/** N(0, gain^2 * 2 / (fanIn + fanOut)). */
export function xavierNormal(out: Float32Array, fanIn: number, fanOut: number, rng: Rng, gain = 1): Float32Array {
  return normal(out, gain * Math.sqrt(2 / (fanIn + fanOut)), rng);
}

/** Fills a weight of shape `dims` with the named scheme. */
export function initWeight(kind: InitKind, out: Float32Array, dims: readonly number[], rng: Rng): Float32Array {
  const { fanIn, fanOut } = fans(dims);
  switch (oneOf('init', kind, INIT_KINDS)) {
    case 'kaiming-uniform':
      return kaimingUniform(out, fanIn, rng);
    case 'kaiming-normal':
      return kaimingNormal(out, fanIn, rng);
    case 'xavier-uniform':
      return xavierUniform(out, fanIn, fanOut, rng);
    case 'xavier-normal':
      return xavierNormal(out, fanIn, fanOut, rng);
  }
}

function uniform(out: Float32Array, bound: number, rng: Rng): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = rng.uniform(-bound, bound);
  return out;
}

function normal(out: Float32Array, std: number, rng: Rng): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = std * rng.normal();
  return out;
}
