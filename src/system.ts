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
