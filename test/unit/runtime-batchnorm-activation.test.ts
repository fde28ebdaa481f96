// A float BatchNormalization whose only reader is a Relu, Clip or LeakyRelu (DenseNet's
// pre-activations) runs as one step with the activation applied in the same pass: the bits of the
// two steps, NaN, -0 and ties at the bounds included.
import { describe, expect, it } from 'vitest';

import { GraphBuilder } from '../../src/graph/ir.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const rng = new Rng(62);
const C = 12, H = 6, W = 9;
const vec = (lo: number, hi: number) => new Tensor('float32', Float32Array.from({ length: C }, () => rng.uniform(lo, hi)), [C]);
const bn = { scale: vec(-2, 2), B: vec(-1, 1), mean: vec(-0.5, 0.5), var: vec(0.1, 2) };

type Act = 'Relu' | 'Relu6' | 'LeakyRelu';

function graph(act: Act, normIsOutput: boolean) {
  const b = new GraphBuilder('bn-act');
  const x = b.addInput('input', ['N', C, H, W]);
  const norm = b.addNode('BatchNormalization', [x, ...Object.entries(bn).map(([k, t]) => b.addInitializer(k, t))], { epsilon: 1e-3 });
  const y =
    act === 'Relu' ? b.addNode('Relu', [norm])
    : act === 'LeakyRelu' ? b.addNode('LeakyRelu', [norm], { alpha: 0.1 })
    : b.addNode('Clip', [norm, b.addInitializer('lo', new Tensor('float32', Float32Array.of(0), [])), b.addInitializer('hi', new Tensor('float32', Float32Array.of(6), []))]);
  const outputs = [{ name: y, dtype: 'float32' as const, shape: ['N', C, H, W] }];
  if (normIsOutput) outputs.push({ name: norm, dtype: 'float32' as const, shape: ['N', C, H, W] });
  return { graph: b.build(outputs), y };
}

describe('BatchNormalization with the activation after it', () => {
  const n = 2;
  const data = Float32Array.from({ length: n * C * H * W }, () => rng.uniform(-9, 9));
  data[5] = Number.NaN;
  data[17] = -0;
  const input = new Tensor('float32', data, [n, C, H, W]);

  for (const act of ['Relu', 'Relu6', 'LeakyRelu'] as const) {
    it(`runs ${act} in the BatchNormalization step with the two steps' bits`, async () => {
      const fused = graph(act, false);
      const plain = graph(act, true);
      const fusedSession = await InferenceSession.create(fused.graph);
      const plainSession = await InferenceSession.create(plain.graph);
      const fusedSteps = fusedSession.info().steps.join('\n');
      expect(fusedSteps).toMatch(/^BatchNormalization [^\n]*(relu|clip|leaky_relu)/m);
      expect(fusedSteps).not.toMatch(/^(Relu|Clip|LeakyRelu) /m);
      expect(plainSession.info().steps.join('\n')).toMatch(/^(Relu|Clip|LeakyRelu) /m);
      const a = (await fusedSession.run({ input }))[fused.y].data as Float32Array;
      const b = (await plainSession.run({ input }))[plain.y].data as Float32Array;
      expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(true);
      expect(a.some((v) => v < 0) || act !== 'LeakyRelu').toBe(true);
      expect(a.some((v) => v > 0)).toBe(true);
    });
  }
});
