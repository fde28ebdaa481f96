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

/** Options of {@link measureInterleaved}. */
export interface InterleavedOptions extends MeasureOptions {
  /** Length of a block of back-to-back runs of one function, in ms (default 20). */
  blockMs?: number;
  /**
   * Before each block, wait (at most this many ms, default 200) until this process's threads have
   * gone idle: a runtime whose workers keep spinning after its block (onnxruntime-node's default
   * intra-op pool spins for ~25-30 ms after its last run here, holding 0.8-1.5 of the 2 cores) would
   * otherwise run inside the next function's block. 0 disables the wait.
   */
  settleMs?: number;
}

/**
 * Times several functions (Kiln, onnxruntime-node, ...) in the same stretch of time so that machine
 * noise hits all alike: blocks of consecutive runs of each in turn (a a a a, b b b b, a a a a, ...),
 * each block about `blockMs` long (at least 3 runs), its first run not recorded. Runs of one function
 * back to back are what a service sees; strictly alternating single runs would instead time each
 * runtime just after the other evicted its weights from the caches. Before each block the process
 * waits for the previous block's threads to go idle (`settleMs`), so each function runs as it would
 * in a service that hosts only it, with ITS OWN settings (ORT keeps its default spinning).
 */
export async function measureInterleaved(
  fns: readonly (() => unknown)[],
  options: InterleavedOptions = {},
): Promise<Timing[]> {
  const { warmup = 3, minRuns = 10, minMs = 1000, maxRuns = 100_000, blockMs = 20, settleMs = 200 } = options;
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
      if (settleMs > 0) await waitForIdleThreads(settleMs);
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
export async function measurePair(a: () => unknown, b: () => unknown, options: InterleavedOptions = {}): Promise<[Timing, Timing]> {
  const [ta, tb] = await measureInterleaved([a, b], options);
  return [ta!, tb!];
}

/** CPU time this process may use in a quiet window and still count as idle (fraction of one core). */
const IDLE_CORES = 0.1;
/**
 * Length of a quiet window. The kernel adds a thread's run time to the process's total when the
 * thread is switched out or at a scheduler tick (every 4 ms at Linux's usual HZ=250), so a window
 * shorter than a tick can read zero while another thread spins on the other core: with 2 ms windows
 * onnxruntime's worker was judged idle and then spun through ~25 ms of Kiln's block.
 */
const IDLE_WINDOW_MS = 10;

/**
 * Sleeps in short windows until one passes in which this process used under {@link IDLE_CORES} of
 * a core (its background threads stopped spinning), or `maxMs` has passed. Resolves with the time
 * waited, in ms. `cpuUsage` is process.cpuUsage (replaceable in tests).
 */
export async function waitForIdleThreads(maxMs: number, cpuUsage: typeof process.cpuUsage = process.cpuUsage): Promise<number> {
  const start = performance.now();
  for (;;) {
    const cpu0 = cpuUsage();
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, IDLE_WINDOW_MS));
    const cpu = cpuUsage(cpu0);
    const now = performance.now();
    const busyCores = (cpu.user + cpu.system) / 1000 / Math.max(now - t0, 1e-3);
    if (busyCores < IDLE_CORES || now - start >= maxMs) return now - start;
  }
}
