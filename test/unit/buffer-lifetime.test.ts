/**
 * A buffer JavaScript takes away while a native job runs on another thread must never be read or
 * written by that job. Each case detaches, transfers or shrinks an array right after the call
 * that handed it to a runner thread; the call must settle with a correct result (the job works on
 * its own copy) or a rejected Promise, never end the process with a signal.
 */
import { describe, expect, it } from 'vitest';

import { native } from '../../src/binding.js';
import { seedCNN } from '../../src/nn/models.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const MNIST = [1, 28, 28];
const net = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 5 }).eval();

function pixels(count: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: count }, () => rng.uniform(0, 1));
}

/** Detaches `buffer` the way a user would hand it to another thread. */
function transferAway(buffer: ArrayBuffer): void {
  const clone = structuredClone as (value: unknown, options: { transfer: ArrayBuffer[] }) => unknown;
  clone(buffer, { transfer: [buffer] });
}

describe('buffers taken away under a running job', () => {
  it('session.run at batch 20000, input transferred right after the call: correct logits', async () => {
    const session = await InferenceSession.create(net, { inputShape: MNIST });
    const batch = 20000;
    const data = pixels(batch * 784, 1);
    const expected = await session.run({ input: new Tensor('float32', data.slice(), [batch, 1, 28, 28]) });
    const pending = session.run({ input: new Tensor('float32', data, [batch, 1, 28, 28]) });
    transferAway(data.buffer as ArrayBuffer);
    expect(data.length).toBe(0);
    const got = await pending;
    expect(Array.from(got.logits.data)).toEqual(Array.from(expected.logits.data));
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
    expect(Array.from(got.logits.data)).toEqual(Array.from(expected.logits.data));
    session.release();
  }, 60_000);

  it('Module.forward at batch 4096, input detached right after the call: correct output', async () => {
    const batch = 4096;
    const data = pixels(batch * 784, 3);
    const expected = await net.forward(new Tensor('float32', data.slice(), [batch, 1, 28, 28]));
    const pending = net.forward(new Tensor('float32', data, [batch, 1, 28, 28]));
    transferAway(data.buffer as ArrayBuffer);
    const got = await pending;
    expect(Array.from(got.data)).toEqual(Array.from(expected.data));
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
    expect(Array.from(b.logits.data)).toEqual(Array.from(a.logits.data));
    session.release();
  });
});
