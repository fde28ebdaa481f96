/**
 * Cost estimates of memory-bound kernels for `call()`'s inline-or-async choice
 * (src/runtime/async-policy.ts; its threshold is in flops). One pass over n floats counts as
 * PASS_COST * n flops: measured on the 2-core build machine, ReLU and pooling over 1.4M floats
 * take 0.3-3 ms, so they must leave the event loop, while the small late layers (0.5M floats and
 * less) stay inline.
 */
export const PASS_COST = 8;

/** Flop-equivalent of `passes` passes over `elements` floats. */
export function passCost(elements: number, passes = 1): number {
  return PASS_COST * elements * passes;
}
