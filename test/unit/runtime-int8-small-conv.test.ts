/**
 * QLinearConv + 2x2/2 MaxPool with a small patch and at most 32 output channels (SeedCNN conv1):
 * on AVX-512 VNNI it runs a direct kernel that pools the int32 sums before requantizing
 * (s8-conv/s8-small-conv.h); other ISAs take the im2col GEMM + uint8 pool. Random shapes (1-4
 * input channels, kernels 1-5, odd and prime sizes, 1-32 output channels), zero points 0..255,
 * extreme weights and biases, saturating scales, ReLU or not, against runInt8Reference bit for
 * bit on every ISA, 1 and 2 threads, batch 1/3/64.
 */
import { afterAll, describe, expect, it } from 'vitest';

import { native, testHooks } from '../../src/binding.js';
import { GraphBuilder, type Graph } from '../../src/graph/ir.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const info = native.cpuInfo();
const initialIsa = info.isa;
afterAll(() => {
  testHooks().setS8GemmKernel('auto');
  native.setIsa(initialIsa);
});

const PATHS = [
  ...info.supportedIsas.map((isa) => ({ isa, avxvnni: false })),
  ...(info.features.avxvnni ? [{ isa: info.bestIsa, avxvnni: true }] : []),
];
const DIRECT = 'direct on avx512vnni';

const rng = new Rng(77);

interface Case {
  cin: number; h: number; w: number; k: number; kw?: number; cout: number;
  relu: boolean; xzp: number; yzp: number; yscale: number; extremes: boolean; perTensor?: boolean; noBias?: boolean;
  act?: 'uint8' | 'int8';
  gemm?: boolean;  // outside the direct kernel: the GEMM path on every ISA
}

/** x -> Q -> QLinearConv (+ Relu) -> MaxPool 2x2/2 -> DQ; the pooled value is the only output. */
function graph(c: Case): Graph {
  const act = c.act ?? 'uint8';
  const kw = c.kw ?? c.k;
  const g = new GraphBuilder('small-conv');
  const x = g.addInput('input', ['N', c.cin, c.h, c.w]);
  const zp = (z: number) => (act === 'uint8' ? z : z - 128);
  const xq = { scale: Math.fround(1 / 100), zero_point: zp(c.xzp) };
  const yq = { scale: Math.fround(c.yscale), zero_point: zp(c.yzp) };
  const q = g.addNode('QuantizeLinear', [x], { ...xq, dtype: act });
  const n = c.cout * c.cin * c.k * kw;
  const weights = Int8Array.from({ length: n }, (_, i) => (c.extremes && i % 3 !== 1 ? (i % 2 ? 127 : -128) : rng.int(255) - 127));
  const wt = g.addInitializer('w', new Tensor('int8', weights, [c.cout, c.cin, c.k, kw]));
  const ns = c.perTensor ? 1 : c.cout;
  const ws = g.addInitializer('ws', new Tensor('float32', Float32Array.from({ length: ns }, () => Math.fround(rng.uniform(0.002, 0.02))), [ns]));
  const range = c.extremes ? 2 ** 18 : 3000;  // extreme: as large as the sums, so pooling still chooses
  const b = c.noBias ? '' : g.addInitializer('b', new Tensor('int32', Int32Array.from({ length: c.cout }, () => rng.int(2 * range) - range), [c.cout]));
  const conv = g.addNode('QLinearConv', [q, wt, ws, b], {
    kernel_shape: [c.k, kw], x_scale: xq.scale, x_zero_point: xq.zero_point, y_scale: yq.scale, y_zero_point: yq.zero_point, y_dtype: act,
    ...(c.relu ? { kiln_activation: 'Relu' } : {}),
  });
  const p = g.addNode('MaxPool', [conv], { kernel_shape: [2, 2], strides: [2, 2] });
  const y = g.addNode('DequantizeLinear', [p], { ...yq });
  const ph = Math.floor((c.h - c.k + 1) / 2), pw = Math.floor((c.w - kw + 1) / 2);
  return g.build([{ name: y, dtype: 'float32', shape: ['N', c.cout, ph, pw] }]);
}

function feed(c: Case, batch: number): { input: Tensor<'float32'> } {
  const n = batch * c.cin * c.h * c.w;
  // inputs around the zero point's float value, past both ends of the uint8 range
  const mid = -c.xzp / 100, span = 1.6;
  return { input: new Tensor('float32', Float32Array.from({ length: n }, () => rng.uniform(mid - 0.2, mid + span)), [batch, c.cin, c.h, c.w]) };
}

function firstDifference(a: Float32Array, b: Float32Array): string {
  for (let i = 0; i < b.length; i++) if (!Object.is(a[i], b[i]) && !(a[i] === 0 && b[i] === 0)) return `[${i}]: ${a[i]} vs ${b[i]}`;
  return 'equal';
}

const CASES: Case[] = [
  // SeedCNN MNIST and CIFAR conv1 shapes (reduced planes), ReLU, random weights
  { cin: 1, h: 28, w: 28, k: 3, cout: 32, relu: true, xzp: 0, yzp: 0, yscale: 0.05, extremes: false },
  { cin: 3, h: 16, w: 13, k: 3, cout: 32, relu: true, xzp: 128, yzp: 3, yscale: 0.05, extremes: false, act: 'int8' },
  // odd and prime sizes, 1-4 channels, kernels 1-5, 1..31 output channels, no ReLU
  { cin: 2, h: 11, w: 9, k: 3, cout: 17, relu: false, xzp: 37, yzp: 128, yscale: 0.04, extremes: false },
  { cin: 4, h: 7, w: 13, k: 2, kw: 3, cout: 7, relu: true, xzp: 200, yzp: 90, yscale: 0.08, extremes: false, perTensor: true },
  { cin: 1, h: 13, w: 11, k: 5, cout: 31, relu: false, xzp: 255, yzp: 255, yscale: 0.05, extremes: false, noBias: true },
  { cin: 3, h: 5, w: 3, k: 1, cout: 1, relu: false, xzp: 5, yzp: 0, yscale: 0.01, extremes: false },
  { cin: 1, h: 3, w: 4, k: 2, cout: 16, relu: true, xzp: 17, yzp: 250, yscale: 0.03, extremes: false },
  // saturation: extreme weights and biases, tiny output scales (most outputs clamp at 0 or 255)
  { cin: 3, h: 9, w: 10, k: 3, cout: 32, relu: false, xzp: 0, yzp: 100, yscale: 0.5, extremes: true },
  { cin: 1, h: 12, w: 12, k: 3, cout: 20, relu: true, xzp: 255, yzp: 0, yscale: 1.5, extremes: true, act: 'int8' },
  { cin: 2, h: 10, w: 7, k: 3, cout: 32, relu: false, xzp: 128, yzp: 128, yscale: 0.002, extremes: true },
  // the GEMM path (more than 32 outputs; SeedCNN conv_1-like): an odd conv height, of which the
  // pool reads one row less, runs a convolution cropped to the rows read
  { cin: 32, h: 9, w: 11, k: 3, cout: 64, relu: true, xzp: 0, yzp: 0, yscale: 0.3, extremes: false, gemm: true },
  { cin: 5, h: 8, w: 6, k: 2, cout: 33, relu: false, xzp: 77, yzp: 140, yscale: 0.05, extremes: true, gemm: true },
];

describe('QLinearConv + 2x2/2 MaxPool, small patch (direct VNNI kernel, pool before requantize)', () => {
  for (const c of CASES) {
    const label = `${c.cin}x${c.h}x${c.w} k${c.k}x${c.kw ?? c.k} -> ${c.cout}${c.relu ? ' relu' : ''} zp ${c.xzp}/${c.yzp} ${c.act ?? 'uint8'}${c.extremes ? ' extreme' : ''}`;
    it(`${label}: every ISA, 1 and 2 threads, batch 1/3/64`, async () => {
      const g = graph(c);
      const feeds = [1, 3, 64].map((b) => feed(c, b));
      const wants = feeds.map((f) => runInt8Reference(g, f));
      const name = Object.keys(wants[2])[0];
      // the oracle's outputs are not all one value, so equality means something
      expect(new Set(wants[2][name].data as Float32Array).size).toBeGreaterThan(4);
      for (const path of PATHS) {
        native.setIsa(path.isa);
        testHooks().setS8GemmKernel(path.avxvnni ? 'avxvnni' : 'auto');
        for (const threads of [1, 2]) {
          const session = await InferenceSession.create(g, { intraOpNumThreads: threads });
          const steps = session.info().steps;
          expect(steps.filter((s) => s.startsWith('QLinearConv') && s.includes('+ max pool') && s.includes(DIRECT) !== !!c.gemm).length).toBe(1);
          for (let i = 0; i < feeds.length; i++) {
            const got = (await session.run(feeds[i]))[name].data as Float32Array;
            expect(`${path.isa}${path.avxvnni ? '+avxvnni' : ''} t${threads} b${feeds[i].input.dims[0]} ${firstDifference(got, wants[i][name].data as Float32Array)}`)
              .toBe(`${path.isa}${path.avxvnni ? '+avxvnni' : ''} t${threads} b${feeds[i].input.dims[0]} equal`);
          }
          session.release();
        }
      }
      testHooks().setS8GemmKernel('auto');
      native.setIsa(initialIsa);
    });
  }

  it('a shape outside the kernel (33 output channels) keeps the GEMM path', async () => {
    const wide = new GraphBuilder('wide');
    const x = wide.addInput('input', ['N', 1, 8, 8]);
    const q = wide.addNode('QuantizeLinear', [x], { scale: 0.01, zero_point: 0, dtype: 'uint8' });
    const w = wide.addInitializer('w', new Tensor('int8', Int8Array.from({ length: 33 * 9 }, () => rng.int(255) - 127), [33, 1, 3, 3]));
    const ws = wide.addInitializer('ws', new Tensor('float32', Float32Array.from([0.01]), [1]));
    const conv = wide.addNode('QLinearConv', [q, w, ws, ''], { kernel_shape: [3, 3], x_scale: 0.01, x_zero_point: 0, y_scale: 0.05, y_zero_point: 0, y_dtype: 'uint8' });
    const p = wide.addNode('MaxPool', [conv], { kernel_shape: [2, 2], strides: [2, 2] });
    const y = wide.addNode('DequantizeLinear', [p], { scale: 0.05, zero_point: 0 });
    const session = await InferenceSession.create(wide.build([{ name: y, dtype: 'float32', shape: ['N', 33, 3, 3] }]));
    const steps = session.info().steps.filter((s) => s.startsWith('QLinearConv'));
    expect(steps.length).toBe(1);
    expect(steps[0]).toContain('+ max pool');
    expect(steps[0]).not.toContain(DIRECT);
    session.release();
  });
});
