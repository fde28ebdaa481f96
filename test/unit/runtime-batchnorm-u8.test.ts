// DequantizeLinear -> BatchNormalization -> (Relu ->) QuantizeLinear on a uint8 image (DenseNet's
// pre-activations inside an int8 graph) runs as one BatchNormU8 step on the codes, with the bits
// of the three or four steps it replaces; anything else reading the float values keeps them apart.
import { describe, expect, it } from 'vitest';

import { GraphBuilder } from '../../src/graph/ir.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const rng = new Rng(61);
const C = 24, H = 5, W = 7;
const vec = (lo: number, hi: number) => new Tensor('float32', Float32Array.from({ length: C }, () => rng.uniform(lo, hi)), [C]);
const bn = { scale: vec(-2, 2), B: vec(-1, 1), mean: vec(-0.5, 0.5), var: vec(0.1, 2) };

function graph(opts: { relu: boolean; int8Out: boolean; floatReader: boolean }) {
  const b = new GraphBuilder('bn-u8');
  const x = b.addInput('input', ['N', C, H, W]);
  const q0 = b.addNode('QuantizeLinear', [x], { scale: 0.05, zero_point: 131, dtype: 'uint8' });
  const dq0 = b.addNode('DequantizeLinear', [q0], { scale: 0.05, zero_point: 131 });
  const norm = b.addNode('BatchNormalization', [dq0, ...Object.entries(bn).map(([k, t]) => b.addInitializer(k, t))], { epsilon: 1e-3 });
  const act = opts.relu ? b.addNode('Relu', [norm]) : norm;
  const dtype = opts.int8Out ? 'int8' : 'uint8';
  const q1 = b.addNode('QuantizeLinear', [act], { scale: 0.03, zero_point: opts.int8Out ? -7 : opts.relu ? 0 : 120, dtype });
  const y = b.addNode('DequantizeLinear', [q1], { scale: 0.03, zero_point: opts.int8Out ? -7 : opts.relu ? 0 : 120 });
  const outputs = [{ name: y, dtype: 'float32' as const, shape: ['N', C, H, W] }];
  if (opts.floatReader) outputs.push({ name: act, dtype: 'float32' as const, shape: ['N', C, H, W] });
  return { graph: b.build(outputs), y };
}

describe('BatchNormalization between DequantizeLinear and QuantizeLinear', () => {
  const n = 3;
  const input = new Tensor('float32', Float32Array.from({ length: n * C * H * W }, () => rng.uniform(-7, 7)), [n, C, H, W]);

  for (const relu of [true, false]) {
    for (const int8Out of [false, true]) {
      it(`runs on the codes with the separate steps' bits (${relu ? 'with' : 'without'} ReLU, ${int8Out ? 'int8' : 'uint8'} out)`, async () => {
        const fused = graph({ relu, int8Out, floatReader: false });
        const plain = graph({ relu, int8Out, floatReader: true });
        const fusedSession = await InferenceSession.create(fused.graph);
        const plainSession = await InferenceSession.create(plain.graph);
        const fusedSteps = fusedSession.info().steps.join('\n');
        expect(fusedSteps).toMatch(/^BatchNormU8 /m);
        expect(fusedSteps).not.toMatch(/^(BatchNormalization|Relu) /m);
        expect(plainSession.info().steps.join('\n')).toMatch(/^BatchNormalization /m);
        const a = (await fusedSession.run({ input }))[fused.y].data as Float32Array;
        const b = (await plainSession.run({ input }))[plain.y].data as Float32Array;
        expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(true);
        // Not a constant: the codes span the output range.
        expect(new Set(a).size).toBeGreaterThan(50);
      });
    }
  }
});
