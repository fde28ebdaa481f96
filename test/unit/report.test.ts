// The report's Node side: reading a run record (every refusal with its stable code), the page it
// renders (one self-contained file, no URL to fetch, the record's strings never parsed as HTML) and
// the content the page's script draws (which charts and tables, for a full and a bare record).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ErrorCode, readRunRecord, renderReport } from '../../src/index.js';
import type { RunRecord } from '../../src/index.js';
import { buildPageModel } from '../../src/report/build-page-model.js';
import type { ChartCard, PageModel } from '../../src/report/page-model.js';
import { scriptJson } from '../../src/report/render.js';
import { bareRunRecord, fixtureRunRecord } from '../support/run-record-fixture.js';

const ROOT = join(__dirname, '../..');
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-report-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The page model embedded in a rendered page, parsed as the page's script parses it. */
function embeddedModel(html: string): PageModel {
  const m = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
  expect(m, 'the page has its data script').not.toBeNull();
  return JSON.parse((m as RegExpExecArray)[1]) as PageModel;
}

function cardIds(model: PageModel): string[] {
  return model.sections.flatMap((s) => s.cards.map((c) => c.id));
}

function chart(model: PageModel, id: string): ChartCard {
  const card = model.sections.flatMap((s) => s.cards).find((c) => c.id === id);
  expect(card?.kind, id).toBe('chart');
  return card as ChartCard;
}

async function rejects(source: string, code: string, message: RegExp): Promise<void> {
  const err = (await readRunRecord(source).then(
    () => undefined,
    (e: unknown) => e,
  )) as { code?: string; message?: string; name?: string } | undefined;
  expect(err, 'readRunRecord should have thrown').toBeDefined();
  expect(err?.code).toBe(code);
  expect(err?.message).toMatch(message);
}

describe('readRunRecord', () => {
  it('reads a record from a file and from JSON text', async () => {
    const record = fixtureRunRecord();
    const path = join(dir, 'run.json');
    await writeFile(path, JSON.stringify(record, null, 2));
    expect(await readRunRecord(path)).toEqual(record);
    expect(await readRunRecord(JSON.stringify(record))).toEqual(record);
  });

  it('refuses a file that is not JSON with ERR_KILN_CORRUPT_FILE', async () => {
    const path = join(dir, 'garbage.json');
    await writeFile(path, 'PK\u0003\u0004 not json at all');
    await rejects(path, ErrorCode.CORRUPT_FILE, /not valid JSON/);
    await rejects('{"format": "kiln-compress-run", ', ErrorCode.CORRUPT_FILE, /not valid JSON/);
    const empty = join(dir, 'empty.json');
    await writeFile(empty, '');
    await rejects(empty, ErrorCode.CORRUPT_FILE, /an empty file \(0 bytes\)/);
  });

  it('refuses another format or version with ERR_KILN_CORRUPT_FILE, naming the field', async () => {
    await rejects(JSON.stringify({ ...fixtureRunRecord(), format: 'kiln-bench' }), ErrorCode.CORRUPT_FILE, /for run\.format but received "kiln-bench"/);
    await rejects(JSON.stringify({ ...fixtureRunRecord(), version: 2 }), ErrorCode.CORRUPT_FILE, /run\.version.*received 2/);
    await rejects('{}', ErrorCode.CORRUPT_FILE, /run\.format/);
  });

  it('refuses a missing or wrongly typed field the page draws, naming it', async () => {
    const badAccuracy = fixtureRunRecord() as unknown as { stages: Record<string, unknown>[] };
    badAccuracy.stages[2].accuracy = '98%';
    await rejects(JSON.stringify(badAccuracy), ErrorCode.CORRUPT_FILE, /run\.stages\[2\]\.accuracy/);
    const noResult: Partial<RunRecord> = fixtureRunRecord();
    delete noResult.result;
    await rejects(JSON.stringify(noResult), ErrorCode.CORRUPT_FILE, /run\.result/);
    const ragged = fixtureRunRecord();
    ragged.result.confusion[3].pop();
    await rejects(JSON.stringify(ragged), ErrorCode.CORRUPT_FILE, /square matrix\) for run\.result\.confusion\[3\]/);
    const badAccepted = fixtureRunRecord();
    badAccepted.stages[2].accepted = 5;
    await rejects(JSON.stringify(badAccepted), ErrorCode.CORRUPT_FILE, /run\.stages\[2\]\.accepted/);
  });

  it('reports a missing file, a directory and a non-string with their own codes', async () => {
    await rejects(join(dir, 'nope.json'), ErrorCode.FILE_NOT_FOUND, /no such file/);
    await rejects(dir, ErrorCode.NOT_A_FILE, /directory/);
    await expect(readRunRecord(42 as unknown as string)).rejects.toMatchObject({ name: 'TypeError', code: ErrorCode.INVALID_ARG });
  });
});

describe('renderReport', () => {
  let html = '';
  beforeAll(async () => {
    html = await renderReport(fixtureRunRecord());
  });

  it('is one HTML file with Chart.js, the data and the script inlined', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('Chart.js v4');
    expect(html).toContain('id="report-data"');
    expect(html.match(/<script\b/g)?.length).toBe(3);
    expect(html.match(/<\/script>/g)?.length).toBe(3);
  });

  it('asks for nothing from the network: no src/href to any URL, no stylesheet link, a CSP of none', () => {
    expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?\s*(https?:)?\/\//i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/<script[^>]*\bsrc=/i);
    expect(html).not.toMatch(/@import|url\(\s*["']?https?:/i);
    expect(html).toMatch(/<meta http-equiv="Content-Security-Policy" content="default-src 'none';/);
  });

  it("keeps a record's strings as data: a malicious recipe name cannot close the script or add markup", async () => {
    const evil = '</script><img src=x onerror=alert(1)><!--';
    const record = fixtureRunRecord();
    record.recipe.name = evil;
    record.stages[1].name = '<b>distill</b>';
    record.result.stage = 'pack';
    record.kiln = '0.1.0"><script>alert(2)</script>';
    const page = await renderReport(record);
    expect(page).not.toContain('<img src=x');
    expect(page).not.toContain('<b>distill');
    expect(page).not.toContain('<script>alert(2)');
    expect(page.match(/<\/script>/g)?.length).toBe(3);
    const model = embeddedModel(page);
    expect(model.title).toBe(evil);
    expect(cardIds(model)).toContain('curves-1');
    expect(chart(model, 'size').chart.data.labels).toContain('<b>distill</b>');
  });

  it('scriptJson escapes every "<" and the JS line separators, and parses back unchanged', () => {
    const value = { a: '</script><!-- \u2028\u2029 <' };
    const text = scriptJson(value);
    expect(text).not.toMatch(/[<\u2028\u2029]/);
    expect(JSON.parse(text)).toEqual(value);
  });

  it('refuses an object that is not a run record with ERR_KILN_INVALID_ARG', async () => {
    await expect(renderReport({ ...fixtureRunRecord(), version: 3 } as unknown as RunRecord)).rejects.toMatchObject({ name: 'RangeError', code: ErrorCode.INVALID_ARG });
    await expect(renderReport(null as unknown as RunRecord)).rejects.toMatchObject({ name: 'TypeError', code: ErrorCode.INVALID_ARG });
  });
});

describe('the page model', () => {
  it('has every chart and table of a full run', () => {
    const model = buildPageModel(fixtureRunRecord());
    expect(model.title).toBe('mnist-small-int8');
    expect(cardIds(model)).toEqual(['accuracy', 'size', 'latency-b1', 'latency-b64', 'stages', 'curves-1', 'curves-2', 'sensitivity', 'layer-sparsity', 'layer-sqnr', 'confusion', 'layers']);
    expect(model.facts.map((f) => f.label)).toEqual(['Kiln', 'CPU', 'ISA', 'threads', 'seed', 'date', 'data', 'took']);
    expect(model.tiles.map((t) => t.label)).toEqual(['accuracy', 'accuracy drop', 'smaller', 'faster than original', 'faster than ONNX Runtime', 'pipeline']);
    expect(model.tiles[0].value).toBe('98.87% → 98.28%');
  });

  it('draws both prune tries, the backed-off one dashed grey', () => {
    const prune = chart(buildPageModel(fixtureRunRecord()), 'curves-2');
    const labels = prune.chart.data.datasets.map((d) => d.label);
    expect(labels).toEqual(['held-out accuracy, try 1 (over budget)', 'train loss, try 1 (over budget)', 'held-out accuracy, try 2 (kept)', 'train loss, try 2 (kept)']);
    expect(prune.chart.data.datasets[0].borderDash).toBeDefined();
    expect(prune.chart.data.datasets[2].borderDash).toBeUndefined();
    expect(prune.note).toContain('sparsity 0.8');
  });

  it('draws Kiln against ONNX Runtime per batch size, and one line per layer in the sensitivity chart', () => {
    const model = buildPageModel(fixtureRunRecord());
    expect(chart(model, 'latency-b64').chart.data.datasets.map((d) => d.label)).toEqual(['Kiln', 'ONNX Runtime']);
    expect(chart(model, 'latency-b64').chart.data.labels).toEqual(['original', 'distill', 'prune', 'quantize', 'pack']);
    expect(chart(model, 'sensitivity').chart.data.datasets.map((d) => d.label)).toEqual(['conv2', 'conv3', 'fc', 'baseline (unpruned)']);
  });

  it('leaves out what a bare record lacks: sensitivity, ORT, curves, SQNR; says why it stopped', () => {
    const model = buildPageModel(bareRunRecord());
    expect(cardIds(model)).toEqual(['accuracy', 'size', 'latency-b1', 'latency-b64', 'stages', 'layer-sparsity', 'confusion', 'layers']);
    expect(chart(model, 'latency-b1').chart.data.datasets.map((d) => d.label)).toEqual(['Kiln']);
    expect(chart(model, 'latency-b1').note).toContain('no ONNX Runtime timing');
    const layers = model.sections.flatMap((s) => s.cards).find((c) => c.id === 'layers');
    expect(layers?.kind === 'table' && layers.columns).toEqual(['layer', 'op', 'weights', 'sparsity', 'pattern', 'MACs / image']);
    expect(model.tiles.map((t) => t.label)).not.toContain('faster than ONNX Runtime');
    expect(model.tiles[model.tiles.length - 1]).toMatchObject({ value: 'stopped early', detail: 'prune: no try within the accuracy budget', tone: 'bad' });
  });
});

describe('bench/results/example-run.json', () => {
  it('is the fixture record written out (the README runs kiln report on it)', async () => {
    const committed = JSON.parse(await readFile(join(ROOT, 'bench/results/example-run.json'), 'utf8')) as unknown;
    expect(committed).toEqual(fixtureRunRecord());
    expect(await readRunRecord(join(ROOT, 'bench/results/example-run.json'))).toEqual(fixtureRunRecord());
  });
});
