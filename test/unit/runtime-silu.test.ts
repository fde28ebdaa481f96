// SiLU as exporters write it (Sigmoid, then Mul by the Sigmoid's input) runs as one Silu step:
// same bits as the two steps it replaces, and only where nothing else reads the Sigmoid.
import { describe, expect, it } from 'vitest';

import { GraphBuilder } from '../../src/graph/ir.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const rng = new Rng(21);
const convWeights = new Tensor('float32', Float32Array.from({ length: 8 * 3 * 3 * 3 }, () => rng.uniform(-0.5, 0.5)), [8, 3, 3, 3]);

/** Conv -> Sigmoid -> Mul (operand order and an extra Sigmoid reader chosen by the caller). */
function siluGraph(opts: { sigmoidFirst: boolean; sigmoidIsOutput: boolean; mulByOther?: boolean }) {
  const b = new GraphBuilder('silu');
  const x = b.addInput('input', ['N', 3, 9, 7]);
  const conv = b.addNode('Conv', [x, b.addInitializer('w', convWeights)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  const other = opts.mulByOther ? b.addNode('Relu', [conv]) : conv;
  const sig = b.addNode('Sigmoid', [conv]);
  const y = b.addNode('Mul', opts.sigmoidFirst ? [sig, other] : [other, sig]);
  const outputs = [{ name: y, dtype: 'float32' as const, shape: ['N', 8, 9, 7] }];
  if (opts.sigmoidIsOutput) outputs.push({ name: sig, dtype: 'float32' as const, shape: ['N', 8, 9, 7] });
  return { graph: b.build(outputs), y };
}

describe('SiLU (Sigmoid then Mul by its input)', () => {
  const input = new Tensor('float32', Float32Array.from({ length: 3 * 3 * 9 * 7 }, () => rng.uniform(-4, 4)), [3, 3, 9, 7]);

  it('runs as one Silu step with the bits of the Sigmoid and Mul steps, in either operand order', async () => {
    for (const sigmoidFirst of [true, false]) {
      const fused = siluGraph({ sigmoidFirst, sigmoidIsOutput: false });
      const plain = siluGraph({ sigmoidFirst, sigmoidIsOutput: true });
      const fusedSession = await InferenceSession.create(fused.graph);
      const plainSession = await InferenceSession.create(plain.graph);
      const fusedSteps = fusedSession.info().steps.join('\n');
      expect(fusedSteps).toMatch(/^Silu /m);
      expect(fusedSteps).not.toMatch(/^(Sigmoid|Mul) /m);
      expect(plainSession.info().steps.join('\n')).toMatch(/^Sigmoid [\s\S]*^Mul /m);
      const a = (await fusedSession.run({ input }))[fused.y].data as Float32Array;
      const b = (await plainSession.run({ input }))[plain.y].data as Float32Array;
      expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(true);
      // And it is SiLU: x / (1 + e^-x) within float rounding of the conv output it reads.
      const convOnly = new GraphBuilder('conv');
      const ci = convOnly.addInput('input', ['N', 3, 9, 7]);
      const cw = convOnly.addInitializer('w', convWeights);
      const cy = convOnly.addNode('Conv', [ci, cw], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
      const conv = (await (await InferenceSession.create(convOnly.build([{ name: cy, dtype: 'float32', shape: ['N', 8, 9, 7] }]))).run({ input }))[cy].data as Float32Array;
      conv.forEach((v, i) => expect(Math.abs(a[i] - v / (1 + Math.exp(-v)))).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(v))));
    }
  });

  it('stays two steps where the Mul reads another value than the Sigmoid input', async () => {
    const g = siluGraph({ sigmoidFirst: true, sigmoidIsOutput: false, mulByOther: true });
    const steps = (await InferenceSession.create(g.graph)).info().steps.join('\n');
    expect(steps).toMatch(/^Sigmoid /m);
    expect(steps).not.toMatch(/^Silu /m);
  });
});
