import { Worker } from 'node:worker_threads';

import { describe, expect, it } from 'vitest';

import { measureInterleaved, measurePair, waitForIdleThreads } from '../../src/util/timing.js';

describe('measureInterleaved', () => {
  it('runs each function in blocks, records all but the first run of each block, and reaches minRuns', async () => {
    const calls = [0, 0];
    const order: number[] = [];
    const fns = [0, 1].map((f) => () => {
      calls[f]++;
      order.push(f);
    });
    const [a, b] = await measureInterleaved(fns, { warmup: 2, minRuns: 12, minMs: 0, blockMs: 1e9 });
    // blockMs far above a run's cost: the block length is capped at 1000 runs, so one block each.
    expect(a!.runs).toBe(999);
    expect(b!.runs).toBe(999);
    expect(calls).toEqual([2 + 1000, 2 + 1000]);
    // Warm-up of each, then a's block, then b's block: never interleaved run by run.
    const firstB = order.indexOf(1, 2);
    expect(order.slice(4, 4 + 1000).every((f) => f === 0)).toBe(true);
    expect(firstB).toBe(2);
  });

  it('keeps going block after block until minRuns runs of the first function are recorded', async () => {
    let calls = 0;
    const [t] = await measureInterleaved([() => void calls++], { warmup: 1, minRuns: 10, minMs: 0, blockMs: 0 });
    // blockMs 0: blocks of 3 runs, 2 recorded each; 5 blocks reach 10.
    expect(t!.runs).toBe(10);
    expect(calls).toBe(1 + 15);
    expect(t!.minMs).toBeLessThanOrEqual(t!.medianMs);
    expect(t!.medianMs).toBeLessThanOrEqual(t!.p99Ms);
  });

  it('measurePair orders a slower function after a faster one', async () => {
    const spin = (ms: number) => () => {
      const end = performance.now() + ms;
      while (performance.now() < end);
    };
    const [fast, slow] = await measurePair(spin(0.05), spin(2), { warmup: 1, minRuns: 5, minMs: 0, blockMs: 5 });
    expect(slow.medianMs).toBeGreaterThan(fast.medianMs);
  });
});

describe('waitForIdleThreads', () => {
  it('returns before its limit when the process is idle', async () => {
    const waited = await waitForIdleThreads(5000);
    expect(waited).toBeLessThan(5000);
  });

  it('keeps waiting while another thread of the process burns CPU', async () => {
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(
      'const { workerData } = require("node:worker_threads"); const f = new Int32Array(workerData); while (Atomics.load(f, 0) === 0);',
      { eval: true, workerData: stop.buffer },
    );
    try {
      await new Promise((resolve) => worker.once('online', resolve));
      // A spinning thread shows as busy in every 2 ms window it gets the CPU; on a loaded machine it
      // may miss one, so one full wait out of three attempts is the claim.
      const waits: number[] = [];
      for (let i = 0; i < 3 && !waits.some((w) => w >= 40); i++) waits.push(await waitForIdleThreads(40));
      expect(Math.max(...waits)).toBeGreaterThanOrEqual(40);
    } finally {
      Atomics.store(stop, 0, 1);
      await worker.terminate();
    }
  });
});
