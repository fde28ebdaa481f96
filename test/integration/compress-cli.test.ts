// `kiln compress`: through the CLI entry point on the synthetic data set: a teacher trained by
// `kiln train`, a recipe file, the output model, run record and report written where asked and
// consistent with the --json line; a bad recipe, an ONNX model and an unwritable output refused
// before any training.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { RunRecord } from '../../src/compress/record.js';
import { loadGraph } from '../../src/index.js';
import { lastJson, runCli } from './run-cli.js';

let dir = '';
let teacherPath = '';

const recipe = {
  name: 'cli-smoke',
  maxAccuracyDrop: 1,
  measure: { batches: [1, 4], minMs: 5 },
  stages: [
    { stage: 'prune', sparsity: 0.5, pattern: 'block1x4', schedule: 'oneshot', epochs: 1, sensitivity: { sparsities: [0.5] } },
    { stage: 'quantize', batches: 2 },
    { stage: 'pack' },
  ],
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-compress-cli-'));
  teacherPath = join(dir, 'teacher.kiln');
  const r = await runCli('train', '--dataset', 'synthetic', '--epochs', '1', '--out', teacherPath, '--json');
  expect(r.exitCode, r.stderr + r.stdout).toBe(0);
  await writeFile(join(dir, 'recipe.json'), JSON.stringify(recipe));
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('kiln compress', () => {
  it('writes the model, the run record and the report; the --json line is the record\'s result', async () => {
    const out = join(dir, 'small.kiln');
    const report = join(dir, 'report.html');
    const r = await runCli('compress', teacherPath, '--recipe', join(dir, 'recipe.json'), '--out', out, '--report', report, '--dataset', 'synthetic', '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const result = lastJson<{ record: string; stage: string; accuracy: number; smaller: number; completed: boolean }>(r);
    expect(result.record).toBe(join(dir, 'small.run.json'));
    const record = JSON.parse(await readFile(result.record, 'utf8')) as RunRecord;
    expect(record.stages.map((s) => s.name)).toEqual(['original', 'prune', 'quantize', 'pack']);
    expect(result).toMatchObject({ stage: 'pack', completed: true, accuracy: record.result.accuracy, smaller: record.result.smaller });
    expect(record.recipe).toMatchObject({ name: 'cli-smoke', seed: 1 });
    expect(record.dataset.name).toMatch(/^synthetic/);
    // Progress went to stderr per stage (stdout stays the JSON line in --json mode).
    expect(r.stderr).toMatch(/prune \(try 1\/3\): block1x4 to 50.00%/);
    expect(r.stderr).toMatch(/quantize \(try 1\/2\): held-out .* within budget/);
    const graph = await loadGraph(out);
    expect(graph.nodes.some((n) => n.op === 'QLinearConv')).toBe(true);
    const html = await readFile(report, 'utf8');
    expect(html).toMatch(/cli-smoke/);
  }, 300_000);

  it('refuses a bad recipe, an ONNX model and an unwritable --out before any training', async () => {
    const cases: [string[], string, RegExp][] = [];
    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ ...recipe, stages: [{ stage: 'quantize' }, { stage: 'prune', sparsity: 0.5 }] }));
    cases.push([['--recipe', bad], 'ERR_KILN_INVALID_RECIPE', /stages\[1\] \(prune\) comes after quantize/]);
    const notJson = join(dir, 'not.json');
    await writeFile(notJson, '{ "name": ');
    cases.push([['--recipe', notJson], 'ERR_KILN_INVALID_RECIPE', /not valid JSON/]);
    cases.push([['--recipe', join(dir, 'missing.json')], 'ERR_KILN_FILE_NOT_FOUND', /--recipe/]);
    cases.push([['--recipe', join(dir, 'recipe.json'), '--out', join(dir, 'no-such-dir', 'x.kiln')], 'ERR_KILN_FILE_NOT_FOUND', /--out/]);
    for (const [args, code, message] of cases) {
      const out = join(dir, 'never.kiln');
      const r = await runCli('compress', teacherPath, '--out', out, ...args, '--dataset', 'synthetic', '--json');
      expect(r.exitCode, r.stdout + r.stderr).toBe(1);
      const { error } = lastJson<{ error: { code: string; message: string } }>(r);
      expect(error.code).toBe(code);
      expect(error.message).toMatch(message);
      expect(r.stderr).not.toMatch(/epoch/);
      expect(existsSync(out)).toBe(false);
    }
    const onnx = join(dir, 'teacher.onnx');
    expect((await runCli('export', teacherPath, '--out', onnx)).exitCode).toBe(0);
    const r = await runCli('compress', onnx, '--recipe', join(dir, 'recipe.json'), '--out', join(dir, 'never.kiln'), '--dataset', 'synthetic', '--json');
    expect(r.exitCode).toBe(1);
    expect(lastJson<{ error: { code: string; message: string } }>(r).error.message).toMatch(/must be a Kiln-trained float .kiln model, but .* is an ONNX model/);
  }, 300_000);
});
