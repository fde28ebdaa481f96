/**
 * SessionOptions.allowSpinning: after a run of a session that allows spinning, the runner thread
 * and the kernel pool's helpers poll for more work; with allowSpinning false they go to sleep as
 * soon as the run ends, and the results are the same bits. The polling window is stretched to a
 * minute (a test hook) so that only the option can put a thread to sleep within the test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { native, testHooks } from '../../src/binding.js';
import { seedCNN } from '../../src/nn/models.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';

const MNIST = [1, 28, 28];
// Large enough to leave the JS thread (runtime/async-policy.ts) and to split over the threads.
const BATCH = 64;

/** Waits (bounded, 10 s) until `cond` holds; returns whether it did. */
async function eventually(cond: () => boolean): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
  return cond();
}

describe('SessionOptions.allowSpinning', () => {
  const poolThreads = native.cpuInfo().threads;
  const net = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 3 });
  const images = new Float32Array(BATCH * 28 * 28).map((_, i) => Math.sin(i * 0.37));
  let spinning: InferenceSession;
  let parking: InferenceSession;

  beforeAll(async () => {
    native.setNumThreads(2);
    spinning = await InferenceSession.create(net, { inputShape: MNIST });
    parking = await InferenceSession.create(net, { inputShape: MNIST, allowSpinning: false });
    testHooks().setPollWindow(60_000_000);
  });

  afterAll(async () => {
    testHooks().setPollWindow(0);
    // A run that does not allow spinning sends the threads still in their minute-long window to sleep.
    await parking.run({ input: new Tensor('float32', images.slice(), [BATCH, ...MNIST]) });
    spinning.release();
    parking.release();
    native.setNumThreads(poolThreads);
  });

  const run = async (session: InferenceSession) => {
    const out = await session.run({ input: new Tensor('float32', images.slice(), [BATCH, ...MNIST]) });
    return Object.values(out)[0].data as Float32Array;
  };

  it('a spinning session leaves its runner and helpers polling; a parking one leaves them asleep; same bits', async () => {
    const hooks = testHooks();
    const a = await run(spinning);
    expect(await eventually(() => hooks.pollingThreads().pollingRunners === 1), 'a runner polls after a spinning run').toBe(true);
    expect(await eventually(() => hooks.pollingThreads().sleepingHelpers === 0), 'the helper polls after a spinning run').toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(hooks.pollingThreads(), 'still polling 20 ms later').toEqual({ pollingRunners: 1, sleepingHelpers: 0 });

    const b = await run(parking);
    expect(await eventually(() => hooks.pollingThreads().pollingRunners === 0), 'no runner polls after a parking run').toBe(true);
    expect(await eventually(() => hooks.pollingThreads().sleepingHelpers === 1), 'the helper sleeps after a parking run').toBe(true);
    expect(Buffer.from(b.buffer, b.byteOffset, b.byteLength).equals(Buffer.from(a.buffer, a.byteOffset, a.byteLength))).toBe(true);

    // Spinning again after a parked run: the next spinning run's threads poll.
    await run(spinning);
    expect(await eventually(() => hooks.pollingThreads().pollingRunners === 1 && hooks.pollingThreads().sleepingHelpers === 0)).toBe(true);
  });
});
