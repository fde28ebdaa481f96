/**
 * Inline or async: every native kernel call takes a last argument `async` (see src/binding.ts);
 * false runs it on the JS thread, true hands it to one of the addon's own runner threads
 * (native/addon/runner.h) and returns a Promise. This is the one place that chooses, by the
 * estimated cost of the call, for the nn layers, the optimizers, the losses and InferenceSession.
 */
import { native } from '../binding.js';
import type { MaybePromise } from '../binding.js';

/**
 * Whether work of `flops` floating-point operations should leave the JS thread. A thread hop costs
 * ~45 us here (an empty async call round trip on this 2-core VM), as much as the whole of a small
 * run, so work stays inline while it is estimated under ~0.25 ms on one core of the active ISA
 * (far below the ~1 ms where blocking the event loop starts to hurt): 48 MFLOP on AVX-512 (SeedCNN
 * MNIST up to batch 8), 16 on AVX2, 2 on the scalar path.
 */
export function shouldRunAsync(flops: number): boolean {
  return flops > inlineBudgetFlops();
}

let inlineBudget: number | undefined;

/** FLOPs of work that may run inline, for the ISA in use (read once; setIsa calls forgetActiveIsa). */
export function inlineBudgetFlops(): number {
  if (inlineBudget === undefined) {
    const isa = native.cpuInfo().isa;
    inlineBudget = isa === 'scalar' ? 2e6 : isa === 'avx2' ? 1.6e7 : 4.8e7;
  }
  return inlineBudget;
}

/** Drops what was derived from the active ISA (after native.setIsa). */
export function forgetActiveIsa(): void {
  inlineBudget = undefined;
}

/** Runs a native call and always returns a Promise, choosing inline or a runner thread by cost. */
export async function call<A>(fn: (args: A, async: boolean) => MaybePromise, args: A, flops: number): Promise<void> {
  const r = fn(args, shouldRunAsync(flops));
  if (r) await r;
}
