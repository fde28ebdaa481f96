/**
 * A buffer JavaScript takes away while a native job runs on another thread must never be read or
 * written by that job. Each case detaches, transfers or shrinks an array right after the call
 * that handed it to a runner thread; the call must settle with a correct result (the job works on
 * its own copy) or a rejected Promise, never end the process with a signal.
 */
import { describe, expect, it } from 'vitest';

import { native, testHooks } from '../../src/binding.js';
import { GraphBuilder } from '../../src/graph/ir.js';
import { allocFloat32, allocInt32 } from '../../src/memory.js';
import { seedCNN } from '../../src/nn/models.js';
import { quantize } from '../../src/quant/ptq.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const MNIST = [1, 28, 28];
const net = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 5 }).eval();

function pixels(count: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: count }, () => rng.uniform(0, 1));
}

/**
 * Detaches `buffer` the way a user would hand it to another thread, and scribbles over the memory
 * it moved to (as the new owner would), so a job still reading it would compute from garbage.
 * Where the process has a gc() (npm run test:asan starts Node with --expose-gc) the new owner is
 * then collected, freeing the memory: a job still reading it is a heap-use-after-free that the
 * sanitizer reports.
 */
function transferAway(buffer: ArrayBuffer): void {
  const clone = structuredClone as (value: unknown, options: { transfer: ArrayBuffer[] }) => ArrayBuffer;
  new Uint8Array(clone(buffer, { transfer: [buffer] })).fill(0x7f);
  (globalThis as { gc?: () => void }).gc?.();
}

/**
 * Asserts two arrays equal element for element (NaN equal to NaN), reporting the first difference:
 * a mismatch in a 200,000-element output fails at once instead of making the test runner diff it.
 */
function expectSameElements(got: ArrayLike<number>, want: ArrayLike<number>, what = 'output'): void {
  expect(got.length, `${what} length`).toBe(want.length);
  let first = -1;
  for (let i = 0; i < want.length && first < 0; i++) if (!Object.is(got[i], want[i])) first = i;
  expect(first < 0 ? 'equal' : `first difference at ${first}: ${got[first]} instead of ${want[first]}`, what).toBe('equal');
}

/** Weights of the given dims, uniform in [-scale, scale) from `rng`. */
function randomWeights(rng: Rng, scale: number): (dims: number[]) => Tensor<'float32'> {
  return (dims) => new Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.uniform(-scale, scale)), dims);
}

/**
 * Runs `session` on a copy of `data` (shape `shape`, batch first), then on `data` itself, whose
 * buffer is transferred away right after the call: output `output` of the second run must equal
 * the first's.
 */
async function expectRunIgnoresTransfer(session: InferenceSession, data: Float32Array, shape: number[], output: string): Promise<void> {
  const expected = await session.run({ input: new Tensor('float32', data.slice(), shape) });
  const pending = session.run({ input: new Tensor('float32', data, shape) });
  transferAway(data.buffer as ArrayBuffer);
  expect(data.length).toBe(0);
  const got = await pending;
  expectSameElements(got[output]!.data, expected[output]!.data);
}

/**
 * Runs `session` on inputs[i % inputs.length] for i in [from, to), each of `shape`, taking every
 * input away right after its call: every third one's buffer is shrunk to nothing, the others'
 * transferred away or overwritten with NaN. Each run must give expected[i % inputs.length] as
 * output `output`.
 */
async function runsWithInputsTakenAway(session: InferenceSession, inputs: Float32Array[], expected: Float32Array[], shape: number[], output: string, from: number, to: number, what = 'run'): Promise<void> {
  const size = inputs[0]!.length;
  for (let i = from; i < to; i++) {
    const k = i % inputs.length;
    if (i % 3 === 2) {
      const buffer = new ArrayBuffer(size * 4, { maxByteLength: size * 4 }) as ArrayBuffer & { resize(n: number): void };
      const data = new Float32Array(buffer, 0, size);
      data.set(inputs[k]!);
      const pending = session.run({ input: new Tensor('float32', data, shape) });
      buffer.resize(0);
      expectSameElements((await pending)[output]!.data, expected[k]!, `${what} ${i} (shrunk)`);
      continue;
    }
    const data = inputs[k]!.slice();
    const pending = session.run({ input: new Tensor('float32', data, shape) });
    if (i % 3 === 0) transferAway(data.buffer as ArrayBuffer);
    else data.fill(Number.NaN);
    expectSameElements((await pending)[output]!.data, expected[k]!, `${what} ${i}`);
  }
}

describe('buffers taken away under a running job', () => {
  it('session.run at batch 20000, input transferred right after the call: correct logits', async () => {
    const session = await InferenceSession.create(net, { inputShape: MNIST });
    const batch = 20000;
    const data = pixels(batch * 784, 1);
    await expectRunIgnoresTransfer(session, data, [batch, 1, 28, 28], 'logits');
    session.release();
  }, 60_000);

  it('six runs in flight at once, each 200 KiB input (copied by the runner that reads it, or by this thread when every runner is busy) transferred right after its call: each gets its own logits', async () => {
    const session = await InferenceSession.create(net, { inputShape: MNIST });
    const batch = 64;
    const inputs = Array.from({ length: 6 }, (_, i) => pixels(batch * 784, 40 + i));
    const expected: Awaited<ReturnType<InferenceSession['run']>>[] = [];
    for (const data of inputs) expected.push(await session.run({ input: new Tensor('float32', data.slice(), [batch, 1, 28, 28]) }));
    const pending = inputs.map((data) => {
      const run = session.run({ input: new Tensor('float32', data, [batch, 1, 28, 28]) });
      transferAway(data.buffer as ArrayBuffer);
      return run;
    });
    const got = await Promise.all(pending);
    got.forEach((out, i) => expectSameElements(out['logits']!.data, expected[i]!['logits']!.data as Float32Array));
    session.release();
  });

  it('the issue-15 paths (the strided stem with its padded copy, or its stride phases below AVX-512; planar max pool and depthwise with ReLU6, Winograd), input transferred right after the call: correct output', async () => {
    // A MobileNet-like stack on the kernels whose scratch and tasks are new: each reads only the
    // job's copy of the input and the plan's arena.
    const rng = new Rng(9);
    const weights = randomWeights(rng, 0.3);
    const b = new GraphBuilder('issue15-paths');
    const x = b.addInput('input', ['N', 3, 40, 40]);
    const stem = b.addNode('Conv', [x, b.addInitializer('w0', weights([16, 3, 7, 7]))], { kernel_shape: [7, 7], strides: [2, 2], pads: [3, 3, 3, 3] });
    const pooled = b.addNode('MaxPool', [b.addNode('Relu', [stem])], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
    const dw = b.addNode('Conv', [pooled, b.addInitializer('w1', weights([16, 1, 3, 3]))], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 16 });
    const clipped = b.addNode('Clip', [dw, b.addInitializer('lo', new Tensor('float32', Float32Array.of(0), [])), b.addInitializer('hi', new Tensor('float32', Float32Array.of(6), []))]);
    const y = b.addNode('Conv', [clipped, b.addInitializer('w2', weights([32, 16, 3, 3]))], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
    const session = await InferenceSession.create(b.build([{ name: y, dtype: 'float32', shape: ['N', 32, 10, 10] }]));
    expect(session.info().steps.join('\n')).toMatch(/7x7 s2x2 3->16[\s\S]*depthwise (planar|channel blocks)[\s\S]*winograd/);
    const batch = 512;
    const data = pixels(batch * 3 * 40 * 40, 3);
    await expectRunIgnoresTransfer(session, data, [batch, 3, 40, 40], y);
    session.release();
  }, 60_000);

  it('a batch run in passes (values past 16 MiB, few multiply-adds per byte) through the stride-2 depthwise rows, input transferred right after the call: correct output', async () => {
    // 8 x 112 x 112 -> depthwise 3x3/2 (56 output columns: the stride-2 rows) -> ReLU6 -> 1x1 to
    // 32 channels -> ReLU -> depthwise 3x3: a few multiply-adds per byte of values, so batch 64
    // goes through in passes, each pass's steps reading the job's copy of the input at its own
    // offset and writing the output at its own.
    const rng = new Rng(23);
    const weights = randomWeights(rng, 0.3);
    const b = new GraphBuilder('passes');
    const x = b.addInput('input', ['N', 8, 112, 112]);
    const dw = b.addNode('Conv', [x, b.addInitializer('w0', weights([8, 1, 3, 3]))], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], group: 8 });
    const clipped = b.addNode('Clip', [dw, b.addInitializer('lo', new Tensor('float32', Float32Array.of(0), [])), b.addInitializer('hi', new Tensor('float32', Float32Array.of(6), []))]);
    const pw = b.addNode('Relu', [b.addNode('Conv', [clipped, b.addInitializer('w1', weights([32, 8, 1, 1]))], { kernel_shape: [1, 1] })]);
    const y = b.addNode('Conv', [pw, b.addInitializer('w2', weights([32, 1, 3, 3]))], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 32 });
    const session = await InferenceSession.create(b.build([{ name: y, dtype: 'float32', shape: ['N', 32, 56, 56] }]));
    const avx2 = native.cpuInfo().isa !== 'scalar';
    if (avx2) expect(session.info().steps.join('\n')).toMatch(/3x3 s2x2 8->8 g8 clip\(0,6\) \(depthwise stride-2 rows\)/);
    const batch = 64;
    const image = 8 * 112 * 112;
    const data = pixels(batch * image, 4);
    // The last image alone: the same bits as in the batch's last pass.
    const alone = (await session.run({ input: new Tensor('float32', data.slice((batch - 1) * image), [1, 8, 112, 112]) }))[y]!.data;
    const whole = (await session.run({ input: new Tensor('float32', data.slice(), [batch, 8, 112, 112]) }))[y]!.data;
    expectSameElements(whole.subarray((batch - 1) * alone.length), alone, 'the last image');
    await expectRunIgnoresTransfer(session, data, [batch, 8, 112, 112], y);
    // Passes: the arena the runs kept holds a few images' values, not the batch's.
    const info = session.info();
    expect(batch * info.arenaBytesPerImage).toBeGreaterThan(16 * 2 ** 20);
    expect(info.arenaBytesHeld).toBeLessThan(batch * info.arenaBytesPerImage);
    session.release();
  }, 60_000);

  it('the fused activations and pools (SiLU and HardSwish inside depthwise and 1x1 convolutions, a padded pool inside the stem, ReLU inside a residual Add, a residual Add inside a 1x1 convolution), input transferred right after the call on 2 threads: correct output', async () => {
    const rng = new Rng(17);
    const weights = randomWeights(rng, 0.3);
    const b = new GraphBuilder('fused-activations');
    const x = b.addInput('input', ['N', 3, 36, 36]);
    const stem = b.addNode('Conv', [x, b.addInitializer('w0', weights([16, 3, 7, 7]))], { kernel_shape: [7, 7], strides: [2, 2], pads: [3, 3, 3, 3] });
    const pooled = b.addNode('MaxPool', [b.addNode('Relu', [stem])], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
    const dw = b.addNode('HardSwish', [b.addNode('Conv', [pooled, b.addInitializer('w1', weights([16, 1, 3, 3]))], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 16 })]);
    const pw = b.addNode('Conv', [dw, b.addInitializer('w2', weights([16, 16, 1, 1]))], { kernel_shape: [1, 1] });
    const silu = b.addNode('Mul', [pw, b.addNode('Sigmoid', [pw])]);
    const block = b.addNode('Relu', [b.addNode('Add', [silu, pooled])]);
    // A residual block whose Add the 1x1 convolution does: it reads `block` as its residual.
    const y = b.addNode('Relu', [b.addNode('Add', [b.addNode('Conv', [block, b.addInitializer('w3', weights([16, 16, 1, 1]))], { kernel_shape: [1, 1] }), block])]);
    const session = await InferenceSession.create(b.build([{ name: y, dtype: 'float32', shape: ['N', 16, 9, 9] }]), { intraOpNumThreads: 2 });
    expect(session.info().steps.join('\n')).toMatch(
      /7x7 s2x2 3->16 relu \+ pool 3x3 s2x2 p1[\s\S]*g16 hardswish[\s\S]*1x1 s1x1 16->16 silu[\s\S]*^Add .*: relu[\s\S]*1x1 s1x1 16->16 \+ residual relu/m,
    );
    const batch = 512;
    const data = pixels(batch * 3 * 36 * 36, 6);
    await expectRunIgnoresTransfer(session, data, [batch, 3, 36, 36], y);
    session.release();
  }, 60_000);

  it('an int8 model reads its large input in place while this thread waits (QuantizeLinear first): inputs transferred, overwritten or shrunk right after each call give the logits of runs on kept copies, lent or copied', async () => {
    const calibration = new Tensor('float32', pixels(16 * 784, 60), [16, 1, 28, 28]);
    const { graph } = await quantize(net, calibration, { reportImages: 0 });
    const session = await InferenceSession.create(graph);
    expect(session.info().steps[0]).toMatch(/^QuantizeLinear/);
    const batch = 64; // 200 KB: over the size whose copy is left to the runner; heavy enough to leave the JS thread
    const shape = [batch, 1, 28, 28];
    const inputs = Array.from({ length: 5 }, (_, i) => pixels(batch * 784, 70 + i));
    const expected = inputs.map((data) => session.runSync({ input: new Tensor('float32', data.slice(), shape) })['logits']!.data as Float32Array);
    const runs = (from: number, to: number): Promise<void> => runsWithInputsTakenAway(session, inputs, expected, shape, 'logits', from, to);
    const hooks = testHooks();
    try {
      // A JS thread that waits as long as it takes: every runner reads the arrays in place.
      let before = hooks.inputLoans();
      hooks.forceHandoffPatience(200_000);
      await runs(0, 30);
      let after = hooks.inputLoans();
      expect([after.lent - before.lent, after.copied - before.copied], 'runs read in place, copied').toEqual([30, 0]);
      // One that waits for nothing: it copies the arrays before a runner can take them.
      before = after;
      hooks.forceHandoffPatience(0);
      await runs(30, 60);
      after = hooks.inputLoans();
      expect(after.lent + after.copied - before.lent - before.copied, 'loans').toBe(30);
      expect(after.copied - before.copied, 'runs whose input this thread copied').toBeGreaterThan(15);
    } finally {
      hooks.forceHandoffPatience(-1);
    }
    session.release();
  }, 60_000);

  it('sessions with allowSpinning false (the runner sleeps as each run ends and is woken for the next, which decides whether an int8 model\'s input is lent or copied): inputs transferred, overwritten or shrunk right after each call give the logits of runs on kept copies', async () => {
    const calibration = new Tensor('float32', pixels(16 * 784, 61), [16, 1, 28, 28]);
    const { graph } = await quantize(net, calibration, { reportImages: 0 });
    const batch = 64; // 200 KB: over the size whose copy is left to the runner; heavy enough to leave the JS thread
    const shape = [batch, 1, 28, 28];
    const inputs = Array.from({ length: 3 }, (_, i) => pixels(batch * 784, 80 + i));
    const hooks = testHooks();
    for (const source of [graph, net] as const) {
      const session = await InferenceSession.create(source, { inputShape: MNIST, allowSpinning: false });
      const output = session.outputNames[0]!;
      const expected = inputs.map((data) => session.runSync({ input: new Tensor('float32', data.slice(), shape) })[output]!.data as Float32Array);
      const before = hooks.inputLoans();
      await runsWithInputsTakenAway(session, inputs, expected, shape, output, 0, 30, `${source === net ? 'fp32' : 'int8'} run`);
      const after = hooks.inputLoans();
      if (source === graph) {
        // Lent or copied depends on how soon the woken runner takes it (both happen over 30 runs).
        expect(after.lent + after.copied - before.lent - before.copied, 'int8 runs through the loan').toBe(30);
      } else {
        expect(after, 'fp32 runs copy their inputs (no loan)').toEqual(before);
      }
      session.release();
    }
  }, 60_000);

  it('the int8 lookup and squeeze-and-excitation steps (LookupU8, GlobalAvgPoolU8, QLinearMul), input transferred right after the call: correct output', async () => {
    const rng = new Rng(13);
    const weights = randomWeights(rng, 0.4);
    const conv = { kernel_shape: [3, 3], pads: [1, 1, 1, 1] };
    const b = new GraphBuilder('int8-se-paths');
    const x = b.addInput('input', ['N', 3, 24, 24]);
    const h1 = b.addNode('HardSwish', [b.addNode('Conv', [x, b.addInitializer('w0', weights([16, 3, 3, 3]))], conv)]);
    const c2 = b.addNode('Conv', [h1, b.addInitializer('w1', weights([16, 16, 3, 3]))], conv);
    const h2 = b.addNode('Mul', [c2, b.addNode('Sigmoid', [c2])]);
    const gate = b.addNode('Sigmoid', [b.addNode('Conv', [b.addNode('GlobalAveragePool', [h2]), b.addInitializer('w2', weights([16, 16, 1, 1]))], { kernel_shape: [1, 1] })]);
    const y = b.addNode('Conv', [b.addNode('Mul', [h2, gate]), b.addInitializer('w3', weights([8, 16, 3, 3]))], conv);
    const { graph } = await quantize(b.build([{ name: y, dtype: 'float32', shape: ['N', 8, 24, 24] }]), new Tensor('float32', pixels(16 * 3 * 24 * 24, 4), [16, 3, 24, 24]), { reportImages: 0 });
    const session = await InferenceSession.create(graph);
    expect(session.info().steps.join('\n')).toMatch(/u8 table HardSwish[\s\S]*u8 table SiLU[\s\S]*GlobalAvgPoolU8[\s\S]*u8 x channel gate/);
    const batch = 1024;
    const data = pixels(batch * 3 * 24 * 24, 5);
    await expectRunIgnoresTransfer(session, data, [batch, 3, 24, 24], y);
    session.release();
  }, 60_000);

  it('the int8 depthwise kernels (VNNI blocks of 64, 32 and 16 channels and a masked tail, rows split over 2 threads), input transferred right after the call: correct output', async () => {
    const rng = new Rng(19);
    const weights = randomWeights(rng, 0.4);
    const b = new GraphBuilder('int8-depthwise');
    const x = b.addInput('input', ['N', 3, 20, 20]);
    // 120 channels: a full 64-channel block, the 32-channel half block, the 16-channel quarter
    // block and 8 more; 5x5 taps, so the interior runs and the border pixels both occur.
    const wide = b.addNode('Relu', [b.addNode('Conv', [x, b.addInitializer('w0', weights([120, 3, 1, 1]))], { kernel_shape: [1, 1] })]);
    const dw = b.addNode('Relu', [b.addNode('Conv', [wide, b.addInitializer('w1', weights([120, 1, 5, 5]))], { kernel_shape: [5, 5], pads: [2, 2, 2, 2], group: 120 })]);
    const y = b.addNode('Conv', [dw, b.addInitializer('w2', weights([8, 120, 1, 1]))], { kernel_shape: [1, 1] });
    const { graph } = await quantize(b.build([{ name: y, dtype: 'float32', shape: ['N', 8, 20, 20] }]), new Tensor('float32', pixels(16 * 3 * 20 * 20, 7), [16, 3, 20, 20]), { reportImages: 0 });
    const session = await InferenceSession.create(graph, { intraOpNumThreads: 2 });
    expect(session.info().steps.join('\n')).toMatch(/u8 NHWC 5x5 s1x1 120->120 g120/);
    const batch = 256;
    await expectRunIgnoresTransfer(session, pixels(batch * 3 * 20 * 20, 8), [batch, 3, 20, 20], y);
    session.release();
  }, 60_000);

  it('session.run on a fixed-length view of a resizable ArrayBuffer, resized to 0 right after: correct logits', async () => {
    const session = await InferenceSession.create(net, { inputShape: MNIST });
    const batch = 4096;
    const source = pixels(batch * 784, 2);
    const rab = new ArrayBuffer(source.byteLength, { maxByteLength: source.byteLength });
    const view = new Float32Array(rab, 0, source.length);
    view.set(source);
    const expected = await session.run({ input: new Tensor('float32', source, [batch, 1, 28, 28]) });
    const pending = session.run({ input: new Tensor('float32', view, [batch, 1, 28, 28]) });
    rab.resize(0);
    const got = await pending;
    expectSameElements(got.logits.data, expected.logits.data);
    session.release();
  }, 60_000);

  it('Module.forward at batch 4096, input detached right after the call: correct output', async () => {
    const batch = 4096;
    const data = pixels(batch * 784, 3);
    const expected = await net.forward(new Tensor('float32', data.slice(), [batch, 1, 28, 28]));
    const pending = net.forward(new Tensor('float32', data, [batch, 1, 28, 28]));
    transferAway(data.buffer as ArrayBuffer);
    const got = await pending;
    expectSameElements(got.data, expected.data);
  }, 60_000);

  it('an output transferred away while the job runs rejects with a TypeError naming it (no write to freed memory)', async () => {
    const n = 1 << 22;
    const input = pixels(n, 4);
    const output = new Float32Array(n);
    const pending = native.relu({ input, output, length: n }, true);
    transferAway(output.buffer as ArrayBuffer);
    await expect(pending).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(/output/) });
  });

  it('an in-place update whose buffer shrinks while the job runs rejects; one left alone is updated', async () => {
    const n = 1 << 20;
    const make = (): { param: Float32Array; rab: ArrayBuffer } => {
      const rab = new ArrayBuffer(n * 4, { maxByteLength: n * 4 });
      const param = new Float32Array(rab, 0, n);
      param.fill(1);
      return { param, rab };
    };
    const grad = new Float32Array(n).fill(0.5);
    const step = (param: Float32Array): Promise<void> =>
      native.sgdStep({ param, grad, velocity: new Float32Array(n), length: n, lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false }, true) as Promise<void>;
    const shrunk = make();
    const pending = step(shrunk.param);
    shrunk.rab.resize(8);
    await expect(pending).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(/param/) });
    const kept = make();
    await step(kept.param);
    expect(kept.param[0]).toBeCloseTo(0.95, 6);
    expect(kept.param[n - 1]).toBeCloseTo(0.95, 6);
  });

  it('a SharedArrayBuffer input gives the same logits as a plain one', async () => {
    const session = await InferenceSession.create(net, { inputShape: MNIST });
    const batch = 512;
    const source = pixels(batch * 784, 6);
    const shared = new Float32Array(new SharedArrayBuffer(source.byteLength));
    shared.set(source);
    const a = await session.run({ input: new Tensor('float32', source, [batch, 1, 28, 28]) });
    const b = await session.run({ input: new Tensor('float32', shared as unknown as Float32Array, [batch, 1, 28, 28]) });
    expectSameElements(b.logits.data, a.logits.data);
    session.release();
  });
});

/**
 * Every async entry point of the addon, with each array it reads transferred away right after the
 * call: the result must equal the same call run inline on untouched copies.
 */
describe('every async native call works on its own copy of what it reads', () => {
  const rng = new Rng(11);
  const f32 = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
  const u8 = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => Math.floor(rng.uniform(0, 256)));
  const i8 = (n: number): Int8Array => Int8Array.from({ length: n }, () => Math.floor(rng.uniform(-128, 128)));
  const conv = { batch: 3, inChannels: 4, inHeight: 9, inWidth: 8, outChannels: 5, outHeight: 7, outWidth: 6, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padTop: 0, padLeft: 0, padBottom: 0, padRight: 0, dilationH: 1, dilationW: 1, groups: 1 };
  const convIn = 3 * 4 * 9 * 8, convW = 5 * 4 * 9, convOut = 3 * 5 * 7 * 6;
  const pool = { batch: 3, channels: 4, inHeight: 9, inWidth: 8, outHeight: 4, outWidth: 4, kernelH: 2, kernelW: 2, strideH: 2, strideW: 2, padTop: 0, padLeft: 0, padBottom: 0, padRight: 0, dilationH: 1, dilationW: 1 };
  const poolOut = 3 * 4 * 4 * 4;
  type TypedArray = Float32Array | Int32Array | Uint8Array | Int8Array;
  /** A call: its args (reads and writes), which fields it reads, and the native function. */
  interface Case {
    name: string;
    make: () => Record<string, unknown>;
    reads: string[];
    writes: string[];
    call: (args: Record<string, unknown>, async: boolean) => unknown;
  }
  const cases: Case[] = [
    { name: 'conv2dForward', make: () => ({ ...conv, input: f32(convIn), weight: f32(convW), bias: f32(5), output: new Float32Array(convOut) }), reads: ['input', 'weight', 'bias'], writes: ['output'], call: (a, s) => native.conv2dForward(a as never, s) },
    { name: 'conv2dBackward', make: () => ({ ...conv, input: f32(convIn), weight: f32(convW), gradOutput: f32(convOut), gradInput: new Float32Array(convIn), gradWeight: new Float32Array(convW), gradBias: new Float32Array(5) }), reads: ['input', 'weight', 'gradOutput'], writes: ['gradInput', 'gradWeight', 'gradBias'], call: (a, s) => native.conv2dBackward(a as never, s) },
    { name: 'maxPool2dForward', make: () => ({ ...pool, input: f32(convIn), output: new Float32Array(poolOut), indices: new Int32Array(poolOut) }), reads: ['input'], writes: ['output', 'indices'], call: (a, s) => native.maxPool2dForward(a as never, s) },
    { name: 'avgPool2dBackward', make: () => ({ ...pool, gradOutput: f32(poolOut), gradInput: new Float32Array(convIn), countIncludePad: true }), reads: ['gradOutput'], writes: ['gradInput'], call: (a, s) => native.avgPool2dBackward(a as never, s) },
    { name: 'softmaxCrossEntropy', make: () => ({ logits: f32(40), labels: Int32Array.from({ length: 4 }, (_, i) => i * 2), rows: 4, cols: 10, losses: new Float32Array(4), gradLogits: new Float32Array(40), gradScale: 0.25 }), reads: ['logits', 'labels'], writes: ['losses', 'gradLogits'], call: (a, s) => native.softmaxCrossEntropy(a as never, s) },
    { name: 'adamStep', make: () => ({ param: f32(100), grad: f32(100), m: f32(100), v: f32(100).map(Math.abs), length: 100, lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, decoupled: true, step: 3 }), reads: ['grad'], writes: ['param', 'm', 'v'], call: (a, s) => native.adamStep(a as never, s) },
    { name: 'batchNorm2dBackward', make: () => ({ input: f32(120), gradOutput: f32(120), gamma: f32(4), saveMean: f32(4), saveInvStd: f32(4).map(Math.abs), gradInput: new Float32Array(120), gradGamma: new Float32Array(4), gradBeta: new Float32Array(4), batch: 2, channels: 4, spatial: 15 }), reads: ['input', 'gradOutput', 'gamma', 'saveMean', 'saveInvStd'], writes: ['gradInput', 'gradGamma', 'gradBeta'], call: (a, s) => native.batchNorm2dBackward(a as never, s) },
    { name: 'sgemm', make: () => ({ transA: false, transB: true, m: 7, n: 5, k: 9, alpha: 1, a: f32(63), lda: 9, b: f32(45), ldb: 9, beta: 0.5, c: f32(7 * 6), ldc: 6, bias: f32(5), biasMode: 'col' }), reads: ['a', 'b', 'bias'], writes: ['c'], call: (a, s) => native.sgemm(a as never, s) },
    { name: 's8gemmRequantize', make: () => ({ m: 6, n: 17, k: 11, a: u8(66), lda: 11, aZeroPoint: 7, b: i8(11 * 17), ldb: 17, bias: Int32Array.from({ length: 17 }, (_, i) => i * 10), c: new Uint8Array(6 * 17), ldc: 17, scale: Float32Array.from({ length: 17 }, () => 0.01), outZeroPoint: 3 }), reads: ['a', 'b', 'bias', 'scale'], writes: ['c'], call: (a, s) => native.s8gemmRequantize(a as never, s) },
    { name: 's8conv2d', make: () => ({ ...conv, input: u8(convIn), weight: i8(convW), bias: Int32Array.from({ length: 5 }, (_, i) => i), wScale: Float32Array.from({ length: 5 }, () => 0.02), xScale: 0.05, xZeroPoint: 9, output: new Uint8Array(convOut), yScale: 0.1, yZeroPoint: 4 }), reads: ['input', 'weight', 'bias', 'wScale'], writes: ['output'], call: (a, s) => native.s8conv2d(a as never, s) },
    { name: 'quantizeU8NchwToNhwc', make: () => ({ input: f32(60), output: new Uint8Array(60), batch: 3, channels: 4, plane: 5, scale: 0.01, zeroPoint: 128 }), reads: ['input'], writes: ['output'], call: (a, s) => native.quantizeU8NchwToNhwc(a as never, s) },
  ];
  const copyArgs = (args: Record<string, unknown>): Record<string, unknown> =>
    Object.fromEntries(Object.entries(args).map(([k, v]) => [k, ArrayBuffer.isView(v) ? (v as TypedArray).slice() : v]));

  for (const c of cases) {
    it(c.name, async () => {
      const args = c.make();
      const inline = copyArgs(args);
      c.call(inline, false);
      const pending = c.call(args, true) as Promise<void>;
      for (const name of c.reads) transferAway((args[name] as TypedArray).buffer as ArrayBuffer);
      await pending;
      for (const name of c.writes) expectSameElements(args[name] as TypedArray, inline[name] as TypedArray, `${c.name} ${name}`);
    });
  }

  it('packS8B and createPlan read weights that are transferred away right after the call', async () => {
    const b = i8(9 * 20);
    const packed = native.packS8B({ k: 9, n: 20, b, ldb: 20 }, true);
    transferAway(b.buffer as ArrayBuffer);
    expect(native.packedS8BInfo(await packed)).toMatchObject({ k: 9, n: 20 });

    const spec = (w: Float32Array, g: Float32Array) => ({
      values: [[2, 6, 6], [4, 4, 4], [64], [5]],
      inputs: [0],
      outputs: [3],
      steps: [
        { op: 'Conv', name: 'conv', inputs: [0], outputs: [1], attrs: { kernel: [3, 3] }, weights: { W: { data: w, shape: [4, 2, 3, 3] } } },
        { op: 'Flatten', name: 'flatten', inputs: [1], outputs: [2] },
        { op: 'Gemm', name: 'fc', inputs: [2], outputs: [3], weights: { B: { data: g, shape: [64, 5] } } },
      ],
    });
    const w = f32(72), g = f32(320), x = f32(2 * 72);
    const expected = new Float32Array(10);
    const inline = native.createPlan(spec(w.slice(), g.slice()));
    native.runPlan(inline, { inputs: [x], outputs: [expected], batch: 2 }, false);
    const building = native.createPlan(spec(w, g), true);
    transferAway(w.buffer as ArrayBuffer);
    transferAway(g.buffer as ArrayBuffer);
    const plan = await building;
    const got = new Float32Array(10);
    await native.runPlan(plan, { inputs: [x], outputs: [got], batch: 2 }, true);
    expectSameElements(got, expected);
  });
});

describe('lent memory (src/memory.ts): what Kiln allocates is used in place by async jobs', () => {
  it('allocFloat32 and allocInt32 give zero-filled arrays, lent from the addon when large', () => {
    for (const n of [0, 1, 4095, 4096, 1 << 20]) {
      const f = allocFloat32(n);
      const i = allocInt32(n);
      expect(f.length).toBe(n);
      expect(i.length).toBe(n);
      expect(f.every((v) => v === 0) && i.every((v) => v === 0)).toBe(true);
    }
    expect(() => allocFloat32(-1)).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_KILN_INVALID_ARG' }));
    expect(() => allocFloat32(2.5)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_KILN_INVALID_ARG' }));
    expect(() => native.lendArrayBuffer(-1)).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_KILN_INVALID_ARG' }));
    expect(() => native.lendArrayBuffer(1.5)).toThrow(expect.objectContaining({ code: 'ERR_KILN_INVALID_ARG' }));
  });

  it('a job on lent arrays gives the same result as on ordinary ones, and a lent buffer handed to another thread meanwhile cannot take memory from it', async () => {
    const n = 1 << 21;
    const data = pixels(n, 13).map((v) => v - 0.5);
    const plain = new Float32Array(n);
    await native.relu({ input: data, output: plain, length: n }, true);
    const input = allocFloat32(n);
    input.set(data);
    const output = allocFloat32(n);
    const pending = native.relu({ input, output, length: n }, true);
    // Node keeps an external (lent) buffer attached and sends a copy; either way the job's memory stays.
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(input.buffer, [input.buffer as ArrayBuffer]);
    port1.close();
    port2.close();
    await pending;
    expectSameElements(output.subarray(0, 1000), plain.subarray(0, 1000));
    expect(output.every((v, i) => v === plain[i])).toBe(true);
  });

  it('one training step of SeedCNN at batch 64 copies nothing into its jobs but the batch itself', async () => {
    const { Sequential } = await import('../../src/nn/index.js');
    const copied: string[] = [];
    const lent = new WeakSet<ArrayBufferLike>();
    const lend = native.lendArrayBuffer;
    const wrapped = native as unknown as Record<string, (...args: unknown[]) => unknown>;
    const originals = new Map<string, (...args: unknown[]) => unknown>();
    native.lendArrayBuffer = (bytes: number) => {
      const b = lend(bytes);
      lent.add(b);
      return b;
    };
    for (const name of ['conv2dForward', 'conv2dBackward', 'conv2dMaxPoolForward', 'maxPool2dForward', 'maxPool2dBackward', 'sgemm']) {
      const fn = wrapped[name]!;
      originals.set(name, fn);
      wrapped[name] = (args: unknown, async: unknown) => {
        if (async === true) {
          for (const [k, v] of Object.entries(args as Record<string, unknown>)) {
            if (ArrayBuffer.isView(v) && v.byteLength >= 16384 && !lent.has(v.buffer)) copied.push(`${name}.${k}`);
          }
        }
        return fn(args, async);
      };
    }
    try {
      const model = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 7 }) as InstanceType<typeof Sequential>;
      model.train();
      const x = new Tensor('float32', pixels(64 * 784, 14), [64, 1, 28, 28]);
      const y = await model.forward(x);
      await model.backward(new Tensor('float32', pixels(y.size, 15), y.dims as number[]));
    } finally {
      native.lendArrayBuffer = lend;
      for (const [name, fn] of originals) wrapped[name] = fn;
    }
    // conv1 reads the caller's batch; everything else is Kiln's own memory.
    expect(copied.filter((c) => !c.endsWith('.input'))).toEqual([]);
  });
});
