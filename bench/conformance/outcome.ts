/**
 * What one node test came to, and how a thrown error is classified.
 */

/** The five ways a test can end. */
export const CATEGORIES = ['pass', 'fail', 'error', 'unsupported', 'crash'] as const;
export type Category = (typeof CATEGORIES)[number];

/** The outcome of one test, as the worker reports it (crash outcomes are made by the pool). */
export interface TestOutcome {
  category: Category;
  /**
   * Why it did not pass: the refusal's reason (unsupported), `code: message` (error), the first
   * mismatch (fail), or the exit signal/code, timeout and stderr tail (crash).
   */
  message?: string;
  /** Largest |actual - expected| over every compared output (tests that ran only). */
  maxAbsError?: number;
}

/** The error code a Kiln refusal carries. */
export const UNSUPPORTED_CODE = 'ERR_KILN_UNSUPPORTED_OP';

/** Longest message kept per test (some refusals list every node of a large graph). */
const MAX_MESSAGE = 600;

export function clip(text: string, max = MAX_MESSAGE): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, max - 1)}…`;
}

/**
 * A thrown value as an outcome: a Kiln refusal (ERR_KILN_UNSUPPORTED_OP) is 'unsupported' with its
 * reason, anything else is an 'error' with its code (or its class name when it has none).
 */
export function outcomeOfError(err: unknown): TestOutcome {
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (code === UNSUPPORTED_CODE) return { category: 'unsupported', message: clip(message) };
  const label = typeof code === 'string' ? code : err instanceof Error ? err.name : typeof err;
  return { category: 'error', message: clip(`${label}: ${message}`) };
}
