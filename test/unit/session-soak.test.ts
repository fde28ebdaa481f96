/**
 * Soak: 100,000 InferenceSession runs (small SeedCNN, fp32 and int8, with and without
 * micro-batching, batch sizes 1..16, 1..64 concurrent callers) in a child process with
 * --expose-gc (test/support/session-soak-child.ts); resident memory sampled after a full gc every
 * 5,000 runs, less the scratch arenas the sessions report holding (info().arenaBytesHeld: they grow
 * with the runs in flight at once, not with the number of runs), must stay within 5% of the highest
 * sample of warm-up (25,000 runs, once every session has run with every number of callers), plus
 * 16 MiB.
 *
 * Adaptive policies are pinned in the child, each of which otherwise moves RSS with no leak:
 * - V8's young generation (16 MiB semi-spaces): it steps RSS up once by up to ~40 MiB.
 * - glibc's mmap threshold, at 16 KiB (MALLOC_MMAP_THRESHOLD_). With the default, input copies
 *   and array-buffer stores (3-50 KB) come from the main heap; up to ~130 MiB of them, dead but
 *   not yet collected, pile up between two V8 collections, and once freed the heap cannot shrink
 *   past a live block at its top, so RSS sat 120 MiB higher or not depending on where that block
 *   fell (samples like 290, 419, 291 MiB; it failed CI once at 419 against a bound of 378). At
 *   16 KiB those blocks are mapped and unmapped on their own.
 * What remains without a leak moves by up to ~12 MiB (the log line shows the samples), while a
 * leaked input copy (3-50 KB) or job per run adds 200 MiB or more over the 75,000 runs measured,
 * and a leaked output (40-640 bytes) per run 3-45 MiB (the larger of those shows; the smallest
 * would hide in the slack).
 */
import { describe, expect, it } from 'vitest';

import { runTsChild, SANITIZER_CHILD_ENV, SANITIZER_SLACK_MIB } from '../support/run-ts-child.js';

describe('InferenceSession soak', () => {
  it('100,000 runs: RSS (less the arenas held) flat within 5% (+16 MiB) after warm-up; nothing left queued or in flight', async () => {
    const r = await runTsChild('test/support/session-soak-child.ts', ['100000'], 280_000, ['--min-semi-space-size=16', '--max-semi-space-size=16'], { MALLOC_MMAP_THRESHOLD_: '16384', ...SANITIZER_CHILD_ENV });
    expect({ status: r.status, signal: r.signal }, r.stderr).toEqual({ status: 0, signal: null });
    const out = r.json as { runs: number; batches: number; seconds: number; rss: number[]; warmSample: number; counters: { pending: number; queued: number }[] };
    console.log(`soak: ${out.runs} runs in ${out.seconds.toFixed(1)} s, ${out.batches} merged batches; RSS (MiB) ${out.rss.map((v) => v.toFixed(1)).join(' ')}`);
    expect(out.runs).toBe(100_000);
    expect(out.batches).toBeGreaterThan(0);
    expect(out.counters.every((c) => c.pending === 0 && c.queued === 0)).toBe(true);
    // The high-water mark of warm-up, not its last sample (a sample caught in a dip would make the
    // bound flaky). A leak still shows: it climbs past the mark.
    const warm = Math.max(...out.rss.slice(0, out.warmSample + 1));
    const after = out.rss.slice(out.warmSample + 1);
    expect(after.length).toBeGreaterThanOrEqual(12);
    expect(Math.max(...after)).toBeLessThanOrEqual(warm * 1.05 + 16 + SANITIZER_SLACK_MIB);
  }, 300_000);
});
