// SiLU as exporters write it (Sigmoid, then Mul by the Sigmoid's input) runs as one Silu step, or,
// after a float Conv whose output nothing else reads, as that Conv step's own activation, applied
// to each piece of its output while it is in cache: same bits as the two steps it replaces, on
// every convolution path (GEMM columns and pixel rows, Winograd, depthwise, the small-patch kernel).
// A HardSwish after such a Conv is fused the same way, and so is a residual block's Add of the
// Conv's output and another value (the Conv adds it, then runs the Relu after it).
import { describe, expect, it } from 'vitest';

import { GraphBuilder } from '../../src/graph/ir.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { cpuInfo, setIsa } from '../../src/system.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const rng = new Rng(21);

interface ConvCase {
  name: string;
  cin: number;
  cout: number;
  h: number;
  w: number;
  k: number;
  group?: number;
}

const CASES: ConvCase[] = [
  { name: '3x3 3->8 on 9x7 (small-patch kernel on a padded copy)', cin: 3, cout: 8, h: 9, w: 7, k: 3 },
  { name: '1x1 16->40 on 14x14 (GEMM, columns)', cin: 16, cout: 40, h: 14, w: 14, k: 1 },
  { name: '1x1 40->72 on 7x7 (GEMM, pixel rows)', cin: 40, cout: 72, h: 7, w: 7, k: 1 },
  { name: '3x3 16->24 on 13x11 (Winograd or im2col + GEMM)', cin: 16, cout: 24, h: 13, w: 11, k: 3 },
  { name: '3x3 depthwise 24 on 10x10', cin: 24, cout: 24, h: 10, w: 10, k: 3, group: 24 },
];

function weightsOf(c: ConvCase): Tensor<'float32'> {
  const per = (c.cin / (c.group ?? 1)) * c.k * c.k;
  return new Tensor('float32', Float32Array.from({ length: c.cout * per }, () => rng.uniform(-1, 1) / Math.sqrt(per)), [c.cout, c.cin / (c.group ?? 1), c.k, c.k]);
}

/** Conv -> Sigmoid -> Mul (operand order, and other readers of the Conv or the Sigmoid, chosen by the caller). */
function siluGraph(c: ConvCase, w: Tensor<'float32'>, opts: { sigmoidFirst: boolean; sigmoidIsOutput?: boolean; convIsOutput?: boolean; mulByOther?: boolean }) {
  const b = new GraphBuilder('silu');
  const x = b.addInput('input', ['N', c.cin, c.h, c.w]);
  const p = (c.k - 1) / 2;
  const conv = b.addNode('Conv', [x, b.addInitializer('w', w)], { kernel_shape: [c.k, c.k], pads: [p, p, p, p], group: c.group ?? 1 });
  const other = opts.mulByOther ? b.addNode('Relu', [conv]) : conv;
  const sig = b.addNode('Sigmoid', [conv]);
  const y = b.addNode('Mul', opts.sigmoidFirst ? [sig, other] : [other, sig]);
  const shape = ['N', c.cout, c.h, c.w];
  const outputs = [{ name: y, dtype: 'float32' as const, shape }];
  if (opts.sigmoidIsOutput) outputs.push({ name: sig, dtype: 'float32' as const, shape });
  if (opts.convIsOutput) outputs.push({ name: conv, dtype: 'float32' as const, shape });
  return { graph: b.build(outputs), y, conv };
}

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('SiLU (Sigmoid then Mul by its input)', () => {
  for (const c of CASES) {
    it(`after a Conv only it reads, is the Conv step's activation, with the two steps' bits: ${c.name}`, async () => {
      const w = weightsOf(c);
      const input = new Tensor('float32', Float32Array.from({ length: 3 * c.cin * c.h * c.w }, () => rng.uniform(-4, 4)), [3, c.cin, c.h, c.w]);
      for (const sigmoidFirst of [true, false]) {
        const fused = siluGraph(c, w, { sigmoidFirst });
        // The Conv output is also a graph output: the SiLU stays a step of its own.
        const step = siluGraph(c, w, { sigmoidFirst, convIsOutput: true });
        // The Sigmoid output is also a graph output: Sigmoid and Mul stay two steps.
        const plain = siluGraph(c, w, { sigmoidFirst, sigmoidIsOutput: true });
        const sessions = await Promise.all([fused, step, plain].map((g) => InferenceSession.create(g.graph)));
        const [fusedSteps, stepSteps, plainSteps] = sessions.map((s) => s.info().steps.join('\n'));
        expect(fusedSteps).toMatch(/^Conv .* silu/m);
        expect(fusedSteps).not.toMatch(/^(Silu|Sigmoid|Mul) /m);
        expect(stepSteps).toMatch(/^Silu /m);
        expect(stepSteps).not.toMatch(/silu/);
        expect(plainSteps).toMatch(/^Sigmoid [\s\S]*^Mul /m);
        const a = (await sessions[0]!.run({ input }))[fused.y].data as Float32Array;
        const stepOut = await sessions[1]!.run({ input });
        const b = stepOut[step.y].data as Float32Array;
        const p = (await sessions[2]!.run({ input }))[plain.y].data as Float32Array;
        expect(bytes(a).equals(bytes(b))).toBe(true);
        expect(bytes(a).equals(bytes(p))).toBe(true);
        // And it is SiLU: x / (1 + e^-x) within float rounding of the convolution it reads.
        const conv = stepOut[step.conv].data as Float32Array;
        let worst = 0;
        conv.forEach((v, i) => (worst = Math.max(worst, Math.abs(a[i]! - v / (1 + Math.exp(-v))) / (1 + Math.abs(v)))));
        expect(worst).toBeLessThanOrEqual(1e-6);
      }
    });
  }

  it('stays two steps where the Mul reads another value than the Sigmoid input', async () => {
    const c = CASES[0]!;
    const g = siluGraph(c, weightsOf(c), { sigmoidFirst: true, mulByOther: true });
    const steps = (await InferenceSession.create(g.graph)).info().steps.join('\n');
    expect(steps).toMatch(/^Sigmoid /m);
    expect(steps).not.toMatch(/^Silu |silu/m);
  });
});

/** Conv -> HardSwish, the Conv's output also a graph output when asked (the HardSwish then stays a step). */
function hardSwishGraph(c: ConvCase, w: Tensor<'float32'>, convIsOutput: boolean) {
  const b = new GraphBuilder('hardswish');
  const x = b.addInput('input', ['N', c.cin, c.h, c.w]);
  const p = (c.k - 1) / 2;
  const conv = b.addNode('Conv', [x, b.addInitializer('w', w)], { kernel_shape: [c.k, c.k], pads: [p, p, p, p], group: c.group ?? 1 });
  const y = b.addNode('HardSwish', [conv]);
  const shape = ['N', c.cout, c.h, c.w];
  const outputs = [{ name: y, dtype: 'float32' as const, shape }];
  if (convIsOutput) outputs.push({ name: conv, dtype: 'float32' as const, shape });
  return { graph: b.build(outputs), y, conv };
}

describe('HardSwish after a Conv', () => {
  for (const c of CASES) {
    it(`is the Conv step's activation where only it reads the Conv, with the HardSwish step's bits: ${c.name}`, async () => {
      const w = weightsOf(c);
      const input = new Tensor('float32', Float32Array.from({ length: 3 * c.cin * c.h * c.w }, () => rng.uniform(-4, 4)), [3, c.cin, c.h, c.w]);
      const fused = hardSwishGraph(c, w, false);
      const step = hardSwishGraph(c, w, true);
      for (const intraOpNumThreads of [1, 2]) {
        const [fs, ss] = await Promise.all([fused, step].map((g) => InferenceSession.create(g.graph, { intraOpNumThreads })));
        const fusedSteps = fs!.info().steps.join('\n');
        const stepSteps = ss!.info().steps.join('\n');
        expect(fusedSteps).toMatch(/^Conv .* hardswish/m);
        expect(fusedSteps).not.toMatch(/^HardSwish /m);
        expect(stepSteps).toMatch(/^HardSwish /m);
        expect(stepSteps).not.toMatch(/^Conv .* hardswish/m);
        const a = (await fs!.run({ input }))[fused.y].data as Float32Array;
        const stepOut = await ss!.run({ input });
        expect(bytes(a).equals(bytes(stepOut[step.y].data as Float32Array))).toBe(true);
        // And it is HardSwish: x * clamp(x / 6 + 1/2, 0, 1) of the convolution it reads.
        const conv = stepOut[step.conv].data as Float32Array;
        let worst = 0;
        conv.forEach((v, i) => (worst = Math.max(worst, Math.abs(a[i]! - v * Math.min(1, Math.max(0, v / 6 + 0.5))) / (1 + Math.abs(v)))));
        expect(worst).toBeLessThanOrEqual(1e-6);
      }
    });
  }
});

describe('Relu after an Add (a residual block)', () => {
  /** Add(a, b) -> Relu, the Add's output also a graph output when asked (the Relu then stays a step). */
  function addReluGraph(shapeA: (string | number)[], shapeB: (string | number)[], addIsOutput: boolean) {
    const b = new GraphBuilder('add-relu');
    const x = b.addInput('x', shapeA);
    const r = b.addInput('r', shapeB);
    const sum = b.addNode('Add', [x, r]);
    const y = b.addNode('Relu', [sum]);
    const outputs = [{ name: y, dtype: 'float32' as const, shape: shapeA }];
    if (addIsOutput) outputs.push({ name: sum, dtype: 'float32' as const, shape: shapeA });
    return { graph: b.build(outputs), y };
  }

  for (const [label, shapeB] of [['same shapes', ['N', 8, 5, 7]], ['a per-channel operand', ['N', 8, 1, 1]]] as const) {
    it(`is the Add step's activation where only the Relu reads the sum, with the two steps' bits: ${label}`, async () => {
      const fused = addReluGraph(['N', 8, 5, 7], [...shapeB], false);
      const plain = addReluGraph(['N', 8, 5, 7], [...shapeB], true);
      const [fs, ps] = await Promise.all([fused, plain].map((g) => InferenceSession.create(g.graph)));
      const fusedSteps = fs!.info().steps.join('\n');
      expect(fusedSteps).toMatch(/^Add .*: relu/m);
      expect(fusedSteps).not.toMatch(/^Relu /m);
      expect(ps!.info().steps.join('\n')).toMatch(/^Relu /m);
      const bShape = shapeB.map((d) => (d === 'N' ? 3 : d)) as number[];
      const xs = Float32Array.from({ length: 3 * 8 * 5 * 7 }, () => rng.uniform(-2, 2));
      const rs = Float32Array.from({ length: bShape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-2, 2));
      xs[5] = Number.NaN;  // NaN passes through the ReLU
      xs[6] = -0;  // -0 + -0: a ReLU keeps the sign of zero
      rs[6 % rs.length] = -0;
      const feeds = { x: new Tensor('float32', xs, [3, 8, 5, 7]), r: new Tensor('float32', rs, bShape) };
      const a = (await fs!.run(feeds))[fused.y].data as Float32Array;
      const p = (await ps!.run(feeds))[plain.y].data as Float32Array;
      expect(bytes(a).equals(bytes(p))).toBe(true);
      expect(Number.isNaN(a[5]!)).toBe(true);
      expect(a.every((v) => Number.isNaN(v) || v >= 0)).toBe(true);
    });
  }
});

describe('Add of a Conv output and another value (a residual block)', () => {
  /**
   * Conv(x) + r, then Relu when asked; `convFirst` orders the Add's operands. The Conv output is
   * also a graph output when asked (the Add then stays a step of its own).
   */
  function residualGraph(c: ConvCase, w: Tensor<'float32'>, opts: { relu: boolean; convFirst: boolean; convIsOutput?: boolean }) {
    const b = new GraphBuilder('residual');
    const x = b.addInput('input', ['N', c.cin, c.h, c.w]);
    const r = b.addInput('r', ['N', c.cout, c.h, c.w]);
    const p = (c.k - 1) / 2;
    const conv = b.addNode('Conv', [x, b.addInitializer('w', w)], { kernel_shape: [c.k, c.k], pads: [p, p, p, p], group: c.group ?? 1 });
    const sum = b.addNode('Add', opts.convFirst ? [conv, r] : [r, conv]);
    const y = opts.relu ? b.addNode('Relu', [sum]) : sum;
    const shape = ['N', c.cout, c.h, c.w];
    const outputs = [{ name: y, dtype: 'float32' as const, shape }];
    if (opts.convIsOutput) outputs.push({ name: conv, dtype: 'float32' as const, shape });
    return { graph: b.build(outputs), y, conv };
  }

  for (const c of CASES) {
    it(`is added by the Conv step, before the Relu, with the separate steps' bits: ${c.name}`, async () => {
      const w = weightsOf(c);
      const input = new Tensor('float32', Float32Array.from({ length: 3 * c.cin * c.h * c.w }, () => rng.uniform(-4, 4)), [3, c.cin, c.h, c.w]);
      const rs = Float32Array.from({ length: 3 * c.cout * c.h * c.w }, () => rng.uniform(-4, 4));
      rs[7] = Number.NaN;  // passes through the sum and the ReLU
      const feeds = { input, r: new Tensor('float32', rs, [3, c.cout, c.h, c.w]) };
      for (const relu of [true, false]) {
        for (const convFirst of [true, false]) {
          const fused = residualGraph(c, w, { relu, convFirst });
          const plain = residualGraph(c, w, { relu, convFirst, convIsOutput: true });
          for (const intraOpNumThreads of [1, 2]) {
            const [fs, ps] = await Promise.all([fused, plain].map((g) => InferenceSession.create(g.graph, { intraOpNumThreads })));
            const fusedSteps = fs!.info().steps.join('\n');
            expect(fusedSteps).toMatch(relu ? /^Conv .* \+ residual relu/m : /^Conv .* \+ residual/m);
            expect(fusedSteps).not.toMatch(/^(Add|Relu) /m);
            expect(ps!.info().steps.join('\n')).toMatch(/^Add /m);
            const a = (await fs!.run(feeds))[fused.y].data as Float32Array;
            const plainOut = await ps!.run(feeds);
            expect(bytes(a).equals(bytes(plainOut[plain.y].data as Float32Array))).toBe(true);
            // And it is the sum: the convolution it reads plus r, through the ReLU.
            const conv = plainOut[plain.conv].data as Float32Array;
            expect(Number.isNaN(a[7]!)).toBe(true);
            conv.forEach((v, i) => {
              if (i === 7) return;
              const want = Math.fround(v + rs[i]!);
              expect(a[i]).toBe(relu && want < 0 ? 0 : want);
            });
          }
        }
      }
    });
  }

  // The post function must follow the sum: the convolution adds the residual to each piece itself.
  it('takes a SiLU after the sum as the Conv step\'s activation, applied after the residual, with the separate steps\' bits', async () => {
    for (const c of [CASES[1]!, CASES[2]!, CASES[4]!]) {
      const w = weightsOf(c);
      const build = (convIsOutput: boolean) => {
        const b = new GraphBuilder('residual-silu');
        const x = b.addInput('input', ['N', c.cin, c.h, c.w]);
        const r = b.addInput('r', ['N', c.cout, c.h, c.w]);
        const p = (c.k - 1) / 2;
        const conv = b.addNode('Conv', [x, b.addInitializer('w', w)], { kernel_shape: [c.k, c.k], pads: [p, p, p, p], group: c.group ?? 1 });
        const sum = b.addNode('Add', [conv, r]);
        const y = b.addNode('Mul', [sum, b.addNode('Sigmoid', [sum])]);
        const shape = ['N', c.cout, c.h, c.w];
        const outputs = [{ name: y, dtype: 'float32' as const, shape }];
        if (convIsOutput) outputs.push({ name: conv, dtype: 'float32' as const, shape });
        return { graph: b.build(outputs), y };
      };
      const fused = build(false);
      const plain = build(true);
      const [fs, ps] = await Promise.all([fused, plain].map((g) => InferenceSession.create(g.graph)));
      expect(fs!.info().steps.join('\n')).toMatch(/^Conv .* \+ residual silu/m);
      expect(ps!.info().steps.join('\n')).toMatch(/^Add [\s\S]*^Silu /m);
      const input = new Tensor('float32', Float32Array.from({ length: 3 * c.cin * c.h * c.w }, () => rng.uniform(-4, 4)), [3, c.cin, c.h, c.w]);
      const rt = new Tensor('float32', Float32Array.from({ length: 3 * c.cout * c.h * c.w }, () => rng.uniform(-4, 4)), [3, c.cout, c.h, c.w]);
      const a = (await fs!.run({ input, r: rt }))[fused.y].data as Float32Array;
      const p = (await ps!.run({ input, r: rt }))[plain.y].data as Float32Array;
      expect(bytes(a).equals(bytes(p))).toBe(true);
    }
  });

  it('goes into the later Conv of a projection shortcut (two Convs added), with the Add step\'s bits', async () => {
    const c = CASES[1]!;
    const [w1, w2] = [weightsOf(c), weightsOf(c)];
    const build = (separate: boolean) => {
      const b = new GraphBuilder('projection');
      const x = b.addInput('input', ['N', c.cin, c.h, c.w]);
      const main = b.addNode('Conv', [x, b.addInitializer('w1', w1)], { kernel_shape: [1, 1] });
      const shortcut = b.addNode('Conv', [x, b.addInitializer('w2', w2)], { kernel_shape: [1, 1] });
      const y = b.addNode('Relu', [b.addNode('Add', [main, shortcut])]);
      const shape = ['N', c.cout, c.h, c.w];
      const outputs = [{ name: y, dtype: 'float32' as const, shape }];
      if (separate) outputs.push({ name: shortcut, dtype: 'float32' as const, shape }, { name: main, dtype: 'float32' as const, shape });
      return { graph: b.build(outputs), y };
    };
    const fused = build(false);
    const plain = build(true);
    const [fs, ps] = await Promise.all([fused, plain].map((g) => InferenceSession.create(g.graph)));
    const steps = fs!.info().steps;
    expect(steps.filter((s) => /^Conv /.test(s)).map((s) => /\+ residual relu/.test(s))).toEqual([false, true]);
    // A small batch and one whose output (2.5 MB) is past the L2.
    for (const n of [2, 80]) {
      const input = new Tensor('float32', Float32Array.from({ length: n * c.cin * c.h * c.w }, () => rng.uniform(-4, 4)), [n, c.cin, c.h, c.w]);
      const a = (await fs!.run({ input }))[fused.y].data as Float32Array;
      const p = (await ps!.run({ input }))[plain.y].data as Float32Array;
      expect(bytes(a).equals(bytes(p))).toBe(true);
    }
  });

  // ResNet's identity blocks: the block input is read by the first Conv and by the Add, the Add
  // fused into the last Conv is its last reader, so that Conv writes its sum over it (the GEMMs add
  // their product to the residual as they write each tile). Against the same graph with the block
  // input also a graph output (then kept, and added in a pass after the Conv): the same values
  // within rounding (the residual joins the sum before the bias, and before later K blocks).
  it('is written over the residual where nothing reads the residual after, within rounding of the pass after', async () => {
    const shapes = [
      // 1x1 over 400 channels (two K blocks), a plane of several column tiles.
      { cout: 64, mid: 400, h: 14, w: 15, k: 1, level: 'extended' as const },
      // Padded 3x3 on im2col over small planes: at batch 17 several images share a GEMM.
      { cout: 40, mid: 24, h: 6, w: 7, k: 3, level: 'extended' as const },
      // Padded 3x3 on Winograd (AVX-512; im2col + GEMM elsewhere), its outputs added as they move
      // home: F(4x4) and F(2x2), one image's tile rows split over 2 threads at batch 1.
      { cout: 64, mid: 64, h: 20, w: 20, k: 3, level: 'all' as const, winograd: 'F(4x4' },
      { cout: 80, mid: 96, h: 15, w: 17, k: 3, level: 'all' as const, winograd: 'F(2x2' },
    ];
    for (const s of shapes) {
      const weights = new Map<string, Tensor<'float32'>[]>();
      const conv = (b: GraphBuilder, x: string, cin: number, cout: number, k: number, name: string) => {
        const per = cin * k * k;
        if (!weights.has(name)) {
          weights.set(name, [
            new Tensor('float32', Float32Array.from({ length: cout * per }, () => rng.uniform(-1, 1) / Math.sqrt(per)), [cout, cin, k, k]),
            new Tensor('float32', Float32Array.from({ length: cout }, () => rng.uniform(-0.5, 0.5)), [cout]),
          ]);
        }
        const [w, bias] = weights.get(name)!;
        const p = (k - 1) / 2;
        return b.addNode('Conv', [x, b.addInitializer(`${name}_w`, w!), b.addInitializer(`${name}_b`, bias!)], { kernel_shape: [k, k], pads: [p, p, p, p] });
      };
      const build = (keepInput: boolean) => {
        const b = new GraphBuilder('identity-block');
        const x = b.addInput('input', ['N', s.cout, s.h, s.w]);
        // Not through a ReLU, so that sums below zero are common.
        const blockIn = conv(b, x, s.cout, s.cout, 1, 'stem');
        const mid = b.addNode('Relu', [conv(b, blockIn, s.cout, s.mid, 1, 'reduce')]);
        const y = b.addNode('Relu', [b.addNode('Add', [conv(b, mid, s.mid, s.cout, s.k, 'expand'), blockIn])]);
        const shape = ['N', s.cout, s.h, s.w];
        const outputs = [{ name: y, dtype: 'float32' as const, shape }];
        if (keepInput) outputs.push({ name: blockIn, dtype: 'float32' as const, shape });
        return { graph: b.build(outputs), y };
      };
      const fused = build(false);
      const kept = build(true);
      // Both sessions on one input of n images: the outputs and their largest relative difference.
      const runBoth = async (fs: InferenceSession, ks: InferenceSession, n: number) => {
        const input = new Tensor('float32', Float32Array.from({ length: n * s.cout * s.h * s.w }, () => rng.uniform(-4, 4)), [n, s.cout, s.h, s.w]);
        const a = (await fs.run({ input }))[fused.y].data as Float32Array;
        const p = (await ks.run({ input }))[kept.y].data as Float32Array;
        let worst = 0;
        p.forEach((v, i) => (worst = Math.max(worst, Math.abs(a[i]! - v) / (1 + Math.abs(v)))));
        return { a, p, worst };
      };
      for (const intraOpNumThreads of [1, 2]) {
        // 'extended' keeps a 3x3 on im2col, not Winograd.
        const options = { intraOpNumThreads, graphOptimizationLevel: s.level };
        const [fs, ks] = await Promise.all([fused, kept].map((g) => InferenceSession.create(g.graph, options)));
        const inPlace = fs!.info().steps.filter((t) => /\+ residual relu .*\(in place\)/.test(t));
        expect(inPlace).toHaveLength(1);
        if (s.winograd) expect(inPlace[0]).toContain(`winograd ${s.winograd}`);
        expect(ks!.info().steps.filter((t) => /\+ residual relu/.test(t))).toHaveLength(1);
        expect(ks!.info().steps.join('\n')).not.toMatch(/residual relu \(in place\)/);
        for (const n of [1, 3, 17]) {
          const { a, p, worst } = await runBoth(fs!, ks!, n);
          const zeros = p.filter((v) => v === 0).length;
          expect(worst).toBeLessThan(1e-5);
          // The ReLU ran after the sum: some outputs are cut to zero, most not.
          expect(zeros).toBeGreaterThan(0);
          expect(zeros).toBeLessThan(p.length);
          expect(a.some((v, i) => v !== 0 && v === p[i])).toBe(true);
        }
      }
      // Without Winograd's kernel (below AVX-512) the same in-place step sums on the GEMMs.
      if (s.winograd) {
        const start = cpuInfo().isa;
        const [fs, ks] = await Promise.all([fused, kept].map((g) => InferenceSession.create(g.graph, { graphOptimizationLevel: s.level })));
        try {
          for (const isa of cpuInfo().supportedIsas.filter((x) => x === 'scalar' || x === 'avx2')) {
            setIsa(isa);
            expect((await runBoth(fs!, ks!, 3)).worst, `${isa}`).toBeLessThan(1e-5);
          }
        } finally {
          setIsa(start);
        }
      }
    }
  });

  it('stays an Add step where the other operand is written after the Conv, or the Conv has a pool', async () => {
    const c = CASES[1]!;
    const b = new GraphBuilder('late-operand');
    const x = b.addInput('input', ['N', c.cin, c.h, c.w]);
    const conv = b.addNode('Conv', [x, b.addInitializer('w', weightsOf(c))], { kernel_shape: [1, 1] });
    // Written by a step after the Conv's: the Conv cannot read it when it runs.
    const later = b.addNode('Conv', [x, b.addInitializer('w2', weightsOf(c))], { kernel_shape: [1, 1] });
    const other = b.addNode('Sigmoid', [later]);
    const y = b.addNode('Add', [conv, other]);
    const g = b.build([{ name: y, dtype: 'float32' as const, shape: ['N', c.cout, c.h, c.w] }]);
    const steps = (await InferenceSession.create(g)).info().steps.join('\n');
    expect(steps).toMatch(/^Add /m);
    expect(steps).not.toMatch(/residual/);

    const p = new GraphBuilder('pooled');
    const px = p.addInput('input', ['N', c.cin, c.h, c.w]);
    const pr = p.addInput('r', ['N', c.cout, 7, 7]);
    const pc = p.addNode('Conv', [px, p.addInitializer('w', weightsOf(c))], { kernel_shape: [1, 1] });
    const pooled = p.addNode('MaxPool', [pc], { kernel_shape: [2, 2], strides: [2, 2] });
    const py = p.addNode('Add', [pooled, pr]);
    const pg = p.build([{ name: py, dtype: 'float32' as const, shape: ['N', c.cout, 7, 7] }]);
    const psteps = (await InferenceSession.create(pg)).info().steps.join('\n');
    expect(psteps).toMatch(/^Add /m);
    expect(psteps).not.toMatch(/residual/);
  });
});
