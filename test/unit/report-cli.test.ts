// `kiln report <run.json> --out report.html`: writes the page, checks --out before reading, and
// reports a bad record with its stable code (the JSON {error} line with --json).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { lastJson, runCli } from '../integration/run-cli.js';
import { fixtureRunRecord } from '../support/run-record-fixture.js';

let dir = '';
let runJson = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-report-cli-'));
  runJson = join(dir, 'run.json');
  await writeFile(runJson, JSON.stringify(fixtureRunRecord()));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('kiln report', () => {
  it('writes the HTML page and says where', async () => {
    const out = join(dir, 'report.html');
    const r = await runCli('report', runJson, '--out', out);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`wrote ${out}`);
    const html = await readFile(out, 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('mnist-small-int8');
  });

  it('--json prints the result as one JSON line', async () => {
    const out = join(dir, 'report-json.html');
    const r = await runCli('report', runJson, '--out', out, '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(lastJson(r)).toMatchObject({ record: runJson, out, stages: 5, completed: true });
  });

  it('refuses an --out in a folder that does not exist, before reading the record', async () => {
    const r = await runCli('report', join(dir, 'missing.json'), '--out', join(dir, 'no-such-folder', 'report.html'), '--json');
    expect(r.exitCode).toBe(1);
    expect(lastJson<{ error: { code: string } }>(r).error.code).toBe('ERR_KILN_FILE_NOT_FOUND');
  });

  it('refuses a file that is not a run record with ERR_KILN_CORRUPT_FILE', async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ format: 'something-else' }));
    const r = await runCli('report', bad, '--out', join(dir, 'bad.html'));
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/run\.format.*\(ERR_KILN_CORRUPT_FILE\)/);
  });

  it('requires --out', async () => {
    const r = await runCli('report', runJson);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/--out/);
  });
});
