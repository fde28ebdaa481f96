/**
 * Which kernel a session runs each node on, read from its plan's step texts ("<op> <node>: ...
 * sparse <pattern> <n>%"): `kiln info`'s kernel column and the compression record's per-layer kernel.
 */
import type { InferenceSession } from './session.js';

/** Node name -> the session's step text for it. */
export function stepTexts(session: InferenceSession): Map<string, string> {
  const steps = new Map<string, string>();
  for (const text of session.info().steps) {
    const m = /^\S+ (\S+): /.exec(text);
    if (m) steps.set(m[1], text);
  }
  return steps;
}

/** The kernel a step text names: its "sparse ..." part, else dense (int8 for quantized ops). */
export function kernelOf(op: string, step: string): string {
  const sparse = /\bsparse (.+)$/.exec(step);
  if (sparse) return `sparse ${sparse[1]}`;
  return /^(Q|Dynamic|.*Integer$)/.test(op) ? 'int8 dense' : 'dense';
}
