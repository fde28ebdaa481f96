import { describe, expect, it } from 'vitest';

import { native } from '../../src/binding.js';
import { Rng } from '../../src/util/rng.js';
import { expectClose, expectIdentical, expectInvalidArg, forEachIsa, randomArray } from './kernel-helpers.js';

// Elementwise kernels: sizes around SIMD widths and the 32K-element task size.
const LENGTHS = [1, 7, 33, 32 * 1024 + 3];
const STEPS = 5;

interface SgdCase {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

const SGD_CASES: SgdCase[] = [
  { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
  { lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: false },
  { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 1e-3, nesterov: false },
  { lr: 0.01, momentum: 0.8, dampening: 0, weightDecay: 1e-2, nesterov: true },
];

/** Several SGD steps in float64, as documented in src/binding.ts (velocity starts at zero). */
function referenceSgd(p0: Float32Array, grads: Float32Array[], o: SgdCase) {
  const p = Float64Array.from(p0);
  const v = new Float64Array(p0.length);
  for (const g of grads) {
    for (let i = 0; i < p.length; i++) {
      const gi = g[i] + o.weightDecay * p[i];
      v[i] = o.momentum * v[i] + (1 - o.dampening) * gi;
      p[i] -= o.lr * (o.nesterov ? gi + o.momentum * v[i] : v[i]);
    }
  }
  return { p, v };
}

interface AdamCase {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupled: boolean;
}

const ADAM_CASES: AdamCase[] = [
  { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false },
  { lr: 1e-2, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 1e-2, decoupled: false },
  { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, decoupled: true },
];

/** PyTorch Adam/AdamW in float64. */
function referenceAdam(p0: Float32Array, grads: Float32Array[], o: AdamCase) {
  const p = Float64Array.from(p0);
  const m = new Float64Array(p0.length);
  const v = new Float64Array(p0.length);
  grads.forEach((g, s) => {
    const t = s + 1;
    for (let i = 0; i < p.length; i++) {
      if (o.decoupled) p[i] *= 1 - o.lr * o.weightDecay;
      const gi = g[i] + (o.decoupled ? 0 : o.weightDecay * p[i]);
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
      const mhat = m[i] / (1 - o.beta1 ** t);
      const vhat = v[i] / (1 - o.beta2 ** t);
      p[i] -= (o.lr * mhat) / (Math.sqrt(vhat) + o.eps);
    }
  });
  return { p, m, v };
}

function gradients(rng: Rng, n: number): Float32Array[] {
  return Array.from({ length: STEPS }, () => randomArray(rng, n));
}

describe('sgdStep', () => {
  it.each(SGD_CASES.map((c, i) => [JSON.stringify(c), c, i] as const))('%s matches float64 over several steps on every ISA', (_n, c, k) => {
    for (const n of LENGTHS) {
      const rng = new Rng(k * 100 + n);
      const p0 = randomArray(rng, n);
      const grads = gradients(rng, n);
      const ref = referenceSgd(p0, grads, c);
      forEachIsa((isa) => {
        const param = p0.slice();
        const velocity = new Float32Array(n);
        for (const grad of grads) native.sgdStep({ param, grad, velocity, length: n, ...c }, false);
        expectClose(param, ref.p, `param n=${n} [${isa}]`, { rel: 1e-5, abs: 1e-6 });
        expectClose(velocity, ref.v, `velocity n=${n} [${isa}]`, { rel: 1e-5, abs: 1e-6 });
      });
    }
  });

  it('runs on a worker with the same result', async () => {
    const rng = new Rng(1);
    const p0 = randomArray(rng, 50_000);
    const grad = randomArray(rng, 50_000);
    const a = { param: p0.slice(), velocity: new Float32Array(50_000) };
    const b = { param: p0.slice(), velocity: new Float32Array(50_000) };
    await native.sgdStep({ ...a, grad, length: 50_000, ...SGD_CASES[3] }, true);
    native.sgdStep({ ...b, grad, length: 50_000, ...SGD_CASES[3] }, false);
    expectIdentical(a.param, b.param, 'param');
    expectIdentical(a.velocity, b.velocity, 'velocity');
  });

  it('refuses bad hyper-parameters and lengths', () => {
    const n = 4;
    const base = { param: new Float32Array(n), grad: new Float32Array(n), velocity: new Float32Array(n), length: n, ...SGD_CASES[1] };
    expectInvalidArg(() => native.sgdStep({ ...base, lr: -1 }, false), 'RangeError', /lr/);
    expectInvalidArg(() => native.sgdStep({ ...base, lr: Number.NaN }, false), 'RangeError', /lr/);
    expectInvalidArg(() => native.sgdStep({ ...base, momentum: 1.5 }, false), 'RangeError', /momentum/);
    expectInvalidArg(() => native.sgdStep({ ...base, dampening: -0.1 }, false), 'RangeError', /dampening/);
    expectInvalidArg(() => native.sgdStep({ ...base, weightDecay: '0' as never }, false), 'TypeError', /weightDecay/);
    expectInvalidArg(() => native.sgdStep({ ...base, nesterov: undefined as never }, false), 'TypeError', /nesterov/);
    expectInvalidArg(() => native.sgdStep({ ...base, velocity: new Float32Array(3) }, false), 'RangeError', /velocity/);
    expectInvalidArg(() => native.sgdStep({ ...base, velocity: base.grad }, false), 'RangeError', /overlap/);
  });
});

describe('adamStep', () => {
  it.each(ADAM_CASES.map((c, i) => [JSON.stringify(c), c, i] as const))('%s matches float64 over several steps on every ISA', (_n, c, k) => {
    for (const n of LENGTHS) {
      const rng = new Rng(k * 1000 + n);
      const p0 = randomArray(rng, n);
      const grads = gradients(rng, n);
      const ref = referenceAdam(p0, grads, c);
      forEachIsa((isa) => {
        const param = p0.slice();
        const m = new Float32Array(n);
        const v = new Float32Array(n);
        grads.forEach((grad, s) => native.adamStep({ param, grad, m, v, length: n, ...c, step: s + 1 }, false));
        expectClose(param, ref.p, `param n=${n} [${isa}]`, { rel: 1e-5, abs: 1e-6 });
        expectClose(m, ref.m, `m n=${n} [${isa}]`, { rel: 1e-5, abs: 1e-7 });
        expectClose(v, ref.v, `v n=${n} [${isa}]`, { rel: 1e-5, abs: 1e-9 });
      });
    }
  });

  it('applies bias correction from `step` (the first step moves each weight by about lr)', () => {
    const param = new Float32Array([1, -1, 0.5]);
    const grad = new Float32Array([0.3, -2, 1e-3]);
    native.adamStep({ param, grad, m: new Float32Array(3), v: new Float32Array(3), length: 3, ...ADAM_CASES[0], step: 1 }, false);
    expectClose(param, [1 - 1e-3, -1 + 1e-3, 0.5 - 1e-3], 'first step', { rel: 0, abs: 1e-6 });
  });

  it('runs on a worker with the same result', async () => {
    const rng = new Rng(2);
    const p0 = randomArray(rng, 40_000);
    const grad = randomArray(rng, 40_000);
    const mk = () => ({ param: p0.slice(), m: new Float32Array(40_000), v: new Float32Array(40_000) });
    const a = mk();
    const b = mk();
    await native.adamStep({ ...a, grad, length: 40_000, ...ADAM_CASES[2], step: 3 }, true);
    native.adamStep({ ...b, grad, length: 40_000, ...ADAM_CASES[2], step: 3 }, false);
    expectIdentical(a.param, b.param, 'param');
    expectIdentical(a.v, b.v, 'v');
  });

  it('refuses bad hyper-parameters', () => {
    const n = 2;
    const base = { param: new Float32Array(n), grad: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n), length: n, ...ADAM_CASES[0], step: 1 };
    expectInvalidArg(() => native.adamStep({ ...base, step: 0 }, false), 'RangeError', /step/);
    expectInvalidArg(() => native.adamStep({ ...base, step: 1.5 }, false), 'TypeError', /step/);
    expectInvalidArg(() => native.adamStep({ ...base, beta1: 1 }, false), 'RangeError', /beta1/);
    expectInvalidArg(() => native.adamStep({ ...base, beta2: -0.5 }, false), 'RangeError', /beta2/);
    expectInvalidArg(() => native.adamStep({ ...base, eps: 0 }, false), 'RangeError', /eps/);
    expectInvalidArg(() => native.adamStep({ ...base, lr: Infinity }, false), 'RangeError', /lr/);
    expectInvalidArg(() => native.adamStep({ ...base, m: new Float32Array(3) }, false), 'RangeError', /\bm\b/);
    expectInvalidArg(() => native.adamStep({ ...base, v: base.m }, false), 'RangeError', /overlap/);
    expect(Array.from(base.param)).toEqual([0, 0]);
  });
});
