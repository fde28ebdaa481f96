/**
 * Optimizers against hand-written float64 references over several steps (changing gradients and
 * learning rates), weight decay only where `decay` is set, validation of hyper-parameters.
 */
import { describe, expect, it } from 'vitest';

import type { Parameter } from '../../src/nn/module.js';
import { createParameter } from '../../src/nn/parameter.js';
import { Adam } from '../../src/train/optimizers/adam.js';
import { AdamW } from '../../src/train/optimizers/adamw.js';
import { createOptimizer } from '../../src/train/optimizers/create.js';
import type { Optimizer } from '../../src/train/optimizers/optimizer.js';
import { SGD } from '../../src/train/optimizers/sgd.js';
import { Rng } from '../../src/util/rng.js';

interface Hyper {
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  dampening?: number;
  betas?: [number, number];
  eps?: number;
}

/** One float64 parameter's state in the reference. */
interface RefState {
  p: Float64Array;
  a: Float64Array;
  b: Float64Array;
}

function sgdRef(s: RefState, g: Float64Array, h: Hyper, lr: number, decay: boolean): void {
  const m = h.momentum ?? 0;
  const wd = decay ? (h.weightDecay ?? 0) : 0;
  for (let i = 0; i < g.length; i++) {
    const gi = g[i] + wd * s.p[i];
    s.a[i] = m * s.a[i] + (1 - (h.dampening ?? 0)) * gi;
    s.p[i] -= lr * (h.nesterov ? gi + m * s.a[i] : s.a[i]);
  }
}

function adamRef(s: RefState, g: Float64Array, h: Hyper, lr: number, decay: boolean, step: number, decoupled: boolean): void {
  const [b1, b2] = h.betas ?? [0.9, 0.999];
  const eps = h.eps ?? 1e-8;
  const wd = decay ? (h.weightDecay ?? (decoupled ? 0.01 : 0)) : 0;
  for (let i = 0; i < g.length; i++) {
    if (decoupled) s.p[i] -= lr * wd * s.p[i];
    const gi = decoupled ? g[i] : g[i] + wd * s.p[i];
    s.a[i] = b1 * s.a[i] + (1 - b1) * gi;
    s.b[i] = b2 * s.b[i] + (1 - b2) * gi * gi;
    const mHat = s.a[i] / (1 - b1 ** step);
    const vHat = s.b[i] / (1 - b2 ** step);
    s.p[i] -= (lr * mHat) / (Math.sqrt(vHat) + eps);
  }
}

type Kind = 'sgd' | 'adam' | 'adamw';

/** Runs `steps` steps natively and in float64 on two parameters (one with decay, one without). */
async function compareSteps(kind: Kind, h: Hyper, steps = 6): Promise<number> {
  const rng = new Rng(11);
  const params: Parameter[] = [createParameter('w', [3, 7], true), createParameter('b', [5], false)];
  for (const p of params) p.value.data.forEach((_, i, a) => (a[i] = rng.uniform(-1, 1)));
  const refs: RefState[] = params.map((p) => ({ p: Float64Array.from(p.value.data), a: new Float64Array(p.grad.length), b: new Float64Array(p.grad.length) }));
  const opt: Optimizer = kind === 'sgd' ? new SGD(h) : kind === 'adam' ? new Adam(h) : new AdamW(h);
  let worst = 0;
  for (let t = 1; t <= steps; t++) {
    // The learning rate changes between steps, as a schedule would.
    const lr = h.lr * (1 + 0.25 * Math.sin(t));
    opt.lr = lr;
    for (const p of params) p.grad.forEach((_, i, a) => (a[i] = rng.uniform(-2, 2)));
    params.forEach((p, k) => {
      const g = Float64Array.from(p.grad);
      if (kind === 'sgd') sgdRef(refs[k], g, h, lr, p.decay);
      else adamRef(refs[k], g, h, lr, p.decay, t, kind === 'adamw');
    });
    await opt.step(params);
    params.forEach((p, k) => {
      for (let i = 0; i < p.grad.length; i++) worst = Math.max(worst, Math.abs(p.value.data[i] - refs[k].p[i]) / Math.max(1e-3, Math.abs(refs[k].p[i])));
    });
  }
  expect(opt.iterations).toBe(steps);
  return worst;
}

describe('SGD matches a float64 reference', () => {
  it.each([
    ['plain', { lr: 0.1 }],
    ['momentum 0.9', { lr: 0.05, momentum: 0.9 }],
    ['Nesterov with weight decay', { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-2 }],
    ['momentum with dampening and weight decay', { lr: 0.02, momentum: 0.5, dampening: 0.3, weightDecay: 1e-2 }],
  ] as [string, Hyper][])('%s', async (_, h) => {
    expect(await compareSteps('sgd', h)).toBeLessThan(1e-5);
  });
});

describe('Adam / AdamW match a float64 reference', () => {
  it.each([
    ['Adam defaults', 'adam', { lr: 1e-2 }],
    ['Adam with L2 weight decay and custom betas', 'adam', { lr: 1e-2, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.1 }],
    ['AdamW default decay 0.01', 'adamw', { lr: 1e-2 }],
    ['AdamW decay 0.1', 'adamw', { lr: 5e-3, weightDecay: 0.1, betas: [0.5, 0.9] }],
  ] as [string, Kind, Hyper][])('%s', async (_, kind, h) => {
    expect(await compareSteps(kind, h)).toBeLessThan(1e-5);
  });

  it('AdamW and Adam differ when weight decay is on (decoupled vs through the moments)', async () => {
    const run = async (opt: Optimizer): Promise<Float32Array> => {
      const p = createParameter('w', [4], true);
      p.value.data.set([1, -2, 3, -4]);
      p.grad.set([0.1, 0.1, -0.1, 0.2]);
      await opt.step([p]);
      await opt.step([p]);
      return p.value.data;
    };
    expect(await run(new Adam({ lr: 0.1, weightDecay: 0.5 }))).not.toEqual(await run(new AdamW({ lr: 0.1, weightDecay: 0.5 })));
  });
});

describe('optimizer state and configuration', () => {
  it('a parameter without decay is untouched by weight decay when its gradient is zero', async () => {
    for (const opt of [new SGD({ lr: 0.1, weightDecay: 0.5, momentum: 0.9 }), new AdamW({ lr: 0.1, weightDecay: 0.5 })]) {
      const bias = createParameter('bias', [3], false);
      bias.value.data.set([1, 2, 3]);
      const weight = createParameter('weight', [3], true);
      weight.value.data.set([1, 2, 3]);
      await opt.step([bias, weight]);
      expect(Array.from(bias.value.data)).toEqual([1, 2, 3]);
      expect(weight.value.data[2]).toBeLessThan(3);
    }
  });

  it('getConfig() rebuilds an equivalent optimizer through createOptimizer', () => {
    for (const opt of [new SGD({ lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 }), new Adam({ lr: 3e-4, betas: [0.8, 0.9] }), new AdamW({ weightDecay: 0.05 })]) {
      const again = createOptimizer(opt.getConfig() as never);
      expect(again.constructor).toBe(opt.constructor);
      expect(again.getConfig()).toEqual(opt.getConfig());
    }
  });

  it('createOptimizer ignores fields of other optimizer types, so the type can be switched', () => {
    const opt = createOptimizer({ type: 'adam', lr: 0.01, momentum: 0.9, nesterov: true });
    expect(opt).toBeInstanceOf(Adam);
    expect(opt.getConfig()).toMatchObject({ type: 'adam', lr: 0.01 });
  });

  it('state restarts when a parameter changes size', async () => {
    const opt = new SGD({ lr: 1, momentum: 0.9 });
    let p = createParameter('w', [2], true);
    p.grad.fill(1);
    await opt.step([p]);
    p = Object.assign(p, { value: createParameter('w', [3], true).value, grad: new Float32Array(3).fill(1) });
    await opt.step([p]);
    // Fresh velocity: one step of size lr * g.
    expect(Array.from(p.value.data)).toEqual([-1, -1, -1]);
  });
});

describe('hyper-parameter validation', () => {
  it.each([
    ['SGD lr NaN', () => new SGD({ lr: NaN }), RangeError, /SGD options.lr.*NaN/],
    ['SGD lr missing', () => new SGD({} as never), TypeError, /SGD options.lr/],
    ['SGD lr negative', () => new SGD({ lr: -1 }), RangeError, /SGD options.lr/],
    ['SGD options missing', () => new SGD(undefined as never), TypeError, /SGD options/],
    ['SGD momentum 1', () => new SGD({ lr: 0.1, momentum: 1 }), RangeError, /SGD options.momentum/],
    ['SGD nesterov without momentum', () => new SGD({ lr: 0.1, nesterov: true }), RangeError, /nesterov/],
    ['SGD weightDecay negative', () => new SGD({ lr: 0.1, weightDecay: -1 }), RangeError, /SGD options.weightDecay/],
    ['SGD dampening string', () => new SGD({ lr: 0.1, dampening: '0' as never }), TypeError, /SGD options.dampening/],
    ['SGD unknown option', () => new SGD({ lr: 0.1, beta: 0.9 } as never), RangeError, /unknown option 'beta'/],
    ['Adam betas length', () => new Adam({ betas: [0.9] as never }), TypeError, /Adam options.betas/],
    ['Adam beta2 1', () => new Adam({ betas: [0.9, 1] }), RangeError, /Adam options.betas\[1\]/],
    ['AdamW eps 0', () => new AdamW({ eps: 0 }), RangeError, /AdamW options.eps/],
    ['createOptimizer type', () => createOptimizer({ type: 'rmsprop' } as never), RangeError, /optimizer.type/],
    ['createOptimizer unknown key', () => createOptimizer({ type: 'sgd', lr: 1, rho: 2 } as never), RangeError, /unknown option 'rho'/],
  ] as const)('%s', (_, make, type, text) => {
    let error: unknown;
    try {
      make();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(type);
    expect(error).toMatchObject({ code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(text) });
  });

  it('the lr setter validates', () => {
    const opt = new SGD({ lr: 0.1 });
    expect(() => (opt.lr = NaN)).toThrow(expect.objectContaining({ code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(/for lr but received NaN/) }));
    opt.lr = 0.2;
    expect(opt.lr).toBe(0.2);
  });

  it('step() validates its parameters before touching any', async () => {
    const opt = new SGD({ lr: 0.1 });
    const good = createParameter('w', [2], true);
    good.grad.fill(1);
    const bad = { ...createParameter('x', [3], true), grad: new Float32Array(2) };
    await expect(opt.step([good, bad])).rejects.toMatchObject({ code: 'ERR_KILN_SHAPE_MISMATCH', message: expect.stringMatching(/params\[1\].grad/) });
    expect(Array.from(good.value.data)).toEqual([0, 0]);
    await expect(opt.step([{}] as never)).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_ARG', name: 'TypeError' });
    await expect(opt.step('w' as never)).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_ARG' });
    expect(opt.iterations).toBe(0);
  });
});
