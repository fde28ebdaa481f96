/**
 * What the page shows, as plain JSON: the report computes it in Node (typed, testable) and embeds it
 * in the page, whose script only turns it into DOM nodes (textContent) and Chart.js charts. No
 * function or HTML string crosses into the page, so nothing from a record can run there.
 */

/** One series of a chart, in Chart.js's dataset shape (only the options the report uses). */
export interface DatasetSpec {
  label: string;
  /** Bar/category values (null: no value), or {x, y} points on a linear x axis. */
  data: (number | null)[] | { x: number; y: number }[];
  type?: 'line' | 'bar';
  yAxisID?: string;
  borderColor?: string;
  backgroundColor?: string;
  borderDash?: number[];
  borderWidth?: number;
  pointRadius?: number;
  fill?: boolean;
  tension?: number;
  order?: number;
}

/** A Chart.js configuration that survives JSON (no callbacks). */
export interface ChartSpec {
  type: 'line' | 'bar';
  data: { labels?: string[]; datasets: DatasetSpec[] };
  options: Record<string, unknown>;
}

interface CardBase {
  /** Stable id: the canvas or table gets `data-card="<id>"`, and charts `id="chart-<id>"`. */
  id: string;
  title: string;
  /** A line under the title: what is drawn and how to read it. */
  note?: string;
  /** Spans the whole row of the grid. */
  wide?: boolean;
}

export interface ChartCard extends CardBase {
  kind: 'chart';
  chart: ChartSpec;
}

export interface TableCard extends CardBase {
  kind: 'table';
  columns: string[];
  rows: string[][];
}

/** The confusion matrix: rows true class, columns predicted; shaded by share of the row. */
export interface HeatmapCard extends CardBase {
  kind: 'heatmap';
  labels: string[];
  counts: number[][];
}

export type Card = ChartCard | TableCard | HeatmapCard;

export interface Section {
  title: string;
  cards: Card[];
}

/** A headline figure of the run. `tone` colours it: within budget, over it, or neither. */
export interface Tile {
  label: string;
  value: string;
  detail?: string;
  tone?: 'good' | 'bad' | 'neutral';
}

export interface PageModel {
  title: string;
  /** Where and when the figures come from: Kiln version, CPU, ISA, seed, date... */
  facts: { label: string; value: string }[];
  tiles: Tile[];
  sections: Section[];
}
