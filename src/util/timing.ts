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
 * Times two functions in alternation (a, b, a, b, ...) so that machine noise hits both equally.
 */
export async function measurePair(a: () => unknown, b: () => unknown, options: MeasureOptions = {}): Promise<[Timing, Timing]> {
  const { warmup = 3, minRuns = 10, minMs = 1000, maxRuns = 100_000 } = options;
  for (let i = 0; i < warmup; i++) {
    await a();
    await b();
  }
  const sa: number[] = [];
  const sb: number[] = [];
  const start = performance.now();
  while (sa.length < maxRuns && (sa.length < minRuns || performance.now() - start < minMs)) {
    let t0 = performance.now();
    await a();
    sa.push(performance.now() - t0);
    t0 = performance.now();
    await b();
    sb.push(performance.now() - t0);
  }
  return [summarize(sa), summarize(sb)];
}
