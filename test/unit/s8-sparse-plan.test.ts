/**
 * sparseKernels on int8 sessions: a quantized SeedCNN (MNIST shape) whose conv2 and fc1 weights
 * are 90% zero runs its QLinearConv (+ ReLU + fused 2x2 max pool) and QLinearGemm on the sparse
 * int8 kernels (native/src/s8-sparse: 1x4 blocks, one vpdpbusd word each) under 'always', and
 * 'auto' keeps whichever is faster. Both must give the 'never' session's outputs BIT FOR BIT (the
 * sparse kernels compute the same int32 sums and the same requantization), on every ISA and the
 * AVX-VNNI kernels, batch 1 / 9 / 64, 1 and 2 threads; planInfo's step text names the sparse
 * kernel under 'always', the dense one with its zero fraction under 'auto' when that won, and
 * nothing under 'never'.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { native, testHooks } from '../../src/binding.js';
import { Conv2d } from '../../src/nn/layers/conv2d.js';
import { Linear } from '../../src/nn/layers/linear.js';
import type { Sequential } from '../../src/nn/layers/sequential.js';
import { seedCNN } from '../../src/nn/models.js';
import { quantize } from '../../src/quant/ptq.js';
import { InferenceSession, type SessionOptions } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const info = native.cpuInfo();
const initialIsa = info.isa;
afterAll(() => {
  testHooks().setS8GemmKernel('auto');
  native.setIsa(initialIsa);
  native.setNumThreads(0);
});

const PATHS = [
  ...info.supportedIsas.map((isa) => ({ isa, avxvnni: false })),
  ...(info.features.avxvnni ? [{ isa: info.bestIsa, avxvnni: true }] : []),
];

const SHAPE = [1, 28, 28];

/** Smooth, image-like, non-negative data (deterministic). */
function images(n: number, seed = 0): Tensor<'float32'> {
  const data = new Float32Array(n * 784);
  for (let i = 0; i < data.length; i++) data[i] = 0.5 + 0.5 * Math.sin(i * 0.173 + seed * 1.7 + Math.floor(i / 784) * 0.91);
  return new Tensor('float32', data, [n, ...SHAPE]);
}

/**
 * Zeros `fraction` of conv2's and fc1's weights: whole 1x4 blocks (4 consecutive input channels at
 * one kernel position; for fc1 the 4 channels of one pooled pixel, which are consecutive in the
 * NHWC order the int8 Gemm reads) or, `unstructured`, single weights.
 */
function prune(model: Sequential, fraction: number, unstructured: boolean, rng: Rng): void {
  const convs = model.layers.filter((l): l is Conv2d => l instanceof Conv2d);
  const linears = model.layers.filter((l): l is Linear => l instanceof Linear);
  const conv2 = convs[1], fc1 = linears[0];
  const drop = () => rng.uniform(0, 1) < fraction;
  const w = conv2.weight.value.data;  // [64][32][3][3]
  const [o, c, kh, kw] = conv2.weight.value.dims;
  for (let oc = 0; oc < o; oc++) {
    for (let t = 0; t < kh * kw; t++) {
      for (let c0 = 0; c0 < c; c0 += unstructured ? 1 : 4) {
        if (!drop()) continue;
        for (let ci = c0; ci < Math.min(c, c0 + (unstructured ? 1 : 4)); ci++) w[(oc * c + ci) * kh * kw + t] = 0;
      }
    }
  }
  const f = fc1.weight.value.data;  // [128][64 * 5 * 5], features ci * 25 + p
  const [n, k] = fc1.weight.value.dims;
  const plane = 25, channels = k / plane;
  for (let j = 0; j < n; j++) {
    for (let p = 0; p < plane; p++) {
      for (let c0 = 0; c0 < channels; c0 += unstructured ? 1 : 4) {
        if (!drop()) continue;
        for (let ci = c0; ci < Math.min(channels, c0 + (unstructured ? 1 : 4)); ci++) f[j * k + ci * plane + p] = 0;
      }
    }
  }
}

async function sessions(fraction: number, unstructured: boolean): Promise<Record<'always' | 'never' | 'auto', InferenceSession>> {
  const model = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 5 }).eval();
  prune(model, fraction, unstructured, new Rng(99));
  const { graph } = await quantize(model, images(64, 3));
  const make = (sparseKernels: SessionOptions['sparseKernels']) => InferenceSession.create(graph, { sparseKernels });
  return { always: await make('always'), never: await make('never'), auto: await make('auto') };
}

const stepsOf = (s: InferenceSession, op: string) => s.info().steps.filter((l) => l.startsWith(op));

async function run(s: InferenceSession, x: Tensor<'float32'>): Promise<Float32Array> {
  const out = await s.run({ [s.inputNames[0]]: x });
  return out[s.outputNames[0]].data as Float32Array;
}

describe('sparseKernels on int8 sessions (SeedCNN conv2 + fc1)', () => {
  for (const [fraction, unstructured] of [[0.9, false], [0.9, true], [0.6, false], [0.3, false]] as const) {
    const name = `${fraction * 100}% ${unstructured ? 'unstructured' : '1x4-block'} zeros`;
    it(`${name}: 'always' and 'auto' equal 'never' bit for bit on every ISA, batch 1/9/64, 1 and 2 threads`, async () => {
      const s = await sessions(fraction, unstructured);
      const sparseText = /sparse s8 1x4 \d+%/;
      for (const op of ['QLinearConv', 'QLinearGemm']) {
        expect(stepsOf(s.never, op).join('\n')).not.toMatch(/sparse|zeros/);
        const always = stepsOf(s.always, op);
        if (fraction >= 0.5) {
          // conv2 (the second conv) and fc1 (the first gemm) are pruned; conv1 and fc2 are not.
          const pruned = op === 'QLinearConv' ? always[1] : always[0];
          expect(pruned).toMatch(sparseText);
          expect(always.filter((l) => sparseText.test(l))).toHaveLength(1);
          // 'auto' says which it kept: the sparse kernel, or dense with the zero fraction.
          expect(stepsOf(s.auto, op).filter((l) => /sparse s8 1x4 \d+%|dense, \d+% zeros/.test(l))).toHaveLength(1);
        } else {
          expect(always.join('\n')).not.toMatch(/sparse|zeros/);
        }
      }
      for (const batch of [1, 9, 64]) {
        const x = images(batch, batch);
        for (const threads of [1, 2]) {
          native.setNumThreads(threads);
          for (const p of PATHS) {
            native.setIsa(p.isa);
            testHooks().setS8GemmKernel(p.avxvnni ? 'avxvnni' : 'auto');
            const want = await run(s.never, x);
            expect(Array.from(await run(s.always, x)), `${p.isa}${p.avxvnni ? '+avxvnni' : ''} batch ${batch} threads ${threads}`).toEqual(Array.from(want));
            expect(Array.from(await run(s.auto, x))).toEqual(Array.from(want));
          }
        }
      }
      testHooks().setS8GemmKernel('auto');
      native.setIsa(initialIsa);
      native.setNumThreads(0);
      for (const v of Object.values(s)) v.release();
    }, 120_000);
  }
});
