// An average pool after a 1x1 convolution runs first (DenseNet's transitions): the convolution
// then works on a quarter of the pixels. Checked against conv-then-pool computed here in double
// precision, and left in place wherever the swap would change the result.
import { describe, expect, it } from 'vitest';

import { GraphBuilder } from '../../src/graph/ir.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const rng = new Rng(33);
const CIN = 16, COUT = 24, H = 11, W = 12;
const weights = Float32Array.from({ length: COUT * CIN }, () => rng.uniform(-0.5, 0.5));
const bias = Float32Array.from({ length: COUT }, () => rng.uniform(-1, 1));

interface Pool {
  op?: 'AveragePool' | 'MaxPool';
  kernel: number[];
  strides: number[];
  pads?: number[];
  ceil?: 0 | 1;
  countIncludePad?: 0 | 1;
}

function graph(pool: Pool, opts: { relu?: boolean; kernel3?: boolean } = {}) {
  const b = new GraphBuilder('pool-first');
  const x = b.addInput('input', ['N', CIN, H, W]);
  const k = opts.kernel3 ? 3 : 1;
  const w = b.addInitializer('w', new Tensor('float32', opts.kernel3 ? Float32Array.from({ length: COUT * CIN * 9 }, () => rng.uniform(-0.2, 0.2)) : weights, [COUT, CIN, k, k]));
  const bb = b.addInitializer('b', new Tensor('float32', bias, [COUT]));
  let y = b.addNode('Conv', [x, w, bb], { kernel_shape: [k, k], pads: opts.kernel3 ? [1, 1, 1, 1] : [0, 0, 0, 0] });
  if (opts.relu) y = b.addNode('Relu', [y]);
  const attrs: Record<string, number | number[]> = { kernel_shape: pool.kernel, strides: pool.strides, pads: pool.pads ?? [0, 0, 0, 0], ceil_mode: pool.ceil ?? 0 };
  if ((pool.op ?? 'AveragePool') === 'AveragePool') attrs.count_include_pad = pool.countIncludePad ?? 0;
  const out = b.addNode(pool.op ?? 'AveragePool', [y], attrs);
  return { graph: b.build([{ name: out, dtype: 'float32', shape: ['N', COUT, 'H2', 'W2'] }]), out };
}

/** Conv 1x1 then the average pool (count_include_pad 0, no pads), in double precision. */
function reference(x: Float32Array, n: number, pool: Pool): { data: Float64Array; oh: number; ow: number } {
  const conv = new Float64Array(n * COUT * H * W);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < COUT; o++) {
      for (let p = 0; p < H * W; p++) {
        let s = bias[o];
        for (let c = 0; c < CIN; c++) s += weights[o * CIN + c] * x[(b * CIN + c) * H * W + p];
        conv[(b * COUT + o) * H * W + p] = s;
      }
    }
  }
  const [kh, kw] = pool.kernel, [sh, sw] = pool.strides;
  const size = (d: number, k: number, s: number) => (pool.ceil ? Math.ceil((d - k) / s) : Math.floor((d - k) / s)) + 1;
  const oh = size(H, kh, sh), ow = size(W, kw, sw);
  const data = new Float64Array(n * COUT * oh * ow);
  for (let pl = 0; pl < n * COUT; pl++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        let s = 0, count = 0;
        for (let a = i * sh; a < Math.min(H, i * sh + kh); a++) {
          for (let c = j * sw; c < Math.min(W, j * sw + kw); c++, count++) s += conv[pl * H * W + a * W + c];
        }
        data[(pl * oh + i) * ow + j] = s / count;
      }
    }
  }
  return { data, oh, ow };
}

describe('average pool before a 1x1 convolution', () => {
  const n = 2;
  const input = new Tensor('float32', Float32Array.from({ length: n * CIN * H * W }, () => rng.uniform(-2, 2)), [n, CIN, H, W]);

  for (const pool of [
    { kernel: [2, 2], strides: [2, 2] },
    { kernel: [3, 3], strides: [2, 2] },
    { kernel: [2, 3], strides: [2, 3], ceil: 1 as const },
  ]) {
    it(`runs a ${pool.kernel.join('x')}/${pool.strides.join('x')}${pool.ceil ? ' ceil-mode' : ''} pool first, with conv-then-pool's values`, async () => {
      const g = graph(pool);
      const session = await InferenceSession.create(g.graph);
      const steps = session.info().steps.join('\n');
      expect(steps).toMatch(/^AveragePool [^\n]*\n(?:[^\n]*\n)*?Conv /m);
      expect(steps).not.toMatch(/\+ pool/);
      const got = (await session.run({ input }))[g.out];
      const want = reference(input.data as Float32Array, n, pool);
      expect(got.dims).toEqual([n, COUT, want.oh, want.ow]);
      const y = got.data as Float32Array;
      want.data.forEach((v, i) => expect(Math.abs(y[i] - v)).toBeLessThanOrEqual(2e-6 * (1 + Math.abs(v)) * CIN));
    });
  }

  it('leaves the pool after the convolution where the swap would change the result', async () => {
    const cases: [Pool, { relu?: boolean; kernel3?: boolean }, string][] = [
      [{ kernel: [2, 2], strides: [2, 2] }, { relu: true }, 'a ReLU between them'],
      [{ op: 'MaxPool', kernel: [2, 2], strides: [2, 2] }, {}, 'a max pool'],
      [{ kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], countIncludePad: 1 }, {}, 'windows counting zero padding'],
      [{ kernel: [3, 3], strides: [2, 2], ceil: 1, countIncludePad: 1 }, {}, 'ceil-mode windows counting their overhang'],
      [{ kernel: [2, 2], strides: [2, 2] }, { kernel3: true }, 'a 3x3 convolution'],
    ];
    for (const [pool, opts, why] of cases) {
      const steps = (await InferenceSession.create(graph(pool, opts).graph)).info().steps.join('\n');
      expect(steps, why).toMatch(/^Conv [^\n]*\+ pool/m);
      expect(steps, why).not.toMatch(/^(AveragePool|MaxPool) /m);
    }
  });
});
