/**
 * InferenceSession: outputs equal the Module's eval forward, every source kind (Module, Graph,
 * .kiln path and bytes, ONNX bytes), concurrent runs, release semantics, feed validation, and
 * symbolic input sizes compiled on first use.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import { afterAll, describe, expect, it } from 'vitest';

import { native } from '../../src/binding.js';
import { GraphBuilder, type Graph } from '../../src/graph/ir.js';
import { BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential, AvgPool2d } from '../../src/nn/index.js';
import { seedCNN } from '../../src/nn/models.js';
import { exportModel } from '../../src/onnx/index.js';
import { save } from '../../src/runtime/model-io.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { relDiff, uniformImages } from '../support/tensors.js';

const rng = new Rng(99);
const image = (batch: number, shape: number[]): Tensor<'float32'> => uniformImages(rng, batch, shape);

const MNIST = [1, 28, 28];
const net = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 3 }).eval();

/** Conv-BN-ReLU-pool twice with non-trivial running statistics, then Dropout and Linear. */
function bnNet(): Sequential {
  const model = new Sequential(
    new Conv2d(3, 8, 3, { padding: 1, seed: 1 }), new BatchNorm2d(8), new ReLU(), new MaxPool2d(2),
    new Conv2d(8, 6, 3, { seed: 2 }), new BatchNorm2d(6), new ReLU(), new AvgPool2d(2, { padding: 1, countIncludePad: false }),
    new Flatten(), new Dropout(0.3), new Linear(6 * 3 * 3, 4, { seed: 3 }),
  );
  for (const b of model.buffers()) {
    const isVar = b.name.endsWith('running_var') || b.name.toLowerCase().includes('var');
    b.value.data.forEach((_, i, a) => (a[i] = isVar ? rng.uniform(0.5, 2) : rng.uniform(-0.5, 0.5)));
  }
  for (const p of model.parameters()) if (p.name.endsWith('weight') && p.value.dims.length === 1) p.value.data.forEach((_, i, a) => (a[i] = rng.uniform(0.5, 1.5)));
  return model.eval();
}

describe('InferenceSession outputs', () => {
  it('matches SeedCNN eval forward within 1e-5 (relative), names its input and output', async () => {
    const session = await InferenceSession.create(net, { inputShape: MNIST });
    expect(session.inputNames).toEqual(['input']);
    expect(session.outputNames).toEqual(['logits']);
    expect(session.inputShapes).toEqual([['N', 1, 28, 28]]);
    expect(session.outputShapes).toEqual([['N', 10]]);
    for (const batch of [1, 7, 64]) {
      const x = image(batch, MNIST);
      const { logits } = await session.run({ input: x });
      expect(relDiff(logits, await net.forward(x))).toBeLessThanOrEqual(1e-5);
      expect(relDiff(session.runSync({ input: x }).logits, logits)).toBe(0);
    }
    const steps = session.info().steps;
    expect(steps.filter((s) => s.includes('relu'))).toHaveLength(3);
    // Conv+ReLU+MaxPool run as one step each (level 'all').
    expect(steps.filter((s) => s.startsWith('Conv') && s.includes('+ pool 2x2'))).toHaveLength(2);
    expect(steps.some((s) => s.startsWith('MaxPool'))).toBe(false);
    session.release();
  });

  it("runs SeedCNN's second convolution as Winograd at level 'all' only (F(2x2) for MNIST, F(4x4) for CIFAR), within 1e-5 of the direct path", async () => {
    const cifar = seedCNN({ inChannels: 3, height: 32, width: 32, numClasses: 10, seed: 3 }).eval();
    for (const [model, shape, tile] of [[net, MNIST, 2], [cifar, [3, 32, 32], 4]] as const) {
      const all = await InferenceSession.create(model, { inputShape: [...shape] });
      const extended = await InferenceSession.create(model, { inputShape: [...shape], graphOptimizationLevel: 'extended' });
      const winograd = (s: InferenceSession) => s.info().steps.filter((l) => l.includes('winograd'));
      expect(winograd(all)).toEqual([`Conv conv_1: 3x3 s1x1 32->64 relu + pool 2x2 s2x2 (winograd F(${tile}x${tile}, 3x3) on avx512)`]);
      expect(winograd(extended)).toEqual([]);
      // The transformed weights ((tile + 2)^2 floats per channel pair, and F(2x2)'s beside F(4x4)'s
      // for the images holding a NaN) and the padded bias count among the plan's weights.
      const pairs = 32 * 64;
      const transformed = ((tile + 2) ** 2 + (tile === 4 ? 16 : 0)) * pairs + 64;
      expect(all.info().weightBytes - extended.info().weightBytes).toBe(4 * transformed);
      const x = image(9, [...shape]);
      const diff = relDiff((await all.run({ input: x })).logits, (await extended.run({ input: x })).logits);
      expect(diff, `tile ${tile}`).toBeLessThanOrEqual(1e-5);
      expect(diff, `tile ${tile}: Winograd must round differently from the direct sum`).toBeGreaterThan(0);
      all.release();
      extended.release();
    }
  });

  it('matches a BatchNorm/Dropout/AvgPool network at every optimisation level (BN folded or run as an affine)', async () => {
    const model = bnNet();
    const x = image(5, [3, 12, 12]);
    const want = await model.forward(x);
    for (const level of ['disabled', 'basic', 'all'] as const) {
      const session = await InferenceSession.create(model, { inputShape: [3, 12, 12], graphOptimizationLevel: level });
      const steps = session.info().steps;
      expect(steps.some((s) => s.startsWith('BatchNormalization'))).toBe(level === 'disabled');
      expect(relDiff((await session.run({ input: x })).logits, want)).toBeLessThanOrEqual(1e-5);
      session.release();
    }
  });

  it('gives identical results with intraOpNumThreads 1 and 2, and for an image whatever batch it runs in', async () => {
    const one = await InferenceSession.create(net, { inputShape: MNIST, intraOpNumThreads: 1 });
    const two = await InferenceSession.create(net, { inputShape: MNIST, intraOpNumThreads: 2 });
    for (const batch of [3, 8, 33, 64]) {
      const x = image(batch, MNIST);
      const want = (await one.run({ input: x })).logits;
      expect(relDiff((await two.run({ input: x })).logits, want), `batch ${batch}`).toBe(0);
      // The last two images alone: the same bits as inside the whole batch.
      const tail = new Tensor('float32', x.data.slice((batch - 2) * 784), [2, ...MNIST]);
      const got = (await two.run({ input: tail })).logits;
      expect(Array.from(got.data), `batch ${batch} tail`).toEqual(Array.from(want.data.slice((batch - 2) * 10)));
    }
    one.release();
    two.release();
  });

  it('loads .kiln files (path and bytes) and ONNX bytes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kiln-session-'));
    try {
      const path = join(dir, 'seed.kiln');
      await save(net, path, { inputShape: MNIST });
      const x = image(4, MNIST);
      const want = await net.forward(x);
      const fromPath = await InferenceSession.create(path);
      expect(relDiff((await fromPath.run({ input: x })).logits, want)).toBeLessThanOrEqual(1e-5);
      fromPath.release();
      const { readFile } = await import('node:fs/promises');
      const fromBytes = await InferenceSession.create(new Uint8Array(await readFile(path)));
      expect(relDiff((await fromBytes.run({ input: x })).logits, want)).toBeLessThanOrEqual(1e-5);
      fromBytes.release();
      const onnx = await InferenceSession.create(exportModel(net, { inputShape: MNIST }));
      const name = onnx.inputNames[0];
      expect(relDiff((await onnx.run({ [name]: x }))[onnx.outputNames[0]], want)).toBeLessThanOrEqual(1e-5);
      onnx.release();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('copies an output that is a graph input or shares a value with another output', async () => {
    const b = new GraphBuilder('copies');
    const x = b.addInput('x', ['N', 3]);
    const same = b.addNode('Identity', [x]);
    const r = b.addNode('Relu', [x]);
    const view = b.addNode('Reshape', [r], { shape: [0, 3, 1] });
    const g = b.build([
      { name: same, dtype: 'float32', shape: ['N', 3] },
      { name: r, dtype: 'float32', shape: ['N', 3] },
      { name: view, dtype: 'float32', shape: ['N', 3, 1] },
    ]);
    for (const level of ['disabled', 'all'] as const) {
      const session = await InferenceSession.create(g, { graphOptimizationLevel: level });
      const t = new Tensor('float32', Float32Array.from([-1, 2, -3, 4, -5, 6]), [2, 3]);
      const out = await session.run({ x: t });
      expect(Array.from(out[same].data)).toEqual([-1, 2, -3, 4, -5, 6]);
      expect(out[same].data).not.toBe(t.data);
      expect(Array.from(out[r].data)).toEqual([0, 2, 0, 4, 0, 6]);
      expect(out[view].dims).toEqual([2, 3, 1]);
      expect(Array.from(out[view].data)).toEqual([0, 2, 0, 4, 0, 6]);
      out[r].data[1] = 100;
      expect(out[view].data[1]).toBe(2);
      session.release();
    }
  });

  it('honours a fixed batch size in the graph (a Reshape may then name it)', async () => {
    const b = new GraphBuilder('fixed');
    const x = b.addInput('x', [1, 2, 3]);
    const r = b.addNode('Reshape', [x], { shape: [1, -1] });
    const y = b.addNode('Relu', [r]);
    const session = await InferenceSession.create(b.build([{ name: y, dtype: 'float32', shape: [1, 6] }]));
    expect(session.outputShapes).toEqual([[1, 6]]);
    const t = new Tensor('float32', Float32Array.from([-1, 2, -3, 4, -5, 6]), [1, 2, 3]);
    expect(Array.from((await session.run({ x: t }))[y].data)).toEqual([0, 2, 0, 4, 0, 6]);
    await expect(session.run({ x: image(2, [2, 3]) })).rejects.toThrow(expect.objectContaining({ code: 'ERR_KILN_SHAPE_MISMATCH', message: expect.stringMatching(/fixed batch size 1/) }));
    session.release();
  });

  it('compiles a graph with symbolic spatial sizes on first use of each size', async () => {
    const b = new GraphBuilder('dynamic');
    const x = b.addInput('x', ['N', 3, 'H', 'W']);
    const w = b.addInitializer('w', new Tensor('float32', Float32Array.from({ length: 4 * 3 * 9 }, () => rng.uniform(-1, 1)), [4, 3, 3, 3]));
    const c = b.addNode('Conv', [x, w], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
    const y = b.addNode('GlobalAveragePool', [c]);
    const graph = b.build([{ name: y, dtype: 'float32', shape: ['N', 4, 1, 1] }]);
    const session = await InferenceSession.create(graph);
    expect(() => session.runSync({ x: image(1, [3, 5, 5]) })).toThrow(expect.objectContaining({ code: 'ERR_KILN_INVALID_STATE' }));
    const small = await session.run({ x: image(2, [3, 5, 7]) });
    const large = await session.run({ x: image(1, [3, 9, 4]) });
    expect(small[y].dims).toEqual([2, 4, 1, 1]);
    expect(large[y].dims).toEqual([1, 4, 1, 1]);
    expect(session.runSync({ x: image(3, [3, 5, 7]) })[y].dims).toEqual([3, 4, 1, 1]);
    session.release();
  });
});

describe('InferenceSession scheduling and lifetime', () => {
  it('returns a Promise even for tiny inline runs, and leaves the event loop for heavy ones', async () => {
    const session = await InferenceSession.create(net, { inputShape: MNIST });
    const tiny = session.run({ input: image(1, MNIST) });
    expect(tiny).toBeInstanceOf(Promise);
    await tiny;
    // Which runs leave the JS thread is the plan call's `async` argument (an ordering of
    // callbacks would depend on how fast the runner thread is).
    const asyncArgs: boolean[] = [];
    const runPlan = native.runPlan;
    native.runPlan = (plan, args, async) => {
      asyncArgs.push(async);
      return runPlan(plan, args, async);
    };
    try {
      await session.run({ input: image(1, MNIST) });
      await session.run({ input: image(256, MNIST) });
    } finally {
      native.runPlan = runPlan;
    }
    expect(asyncArgs).toEqual([false, true]);
    session.release();
  });

  it('keeps several runs in flight correct', async () => {
    const session = await InferenceSession.create(net, { inputShape: MNIST });
    // More worker runs at once than there are runner threads: the rest wait in the backlog.
    const inputs = [3, 64, 1, 17, 64, 2, 33, 40, 64, 25, 48, 64].map((b) => image(b, MNIST));
    const results = await Promise.all(inputs.map((x) => session.run({ input: x })));
    for (let i = 0; i < inputs.length; i++) {
      expect(relDiff(results[i].logits, session.runSync({ input: inputs[i] }).logits)).toBe(0);
    }
    session.release();
  });

  it('runs async plans in worker threads, and a worker ended with runs in flight takes nothing down', async () => {
    // The addon in a Worker (its own N-API environment): 20 async runs of a Relu plan, checked;
    // then 50 more left in flight while the worker exits.
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = workerData.path ? require(workerData.path) : require('node-gyp-build')(workerData.root);
      const plan = addon.createPlan({ values: [[1000], [1000]], inputs: [0], outputs: [1],
        steps: [{ op: 'Relu', name: 'r', inputs: [0], outputs: [1] }] });
      const x = Float32Array.from({ length: 1000 }, (_, i) => i - 500);
      (async () => {
        let ok = true;
        for (let i = 0; i < 20; i++) {
          const y = new Float32Array(1000);
          await addon.runPlan(plan, { inputs: [x], outputs: [y], batch: 1 }, true);
          ok = ok && y[0] === 0 && y[999] === 499;
        }
        parentPort.postMessage(ok);
        for (let i = 0; i < 50; i++) addon.runPlan(plan, { inputs: [x], outputs: [new Float32Array(1000)], batch: 1 }, true);
        process.exit(0);
      })();
    `;
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
    const worker = new Worker(code, { eval: true, workerData: { path: process.env.KILN_ADDON_PATH, root } });
    // Listen for 'exit' from the start: when the worker exits before its message is read, Node
    // delivers the message and then 'exit' in one callback, before an await could add a listener.
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    const ok = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(ok).toBe(true);
    expect(await exited).toBe(0);
    // This environment's runs still work.
    const session = await InferenceSession.create(net, { inputShape: MNIST });
    const x = image(64, MNIST);
    expect(relDiff((await session.run({ input: x })).logits, session.runSync({ input: x }).logits)).toBe(0);
    session.release();
  });

  it('refuses release while runs are in flight, then releases; later runs reject as disposed', async () => {
    const session = await InferenceSession.create(net, { inputShape: MNIST });
    const pending = session.run({ input: image(16, MNIST) });
    expect(session.pendingRuns).toBe(1);
    expect(() => session.release()).toThrow(expect.objectContaining({ name: 'KilnError', code: 'ERR_KILN_INVALID_STATE' }));
    await pending;
    expect(session.pendingRuns).toBe(0);
    session.release();
    session.release(); // idempotent
    await expect(session.run({ input: image(1, MNIST) })).rejects.toThrow(expect.objectContaining({ code: 'ERR_KILN_DISPOSED' }));
    expect(() => session.runSync({ input: image(1, MNIST) })).toThrow(expect.objectContaining({ code: 'ERR_KILN_DISPOSED' }));
    const other = await InferenceSession.create(net, { inputShape: MNIST });
    other[Symbol.dispose]();
    await expect(other.run({ input: image(1, MNIST) })).rejects.toThrow(expect.objectContaining({ code: 'ERR_KILN_DISPOSED' }));
  });
});

describe('InferenceSession argument checks', () => {
  const sessionP = InferenceSession.create(net, { inputShape: MNIST });
  afterAll(async () => (await sessionP).release());
  const invalid = (name: string, message?: RegExp) => expect.objectContaining({ name, code: 'ERR_KILN_INVALID_ARG', ...(message ? { message: expect.stringMatching(message) } : {}) });
  const shape = (message?: RegExp) => expect.objectContaining({ name: 'RangeError', code: 'ERR_KILN_SHAPE_MISMATCH', ...(message ? { message: expect.stringMatching(message) } : {}) });

  it('validates feeds: names, dtype, rank, per-image dims, lengths', async () => {
    const s = await sessionP;
    const x = image(2, MNIST);
    await expect(s.run(null as never)).rejects.toThrow(invalid('TypeError', /feeds/));
    await expect(s.run(x as never)).rejects.toThrow(invalid('TypeError', /feeds/));
    await expect(s.run({})).rejects.toThrow(invalid('TypeError', /feeds\['input'\]/));
    await expect(s.run({ input: x, extra: x })).rejects.toThrow(invalid('RangeError', /extra input 'extra'/));
    await expect(s.run({ input: new Tensor('int32', new Int32Array(784), [1, 1, 28, 28]) })).rejects.toThrow(invalid('TypeError', /float32/));
    await expect(s.run({ input: new Tensor('float32', new Float32Array(784), [1, 784]) })).rejects.toThrow(shape(/4 dimensions/));
    await expect(s.run({ input: new Tensor('float32', new Float32Array(2 * 784), [2, 1, 784, 1]) })).rejects.toThrow(shape(/dims \[N, 1, 28, 28\]/));
    await expect(s.run({ input: { type: 'float32', data: new Float32Array(10), dims: [1, 1, 28, 28] } as never })).rejects.toThrow(shape(/784 elements/));
    expect(() => s.runSync({ input: 'pixels' as never })).toThrow(invalid('TypeError'));
  });

  it('runs NaN inputs as data', async () => {
    const s = await sessionP;
    const x = image(2, MNIST);
    x.data[5] = Number.NaN;
    const { logits } = await s.run({ input: x });
    expect(Number.isNaN(logits.data[0])).toBe(true);
    expect(Number.isNaN(logits.data[10])).toBe(false);
  });

  it('validates create() options and sources', async () => {
    // A Module that does not know its image shape needs options.inputShape (seedCNN's knows it).
    await expect(InferenceSession.create(new Sequential(new ReLU()))).rejects.toThrow(invalid('TypeError', /inputShape/));
    const fromOwnShape = await InferenceSession.create(net);
    expect(fromOwnShape.inputShapes).toEqual([['N', 1, 28, 28]]);
    fromOwnShape.release();
    await expect(InferenceSession.create(net, { inputShape: MNIST, intraOpNumThreads: -1 })).rejects.toThrow(invalid('RangeError', /intraOpNumThreads/));
    await expect(InferenceSession.create(net, { inputShape: MNIST, allowSpinning: 0 as never })).rejects.toThrow(invalid('TypeError', /boolean for options\.allowSpinning/));
    await expect(InferenceSession.create(net, { inputShape: MNIST, graphOptimizationLevel: 'max' as never })).rejects.toThrow(invalid('RangeError', /graphOptimizationLevel/));
    await expect(InferenceSession.create(net, { inputShape: [2, 28, 28] })).rejects.toThrow(expect.objectContaining({ code: 'ERR_KILN_SHAPE_MISMATCH' }));
    await expect(InferenceSession.create(42 as never)).rejects.toThrow(invalid('TypeError', /source/));
    await expect(InferenceSession.create('/nonexistent/model.kiln')).rejects.toThrow(expect.objectContaining({ code: 'ERR_KILN_FILE_NOT_FOUND' }));
    await expect(InferenceSession.create(new Uint8Array([0x4b, 0x49, 0x4c, 0x4e, 1, 2, 3]))).rejects.toThrow(expect.objectContaining({ code: 'ERR_KILN_CORRUPT_MODEL' }));
  });

  it('lists every unsupported node at once', async () => {
    const b = new GraphBuilder('unsupported');
    const x = b.addInput('x', ['N', 3, 4]);
    const a = b.addNode('Frobnicate', [x], {}, 'frob');
    const t = b.addNode('Transpose', [x], { perm: [1, 0, 2] }, 'swap_batch');
    const c = b.addNode('Hardmax', [t], {}, 'hardmax');
    const s = b.addNode('Add', [a, c], {}, 'add');
    const graph: Graph = b.build([{ name: s, dtype: 'float32', shape: ['N', 3, 4] }]);
    const error = (await InferenceSession.create(graph).catch((e: unknown) => e)) as Error & { code: string };
    expect(error).toMatchObject({ name: 'KilnError', code: 'ERR_KILN_UNSUPPORTED_OP' });
    expect(error.message).toMatch(/Frobnicate 'frob'/);
    expect(error.message).toMatch(/Transpose 'swap_batch' \(perm \[1, 0, 2\] moves the batch axis\)/);
    expect(error.message).toMatch(/Hardmax 'hardmax'/);
    expect(error.message).toMatch(/op types: Frobnicate, Transpose, Hardmax/);
  });
});
