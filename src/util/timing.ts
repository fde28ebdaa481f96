/** Timing helpers for benchmarks (npm run bench, kiln bench): warm-up, then many runs; median and p99 in milliseconds. */

export interface Timing {
  runs: number;
  medianMs: number;
  p99Ms: number;
  meanMs: number;
  minMs: number;
}

export interface MeasureOptions {
  warmup?: number;
  minRuns?: number;
  /** Keep running until this much time has passed (and minRuns reached). */
  minMs?: number;
  maxRuns?: number;
}

function summarize(samples: number[]): Timing {
  const sorted = samples.slice().sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1) + 0.5))];
  return {
    runs: samples.length,
    medianMs: at(0.5),
    p99Ms: at(0.99),
    meanMs: samples.reduce((s, x) => s + x, 0) / samples.length,
    minMs: sorted[0],
  };
}

export async function measure(fn: () => unknown, options: MeasureOptions = {}): Promise<Timing> {
  const { warmup = 3, minRuns = 10, minMs = 500, maxRuns = 100_000 } = options;
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < maxRuns && (samples.length < minRuns || performance.now() - start < minMs)) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return summarize(samples);
}

/**
 * Times several functions (Kiln, onnxruntime-node, ...) in the same stretch of time so that machine
 * noise hits all alike: blocks of consecutive runs of each in turn (a a a a, b b b b, a a a a, ...),
 * each block about `blockMs` long (at least 3 runs), its first run not recorded. Runs of one function
 * back to back are what a service sees; strictly alternating single runs would instead time each
 * runtime just after the other evicted its weights from the caches (and, with 2 threads, while ORT's
 * spinning workers still hold the second core).
 */
export async function measureInterleaved(
  fns: readonly (() => unknown)[],
  options: MeasureOptions & { blockMs?: number } = {},
): Promise<Timing[]> {
  const { warmup = 3, minRuns = 10, minMs = 1000, maxRuns = 100_000, blockMs = 20 } = options;
  const perBlock: number[] = [];
  for (const fn of fns) {
    const t0 = performance.now();
    for (let i = 0; i < warmup; i++) await fn();
    const one = (performance.now() - t0) / Math.max(1, warmup);
    perBlock.push(Math.max(3, Math.min(1000, Math.ceil(blockMs / Math.max(one, 1e-3)))));
  }
  const samples = fns.map(() => [] as number[]);
  const start = performance.now();
  while (samples[0]!.length < maxRuns && (samples[0]!.length < minRuns || performance.now() - start < minMs)) {
    for (let f = 0; f < fns.length; f++) {
      await fns[f]!();
      for (let i = 1; i < perBlock[f]!; i++) {
        const t0 = performance.now();
        await fns[f]!();
        samples[f]!.push(performance.now() - t0);
      }
    }
  }
  return samples.map(summarize);
}

/** {@link measureInterleaved} of two functions. */
export async function measurePair(a: () => unknown, b: () => unknown, options: MeasureOptions & { blockMs?: number } = {}): Promise<[Timing, Timing]> {
  const [ta, tb] = await measureInterleaved([a, b], options);
  return [ta!, tb!];
}
