// A 1x1 convolution of a 1x1 image (squeeze-and-excitation after its global pool) runs as a Gemm
// step over the batch; checked against the convolution computed here in double precision.
import { describe, expect, it } from 'vitest';

import { GraphBuilder } from '../../src/graph/ir.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const rng = new Rng(45);
const CIN = 40, COUT = 24;

function graph(opts: { bias: boolean; relu: boolean; group?: number; kernel?: number }) {
  const group = opts.group ?? 1, k = opts.kernel ?? 1;
  const b = new GraphBuilder('se');
  const x = b.addInput('input', ['N', CIN, 1, 1]);
  const w = Float32Array.from({ length: COUT * (CIN / group) * k * k }, () => rng.uniform(-0.5, 0.5));
  const inputs = [x, b.addInitializer('w', new Tensor('float32', w, [COUT, CIN / group, k, k]))];
  const bias = Float32Array.from({ length: COUT }, () => rng.uniform(-1, 1));
  if (opts.bias) inputs.push(b.addInitializer('b', new Tensor('float32', bias, [COUT])));
  const pad = (k - 1) / 2;
  let y = b.addNode('Conv', inputs, { kernel_shape: [k, k], group, pads: [pad, pad, pad, pad] });
  if (opts.relu) y = b.addNode('Relu', [y]);
  return { graph: b.build([{ name: y, dtype: 'float32', shape: ['N', COUT, 1, 1] }]), y, w, bias };
}

describe('a 1x1 convolution of a 1x1 image', () => {
  const n = 3;
  const input = new Tensor('float32', Float32Array.from({ length: n * CIN }, () => rng.uniform(-2, 2)), [n, CIN, 1, 1]);

  for (const opts of [{ bias: true, relu: true }, { bias: false, relu: false }]) {
    it(`runs as a Gemm over the batch (${opts.bias ? 'bias' : 'no bias'}, ${opts.relu ? 'ReLU' : 'no activation'})`, async () => {
      const g = graph(opts);
      const session = await InferenceSession.create(g.graph);
      const steps = session.info().steps.join('\n');
      expect(steps).toMatch(/^Gemm /m);
      expect(steps).not.toMatch(/^Conv /m);
      const out = (await session.run({ input }))[g.y];
      expect(out.dims).toEqual([n, COUT, 1, 1]);
      const y = out.data as Float32Array;
      const x = input.data as Float32Array;
      for (let i = 0; i < n; i++) {
        for (let o = 0; o < COUT; o++) {
          let s = opts.bias ? g.bias[o] : 0;
          for (let c = 0; c < CIN; c++) s += g.w[o * CIN + c] * x[i * CIN + c];
          if (opts.relu) s = Math.max(0, s);
          expect(Math.abs(y[i * COUT + o] - s)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(s)));
        }
      }
    });
  }

  it('stays a Conv step when grouped or when the kernel is wider than the image', async () => {
    for (const opts of [{ bias: true, relu: false, group: 4 }, { bias: true, relu: false, kernel: 3 }]) {
      const steps = (await InferenceSession.create(graph(opts).graph)).info().steps.join('\n');
      expect(steps).toMatch(/^Conv /m);
      expect(steps).not.toMatch(/^Gemm /m);
    }
  });
});
