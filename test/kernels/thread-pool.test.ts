import { describe, expect, it } from 'vitest';

import { native, testHooks } from '../../src/binding.js';

describe('thread pool: parallel_for_slots', () => {
  it('runs every task once, on a slot below the thread count, whatever the count', () => {
    const threads = native.cpuInfo().threads;
    try {
      for (const poolSize of [1, 2, 3, 4]) {
        native.setNumThreads(poolSize);
        for (const [tasks, maxThreads] of [[0, 0], [1, 0], [2, 0], [7, 0], [64, 0], [64, 2], [13, 1], [5, 3], [200, 0]]) {
          const { slots, runs } = testHooks().threadPoolSlotsProbe(tasks, maxThreads);
          const limit = Math.min(poolSize, maxThreads === 0 ? poolSize : maxThreads);
          const label = `pool ${poolSize}, ${tasks} tasks, maxThreads ${maxThreads}`;
          expect(Array.from(runs), label).toEqual(new Array(tasks).fill(1));
          for (const s of slots) {
            expect(s, label).toBeGreaterThanOrEqual(0);
            expect(s, label).toBeLessThan(limit);
          }
        }
      }
    } finally {
      native.setNumThreads(threads);
    }
  });

  it('refuses bad counts', () => {
    expect(() => testHooks().threadPoolSlotsProbe(-1, 0)).toThrow(RangeError);
    expect(() => testHooks().threadPoolSlotsProbe(3, 1.5)).toThrow();
  });
});
