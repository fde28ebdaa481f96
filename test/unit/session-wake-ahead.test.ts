/**
 * An async plan run wakes the JS thread ahead of its end (native/addon/job.h, wake_js_ahead): the
 * JS thread then waits for the end and settles the run, or gives up after a while and is woken
 * again at the end. Either way every caller gets its own run's outputs, bit for bit those of a
 * run on the JS thread; the addon's counters show which path the runs took.
 */
import { describe, expect, it } from 'vitest';

import { testHooks } from '../../src/binding.js';
import { seedCNN } from '../../src/nn/models.js';
import { quantize } from '../../src/quant/ptq.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';

const SHAPE = [1, 28, 28];
const BATCH = 64; // ~1 ms of int8 work: a run leaves the JS thread

function images(count: number, seed: number): Tensor<'float32'> {
  const rng = new Rng(seed);
  return new Tensor('float32', Float32Array.from({ length: count * 784 }, () => rng.uniform(0, 1)), [count, ...SHAPE]);
}

const same = (a: Float32Array, b: Float32Array): boolean => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

describe('a run wakes the JS thread ahead of its end', async () => {
  const net = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, padding: 1, seed: 9 }).eval();
  const { graph } = await quantize(net, images(16, 1), { reportImages: 0 });
  const inputs = [0, 1, 2, 3].map((i) => images(BATCH, 10 + i));

  /** Runs `count` runs (up to `inFlight` at once) and checks each against a run on the JS thread. */
  async function runsMatch(session: InferenceSession, count: number, inFlight: number): Promise<number> {
    const want = inputs.map((x) => session.runSync({ input: x })['logits']!.data as Float32Array);
    let mismatches = 0;
    for (let i = 0; i < count; i += inFlight) {
      const ks = Array.from({ length: Math.min(inFlight, count - i) }, (_, j) => (i + j) % inputs.length);
      const outs = await Promise.all(ks.map((k) => session.run({ input: inputs[k]! })));
      outs.forEach((o, j) => {
        if (!same(o['logits']!.data as Float32Array, want[ks[j]!]!)) mismatches++;
      });
    }
    return mismatches;
  }

  it('predicted from the last runs: most runs wake it ahead, it rarely gives up, and every run gets its own logits', async () => {
    const session = await InferenceSession.create(graph, { intraOpNumThreads: 1 });
    const hooks = testHooks();
    await runsMatch(session, 8, 1); // the first runs time the plan and the JS thread's wake-up
    const before = hooks.wakeAhead();
    const runs = 120;
    expect(await runsMatch(session, runs, 1)).toBe(0);
    const after = hooks.wakeAhead();
    expect(after.leadNs, 'lead').toBeGreaterThan(0);
    // Every run of this plan ends with small steps after its big convolution: one of them signals.
    expect(after.signalled - before.signalled, 'runs that woke the JS thread ahead').toBeGreaterThan(runs / 2);
    expect(after.abandoned - before.abandoned, 'waits given up').toBeLessThan(runs / 4);
    session.release();
  }, 60_000);

  it('woken at the first step, it waits, gives up, and is woken again at the end: runs one at a time or 16 in flight on 2 runners', async () => {
    const session = await InferenceSession.create(graph, { intraOpNumThreads: 1 });
    const hooks = testHooks();
    hooks.forceWakeAheadAtFirstStep(true);
    try {
      const before = hooks.wakeAhead();
      expect(await runsMatch(session, 40, 1)).toBe(0);
      const mid = hooks.wakeAhead();
      expect(mid.signalled - before.signalled, 'signalled').toBe(40);
      // Runs of ~1 ms outlast the JS thread's longest wait (150 us): it gives up on most of them.
      expect(mid.abandoned - before.abandoned, 'given up').toBeGreaterThan(20);
      expect(await runsMatch(session, 64, 16)).toBe(0);
      expect(hooks.wakeAhead().signalled - mid.signalled, 'signalled, in flight').toBe(64);
    } finally {
      hooks.forceWakeAheadAtFirstStep(false);
    }
    session.release();
  }, 60_000);

  it('a run on the JS thread (small batch) wakes nobody', async () => {
    const session = await InferenceSession.create(graph, { intraOpNumThreads: 1 });
    const hooks = testHooks();
    hooks.forceWakeAheadAtFirstStep(true);
    try {
      const before = hooks.wakeAhead();
      const x = images(1, 3);
      const a = await session.run({ input: x });
      expect(same(a['logits']!.data as Float32Array, session.runSync({ input: x })['logits']!.data as Float32Array)).toBe(true);
      expect(hooks.wakeAhead().signalled - before.signalled).toBe(0);
    } finally {
      hooks.forceWakeAheadAtFirstStep(false);
    }
    session.release();
  });
});
