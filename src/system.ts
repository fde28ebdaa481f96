/**
 * Runtime state of the native side: which instruction set the kernels use, and how many threads.
 */
import { availableParallelism } from 'node:os';

import { native } from './binding.js';
import { forgetActiveIsa } from './runtime/async-policy.js';
import { integer, oneOf } from './validate.js';

/** Instruction-set paths the kernels can take. */
export type Isa = 'scalar' | 'avx2' | 'avx512' | 'avx512vnni';
export const ISAS: readonly Isa[] = ['scalar', 'avx2', 'avx512', 'avx512vnni'];

export interface CpuInfo {
  /** CPU vendor string, e.g. 'AuthenticAMD'. */
  vendor: string;
  /** CPU brand string. */
  brand: string;
  /** The ISA the kernels run on now. */
  isa: Isa;
  /** The best ISA this CPU supports. */
  bestIsa: Isa;
  /** Every ISA this CPU can run, lowest first. */
  supportedIsas: Isa[];
  /** Raw feature flags (after OS-support checks). */
  features: Record<string, boolean>;
  /** Threads the kernel pool uses. */
  threads: number;
  /**
   * One core's L2 cache in bytes, as CPUID reports it (1 MiB where it does not). Kernel choices
   * that depend on what stays in cache (Winograd bands, GEMM blocking) read it, so a plan's
   * kernels can differ between CPUs with different L2 sizes.
   */
  l2CacheBytes: number;
  /** Why a `KILN_ISA` value was ignored, if it was. */
  isaOverrideError?: string;
}

/** What Kiln detected and chose. `KILN_ISA=scalar|avx2|avx512|avx512vnni` forces a lower path. */
export function cpuInfo(): CpuInfo {
  const info = native.cpuInfo();
  return {
    vendor: info.vendor,
    brand: info.brand,
    isa: info.isa as Isa,
    bestIsa: info.bestIsa as Isa,
    supportedIsas: info.supportedIsas as Isa[],
    features: info.features,
    threads: info.threads,
    l2CacheBytes: info.l2CacheBytes,
    ...(info.isaOverrideError ? { isaOverrideError: info.isaOverrideError } : {}),
  };
}

/**
 * Switches every kernel to `isa` (for tests and A/B measurements; `KILN_ISA` does the same at start).
 * Throws a RangeError when this CPU lacks it. Safe while runs are in flight: a step that has started
 * finishes on the kernels it started with, and later steps use the new ones.
 */
export function setIsa(isa: Isa): void {
  native.setIsa(oneOf('isa', isa, ISAS));
  forgetActiveIsa();
}

/**
 * Sets the kernel thread pool size (0 = number of hardware threads). More threads than
 * `os.availableParallelism()` only contend (1,000 on 2 cores ran 4x slower): allowed, with a
 * process warning (code KILN_THREADS_OVERSUBSCRIBED). The `kiln` CLI lowers such a value instead.
 */
export function setNumThreads(threads: number): void {
  const n = integer('threads', threads, 0, 1024);
  const most = availableParallelism();
  if (n > most) {
    process.emitWarning(
      `setNumThreads(${n}) starts more kernel threads than the ${most} hardware threads of this machine (os.availableParallelism()): they contend and run slower`,
      { code: 'KILN_THREADS_OVERSUBSCRIBED' },
    );
  }
  native.setNumThreads(n);
}

/** Single-core peaks of the kernels this CPU runs now (see {@link measureCorePeaks}). */
export interface CorePeaks {
  /** fp32 FMA peak of the active ISA, GFLOP/s (an FMA lane counts 2). */
  f32Gflops: number;
  /** int8 multiply-add peak of the active int8 kernel family (VNNI, AVX2, ...), GOP/s (a multiply-add counts 2). */
  int8Gops: number;
}

/** The best of `windows` readings of the active ISA's single-core fp32 FMA peak, each `milliseconds` long, GFLOP/s. */
export function bestF32PeakGflops(windows: number, milliseconds: number): number {
  let best = 0;
  for (let i = 0; i < windows; i++) best = Math.max(best, native.measureF32Peak(milliseconds));
  return best;
}

/**
 * The best of `windows` 2 ms readings of the active int8 kernel family's single-core multiply-add
 * peak, GMAC/s: short windows, since on a shared machine a long one is likely to include time the
 * thread spent descheduled, which reads as a lower peak.
 */
export function bestS8PeakGmacs(windows: number): number {
  let best = 0;
  for (let i = 0; i < windows; i++) best = Math.max(best, native.measureS8Peak(2));
  return best;
}

/**
 * Measures {@link CorePeaks} on the calling thread, blocking it for about 0.35 s (CLI and benchmarks
 * only): fp32 the best of 3 windows of 100 ms, int8 of 25 of 2 ms.
 */
export function measureCorePeaks(): CorePeaks {
  return { f32Gflops: bestF32PeakGflops(3, 100), int8Gops: 2 * bestS8PeakGmacs(25) };
}

/**
 * Gives the C library's free heap pages back to the operating system (glibc's malloc_trim; false
 * where none were given back, or on another C library). kiln serve calls it once its model has
 * loaded. Takes milliseconds, on the calling thread.
 * @internal
 */
export function releaseFreeHeap(): boolean {
  return native.releaseFreeHeap();
}

