/** How the report writes numbers: one place, so the header, the tables and the chart notes agree. */

/** A fraction as a percentage: 0.98765 -> "98.77%". */
export function pct(fraction: number, digits = 2): string {
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** A fraction as percentage points: 0.003 -> "0.30 pt" (an accuracy drop; negative is a gain). */
export function points(fraction: number): string {
  return `${(fraction * 100).toFixed(2)} pt`;
}

/** A ratio: 4.123 -> "4.12x". */
export function times(ratio: number): string {
  return `${ratio.toFixed(ratio >= 10 ? 1 : 2)}x`;
}

/** Bytes in B / KB / MB (powers of 1024). */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(2)} MB`;
}

/** A large count with a unit suffix: 2345678 -> "2.35 M". */
export function count(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** Milliseconds with a precision that suits their size. */
export function ms(value: number): string {
  return `${value < 1 ? value.toFixed(3) : value < 100 ? value.toFixed(2) : value.toFixed(0)} ms`;
}

/** Seconds as "42 s" or "3 min 20 s". */
export function duration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}

/** An ISO time as "2026-12-03 08:51 UTC"; anything unparsable as given. */
export function date(iso: string): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** A stage's settings for one try, short: "sparsity 0.8, epochs 2" (nested values as JSON). */
export function settings(values: Record<string, unknown>): string {
  const parts = Object.entries(values).map(([key, value]) => `${key} ${typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value)}`);
  const text = parts.join(', ');
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
