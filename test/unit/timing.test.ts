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

  it('keeps waiting while the process burns CPU, and stops at the first quiet window', async () => {
    // A fake process.cpuUsage: `busy` windows at one full core each, then idle. (A real spinning
    // thread cannot make this test reliable: on a loaded 2-core machine it may get no CPU for a
    // whole window.)
    const fake = (busy: number): typeof process.cpuUsage => {
      let windows = 0;
      let t0 = 0;
      return ((previous?: NodeJS.CpuUsage) => {
        if (!previous) {
          t0 = performance.now();
          return { user: 0, system: 0 };
        }
        const us = windows++ < busy ? (performance.now() - t0) * 1000 : 0;
        return { user: us, system: 0 };
      }) as typeof process.cpuUsage;
    };
    const always = await waitForIdleThreads(30, fake(Infinity));
    expect(always).toBeGreaterThanOrEqual(30);
    let calls = 0;
    const counting = fake(3);
    const three = await waitForIdleThreads(10_000, ((p?: NodeJS.CpuUsage) => {
      if (p) calls++;
      return counting(p);
    }) as typeof process.cpuUsage);
    expect(calls).toBe(4);
    expect(three).toBeLessThan(10_000);
  });
});
