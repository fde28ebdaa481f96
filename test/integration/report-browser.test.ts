// The report as a reader sees it: the rendered page opened from a file:// URL in the system's
// Chromium (headless, driven by playwright-core, which downloads no browser), with every network
// request refused and recorded. No request, no console error, no page error; each chart drawn (a
// canvas of non-zero size with painted pixels, and the Chart.js series expected); a malicious
// recipe name shown as text. Writes bench/results/report-example.html (the fixture's page); the
// screenshots (report-example.png, and report-screenshot.png of the measured run of the shipped
// recipe) go to a temporary folder, or over the committed ones in bench/results with
// KILN_UPDATE_PICTURES=1 (Chromium's pixels differ from run to run, so a plain test run would leave
// the checkout modified).
//
// Without Chromium this test fails and says how to install it; KILN_CHROMIUM=/path/to/chrome picks the
// binary, KILN_SKIP_BROWSER_TESTS=1 skips it.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';

import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readRunRecord, renderReport } from '../../src/index.js';
import type { RunRecord } from '../../src/index.js';
import { bareRunRecord, fixtureRunRecord } from '../support/run-record-fixture.js';

const ROOT = join(__dirname, '../..');
const RESULTS = join(ROOT, 'bench/results');
const SKIP = process.env.KILN_SKIP_BROWSER_TESTS === '1';
const UPDATE_PICTURES = process.env.KILN_UPDATE_PICTURES === '1';

/** Chromium on this machine: $KILN_CHROMIUM (only it, when set), else chromium / chromium-browser / google-chrome on PATH. */
function findChromium(): string | undefined {
  const chosen = process.env.KILN_CHROMIUM;
  if (chosen) return existsSync(chosen) ? chosen : undefined;
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const name of ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']) {
    for (const dir of dirs) if (existsSync(join(dir, name))) return join(dir, name);
  }
  return existsSync('/usr/lib/chromium/chromium') ? '/usr/lib/chromium/chromium' : undefined;
}

/** What one page load did: requests other than the page's own file, console errors, page errors. */
interface Visit {
  page: Page;
  requests: string[];
  errors: string[];
  dialogs: string[];
}

/**
 * The few browser globals the checks use inside the page. The tests' TypeScript has no DOM library
 * (the code under test runs in Node), so they are typed here, as the page sees them.
 */
interface CanvasInPage {
  width: number;
  height: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
}
interface PageGlobals {
  document: {
    querySelector(selector: string): CanvasInPage | null;
    querySelectorAll(selector: string): ArrayLike<{ querySelectorAll(selector: string): ArrayLike<unknown> }>;
  };
  Chart: { getChart(canvas: CanvasInPage): { data: { datasets: { label: string }[] } } | undefined };
}

/** The figures of one drawn chart, read in the page. */
interface CanvasFacts {
  width: number;
  height: number;
  painted: number;
  labels: string[];
}

const EXPECTED_CHARTS: Record<string, string[]> = {
  accuracy: ['held-out accuracy (%)', 'budget floor (%)'],
  size: ['file size (KB)'],
  'latency-b1': ['Kiln', 'ONNX Runtime'],
  'latency-b64': ['Kiln', 'ONNX Runtime'],
  'curves-1': ['held-out accuracy, try 1 (kept)', 'train loss, try 1 (kept)'],
  'curves-2': ['held-out accuracy, try 1 (over budget)', 'train loss, try 1 (over budget)', 'held-out accuracy, try 2 (kept)', 'train loss, try 2 (kept)'],
  sensitivity: ['conv2', 'conv3', 'fc', 'baseline (unpruned)'],
  'layer-sparsity': ['sparsity (%)'],
  'layer-sqnr': ['SQNR (dB)'],
};

describe.skipIf(SKIP)('the report page in Chromium', () => {
  let browser: Browser | undefined;
  let dir = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-report-browser-'));
    const executablePath = findChromium();
    if (executablePath === undefined) return; // each test fails in visit(), saying how to install it
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  });

  afterAll(async () => {
    await browser?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Opens `file` with the network cut: any request that is not the page's own file is aborted and recorded. */
  async function visit(file: string): Promise<Visit> {
    if (browser === undefined) {
      throw new Error(
        'Chromium is needed to test the report page and was not found (looked for chromium, chromium-browser, google-chrome on PATH and /usr/lib/chromium/chromium, or only $KILN_CHROMIUM when set). ' +
          'Install it: `sudo apt-get install chromium` (Debian/Ubuntu), or set KILN_CHROMIUM to a Chrome/Chromium binary; KILN_SKIP_BROWSER_TESTS=1 skips these tests.',
      );
    }
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, deviceScaleFactor: 1 });
    const url = pathToFileURL(file).href;
    const visitRecord: Visit = { page: await context.newPage(), requests: [], errors: [], dialogs: [] };
    const { page } = visitRecord;
    await context.route('**/*', (route) => (route.request().url() === url ? route.continue() : route.abort()));
    page.on('request', (request) => {
      if (request.url() !== url) visitRecord.requests.push(request.url());
    });
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') visitRecord.errors.push(`console.${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => visitRecord.errors.push(`page error: ${error.message}`));
    page.on('dialog', (dialog) => {
      visitRecord.dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    await page.goto(url);
    await page.waitForSelector('html[data-rendered="true"]', { timeout: 15_000 }).catch((err: unknown) => {
      throw new Error(`the page did not finish drawing: ${visitRecord.errors.join('; ') || String(err)}`);
    });
    return visitRecord;
  }

  async function render(record: RunRecord, file: string): Promise<string> {
    await writeFile(file, await renderReport(record));
    return file;
  }

  /** Size, painted pixels (alpha > 0: Chart.js draws on a transparent canvas) and series of a chart. */
  function canvasFacts(page: Page, id: string): Promise<CanvasFacts | null> {
    return page.evaluate((cardId) => {
      const { document, Chart } = globalThis as unknown as PageGlobals;
      const canvas = document.querySelector(`canvas[data-card="${cardId}"]`);
      if (!canvas) return null;
      const data = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data;
      let painted = 0;
      if (data) for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
      const chart = Chart.getChart(canvas);
      return { width: canvas.width, height: canvas.height, painted, labels: chart ? chart.data.datasets.map((d) => d.label) : [] };
    }, id);
  }

  it('draws every chart of a full run offline, without a request or an error', async () => {
    const file = await render(fixtureRunRecord(), join(RESULTS, 'report-example.html'));
    const { page, requests, errors } = await visit(file);
    expect(requests, 'network requests').toEqual([]);
    expect(errors, 'console and page errors').toEqual([]);
    for (const [id, labels] of Object.entries(EXPECTED_CHARTS)) {
      const facts = await canvasFacts(page, id);
      expect(facts, `canvas ${id}`).not.toBeNull();
      const { width, height, painted, labels: drawn } = facts as CanvasFacts;
      expect(width * height, `${id} size`).toBeGreaterThan(0);
      // A blank chart paints nothing; axes and labels alone paint a few thousand pixels, so ask for more.
      expect(painted, `${id} painted pixels`).toBeGreaterThan(5000);
      expect(drawn, `${id} series`).toEqual(labels);
    }
    const confusion = await page.evaluate(() => {
      const { document } = globalThis as unknown as PageGlobals;
      const rows = Array.from(document.querySelectorAll('table[data-card="confusion"] tbody tr'));
      return { rows: rows.length, cells: rows.map((r) => r.querySelectorAll('td').length), shaded: document.querySelectorAll('table[data-card="confusion"] td[style*="background"]').length };
    });
    expect(confusion).toEqual({ rows: 10, cells: Array(10).fill(10), shaded: 100 });
    expect(await page.locator('table[data-card="stages"] tbody tr').count()).toBe(5);
    expect(await page.locator('h1').textContent()).toBe('mnist-small-int8');
    await page.screenshot({ path: join(UPDATE_PICTURES ? RESULTS : dir, 'report-example.png'), fullPage: true });
  });

  it('draws the committed measured run of the shipped recipe (bench/results/compress-mnist-half-80-int8.run.json) and pictures it', async () => {
    const record = await readRunRecord(join(RESULTS, 'compress-mnist-half-80-int8.run.json'));
    const { page, requests, errors } = await visit(await render(record, join(dir, 'measured.html')));
    expect(requests, 'network requests').toEqual([]);
    expect(errors, 'console and page errors').toEqual([]);
    // Its stages: distill (1 try), prune (1 try), quantize (PTQ over budget, then QAT), pack.
    const charts: Record<string, RegExp[]> = {
      accuracy: [/held-out accuracy/, /budget floor/],
      size: [/file size/],
      'latency-b1': [/^Kiln$/, /^ONNX Runtime$/],
      'latency-b64': [/^Kiln$/, /^ONNX Runtime$/],
      'curves-1': [/held-out accuracy, try 1 \(kept\)/, /train loss, try 1 \(kept\)/],
      sensitivity: [/^3$/, /^7$/, /baseline/],
      'layer-sparsity': [/sparsity/],
      'layer-sqnr': [/SQNR/],
    };
    for (const [id, labels] of Object.entries(charts)) {
      const facts = await canvasFacts(page, id);
      expect(facts, `canvas ${id}`).not.toBeNull();
      const { painted, labels: drawn } = facts as CanvasFacts;
      expect(painted, `${id} painted pixels`).toBeGreaterThan(5000);
      expect(drawn.length, `${id} series ${drawn.join(', ')}`).toBe(labels.length);
      labels.forEach((re, i) => expect(drawn[i], `${id} series ${i}`).toMatch(re));
    }
    expect(await page.locator('table[data-card="stages"] tbody tr').count()).toBe(record.stages.length);
    await page.screenshot({ path: join(UPDATE_PICTURES ? RESULTS : dir, 'report-screenshot.png'), fullPage: true });
  });

  it('draws a bare run (no sensitivity, no ORT timings, no curves, stopped early) without an error', async () => {
    const { page, requests, errors } = await visit(await render(bareRunRecord(), join(dir, 'bare.html')));
    expect(requests).toEqual([]);
    expect(errors).toEqual([]);
    expect((await canvasFacts(page, 'latency-b1'))?.labels).toEqual(['Kiln']);
    expect((await canvasFacts(page, 'accuracy'))?.painted).toBeGreaterThan(5000);
    expect(await canvasFacts(page, 'sensitivity')).toBeNull();
    expect(await canvasFacts(page, 'curves-2')).toBeNull();
    expect(await page.locator('.tile.tone-bad').filter({ hasText: 'stopped early' }).count()).toBe(1);
  });

  it('shows a malicious recipe name as text: no element, no script, no dialog', async () => {
    const evil = '</script><img src=x onerror=alert(1)><script>alert(2)</script>';
    const record = fixtureRunRecord();
    record.recipe.name = evil;
    record.stages[1].name = '<img src=y onerror=alert(3)>';
    record.result.stoppedBecause = '<svg onload=alert(4)>';
    const { page, requests, errors, dialogs } = await visit(await render(record, join(dir, 'evil.html')));
    expect(dialogs).toEqual([]);
    expect(requests).toEqual([]);
    expect(errors).toEqual([]);
    expect(await page.locator('h1').textContent()).toBe(evil);
    expect(await page.locator('img, svg').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(3);
  });
});
