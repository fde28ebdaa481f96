/**
 * Colours and axis options shared by the charts, so that Kiln is the same blue and ONNX Runtime the
 * same orange on every chart, and a backed-off try is the same dashed grey.
 */

export const KILN = '#2563eb';
export const ORT = '#f97316';
export const LOSS = '#dc2626';
export const BUDGET = '#16a34a';
export const REJECTED = '#9ca3af';

/** Distinct colours for one line per layer (Tableau 10). */
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

export function paletteColor(i: number): string {
  return PALETTE[i % PALETTE.length];
}

/** A colour with alpha, for bar fills: '#2563eb' -> 'rgba(37, 99, 235, 0.7)'. */
export function fill(hex: string, alpha = 0.7): string {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/** An axis with a title; extra Chart.js scale options merged over it. */
export function axis(title: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { title: { display: true, text: title }, ...extra };
}

/** Options every chart shares: a legend at the bottom, tooltips on the x position. */
export function baseOptions(scales: Record<string, unknown>): Record<string, unknown> {
  return {
    interaction: { mode: 'nearest', intersect: false },
    plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
    scales,
  };
}
