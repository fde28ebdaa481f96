/**
 * The conformance report: bench/results/conformance.json (every test) and conformance.md (counts,
 * the per-operator table, the acceptance subset, the top refusal reasons, the fails and crashes).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { CATEGORIES, type Category, type TestOutcome } from './outcome.js';
import { ACCEPTANCE_OPS, inAcceptanceSubset } from './subset.js';

/** One test's line in the report. */
export interface TestRecord extends TestOutcome {
  name: string;
  op: string;
}

/** Tests per category. */
export type Counts = Record<Category, number> & { tests: number };

/** Where and on what the run was made. */
export interface RunInfo {
  date: string;
  kilnCommit?: string;
  onnxDir: string;
  filter?: string;
  jobs: number;
  timeoutMs: number;
  seconds: number;
}

export function emptyCounts(): Counts {
  return { tests: 0, pass: 0, fail: 0, error: 0, unsupported: 0, crash: 0 };
}

export function countOutcomes(records: readonly TestRecord[]): Counts {
  const counts = emptyCounts();
  for (const r of records) {
    counts.tests++;
    counts[r.category]++;
  }
  return counts;
}

/** Counts per operator, operators in name order. */
export function countsByOp(records: readonly TestRecord[]): [string, Counts][] {
  const byOp = new Map<string, TestRecord[]>();
  for (const r of records) byOp.set(r.op, [...(byOp.get(r.op) ?? []), r]);
  return [...byOp].sort(([a], [b]) => a.localeCompare(b)).map(([op, rs]) => [op, countOutcomes(rs)]);
}

/**
 * A message with what varies between tests taken out (quoted names, numbers), so refusals of the
 * same kind group together.
 */
export function reasonPattern(message: string): string {
  // Whole numbers only: 'int16' and 'float32' stay as they are.
  return message.replace(/'[^']*'/g, "'…'").replace(/\b\d+(\.\d+)?\b/g, 'N');
}

/** The most frequent message patterns of one category, most frequent first. */
export function topReasons(records: readonly TestRecord[], category: Category, limit: number): { reason: string; tests: number; example: string }[] {
  const groups = new Map<string, { tests: number; example: string }>();
  for (const r of records) {
    if (r.category !== category) continue;
    const key = reasonPattern(r.message ?? '(no message)');
    const g = groups.get(key) ?? { tests: 0, example: r.name };
    g.tests++;
    groups.set(key, g);
  }
  return [...groups].sort((a, b) => b[1].tests - a[1].tests).slice(0, limit).map(([reason, g]) => ({ reason, ...g }));
}

function percent(part: number, whole: number): string {
  return whole === 0 ? '-' : `${((100 * part) / whole).toFixed(1)}%`;
}

function countsRow(label: string, c: Counts): string {
  return `| ${label} | ${c.tests} | ${c.pass} | ${c.fail} | ${c.error} | ${c.unsupported} | ${c.crash} | ${percent(c.pass, c.tests)} |`;
}

const COUNTS_HEADER = ['| | tests | pass | fail | error | unsupported | crash | pass rate |', '|---|---:|---:|---:|---:|---:|---:|---:|'];

/** Markdown table of counts per operator (op, tests, pass, fail, error, unsupported, crash). */
export function opTable(records: readonly TestRecord[], markSubset: boolean): string[] {
  const lines = ['| op | tests | pass | fail | error | unsupported | crash |', '|---|---:|---:|---:|---:|---:|---:|'];
  for (const [op, c] of countsByOp(records)) {
    const label = markSubset && inAcceptanceSubset(op) ? `${op} \\*` : op;
    lines.push(`| ${label} | ${c.tests} | ${c.pass} | ${c.fail} | ${c.error} | ${c.unsupported} | ${c.crash} |`);
  }
  return lines;
}

/**
 * The per-operator counts `columns` operators to a row (op, tests, pass, fail, error,
 * unsupported, crash each), for the README where a long one-column table would not fit.
 */
export function compactOpTable(records: readonly TestRecord[], columns = 2): string[] {
  const cells = countsByOp(records).map(([op, c]) => `${op} | ${c.tests} | ${c.pass} | ${c.fail} | ${c.error} | ${c.unsupported} | ${c.crash}`);
  const header = Array.from({ length: columns }, () => 'op | tests | pass | fail | error | unsup. | crash');
  const lines = [`| ${header.join(' | ')} |`, `|${Array.from({ length: columns }, () => '---|---:|---:|---:|---:|---:|---:|').join('')}`];
  const rows = Math.ceil(cells.length / columns);
  // Column-major, so the operators read down each column in name order.
  for (let r = 0; r < rows; r++) {
    const row = Array.from({ length: columns }, (_, c) => cells[c * rows + r] ?? ' | | | | | |');
    lines.push(`| ${row.join(' | ')} |`);
  }
  return lines;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The whole Markdown report. */
export function markdownReport(records: readonly TestRecord[], info: RunInfo): string {
  const subset = records.filter((r) => inAcceptanceSubset(r.op));
  const all = countOutcomes(records);
  const sub = countOutcomes(subset);
  const lines = [
    '# ONNX backend node tests on Kiln',
    '',
    `Run ${info.date}${info.kilnCommit ? ` on Kiln ${info.kilnCommit}` : ''}, tests from \`${info.onnxDir}\`` +
      `${info.filter ? ` (filter \`${info.filter}\`)` : ''}, ${info.jobs} worker(s), ${info.timeoutMs / 1000} s per test, ${info.seconds.toFixed(0)} s in all.`,
    'Each test runs through `InferenceSession` in a worker process; outputs compare with ONNX\'s tolerance',
    '(|actual - expected| <= 1e-7 + 1e-3 |expected|, NaN equal to NaN; integer and bool outputs exact; shapes equal).',
    'pass: every output of every data set matches; fail: ran but an output is off (numbers or shape);',
    'error: threw something other than a refusal; unsupported: Kiln refused with ERR_KILN_UNSUPPORTED_OP;',
    'crash: the worker died or overran the timeout.',
    '',
    ...COUNTS_HEADER,
    countsRow('whole suite', all),
    countsRow('acceptance subset', sub),
    '',
    `The acceptance subset (issue 14) holds the ${subset.length} tests, \`_expanded\` variants included, of the ${ACCEPTANCE_OPS.size} operators`,
    `Kiln supported when the issue was written or the issue names (bench/conformance/subset.ts): ${[...ACCEPTANCE_OPS].sort().join(', ')}.`,
    '',
    '## Fails and crashes',
    '',
  ];
  const broken = records.filter((r) => r.category === 'fail' || r.category === 'crash');
  if (broken.length === 0) lines.push('None.');
  else {
    lines.push('| test | op | category | detail |', '|---|---|---|---|');
    for (const r of broken) lines.push(`| ${r.name} | ${r.op} | ${r.category} | ${escapeCell(r.message ?? '')} |`);
  }
  const reasonSections = [
    [subset, 'unsupported', 'Top refusal reasons in the acceptance subset'],
    [subset, 'error', 'Errors in the acceptance subset'],
    [records, 'unsupported', 'Top refusal reasons, whole suite'],
    [records, 'error', 'Errors, whole suite'],
  ] as const;
  for (const [which, category, title] of reasonSections) {
    lines.push('', `## ${title} (${category})`, '', 'Quoted names and whole numbers are shown as \'…\' and N.', '', '| tests | reason | e.g. |', '|---:|---|---|');
    for (const t of topReasons(which, category, 20)) lines.push(`| ${t.tests} | ${escapeCell(t.reason)} | ${t.example} |`);
  }
  lines.push('', '## Acceptance subset per operator', '', ...compactOpTable(subset, 2));
  lines.push('', '## Per operator, whole suite', '', 'Operators of the acceptance subset are marked \\*.', '', ...opTable(records, true), '');
  return lines.join('\n');
}

/** Writes conformance.json and conformance.md under `dir`; returns their paths. */
export function writeReport(dir: string, records: readonly TestRecord[], info: RunInfo, name = 'conformance'): { json: string; markdown: string } {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, `${name}.json`);
  const markdown = join(dir, `${name}.md`);
  const subset = records.filter((r) => inAcceptanceSubset(r.op));
  const body = {
    ...info,
    counts: countOutcomes(records),
    acceptanceSubset: { ops: [...ACCEPTANCE_OPS].sort(), counts: countOutcomes(subset) },
  };
  // JSON has no Infinity (a shape mismatch's error): written as the string.
  const text = (value: unknown, indent?: number): string => JSON.stringify(value, (_, v) => (v === Infinity ? 'Infinity' : v), indent);
  const tests = records.map((r) =>
    text({ name: r.name, op: r.op, subset: inAcceptanceSubset(r.op), category: r.category, message: r.message, maxAbsError: r.maxAbsError }),
  );
  // One test a line, so the file diffs test by test between runs.
  writeFileSync(json, `${text(body, 1).slice(0, -2)},\n "tests": [\n  ${tests.join(',\n  ')}\n ]\n}\n`);
  writeFileSync(markdown, markdownReport(records, info));
  return { json, markdown };
}
