/** Collects benchmark tables and writes them as JSON and Markdown under bench/results/. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Table {
  title: string;
  /** What each ratio is measured against. */
  baseline: string;
  columns: string[];
  rows: (string | number)[][];
  notes?: string[];
}

export class Report {
  readonly tables: Table[] = [];
  constructor(readonly environment: Record<string, unknown>) {}

  add(table: Table): void {
    this.tables.push(table);
    process.stdout.write(`\n${renderTable(table)}\n`);
  }

  async write(dir: string, name = 'latest'): Promise<{ json: string; markdown: string }> {
    await mkdir(dir, { recursive: true });
    const json = join(dir, `${name}.json`);
    const markdown = join(dir, `${name}.md`);
    await writeFile(json, `${JSON.stringify({ environment: this.environment, tables: this.tables }, null, 2)}\n`);
    const env = Object.entries(this.environment)
      .map(([k, v]) => `- ${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
      .join('\n');
    await writeFile(markdown, `# Kiln benchmarks\n\n${env}\n\n${this.tables.map(renderTable).join('\n\n')}\n`);
    return { json, markdown };
  }
}

function cell(v: string | number): string {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v)) return v.toLocaleString('en-US');
    if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
    if (Math.abs(v) >= 10) return v.toFixed(1);
    return v.toFixed(3);
  }
  return v;
}

export function renderTable(t: Table): string {
  const head = `| ${t.columns.join(' | ')} |`;
  const sep = `| ${t.columns.map(() => '---').join(' | ')} |`;
  const body = t.rows.map((r) => `| ${r.map(cell).join(' | ')} |`).join('\n');
  const notes = (t.notes ?? []).map((n) => `\n_${n}_`).join('');
  return `## ${t.title}\n\nBaseline: ${t.baseline}\n\n${head}\n${sep}\n${body}\n${notes}`;
}
