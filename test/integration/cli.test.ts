// The `kiln` command end to end: every command run through the same entry point bin/kiln.js calls
// (`main(argv)`), checking the --json contract (one JSON object on the last stdout line) and that
// bad input ends in a message and exit code 1, not a crash. One test also spawns bin/kiln.js
// itself when the compiled CLI exists (npm install compiles it).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { load } from '../../src/index.js';
import { lastJson, runCli } from './run-cli.js';

let dir = '';
let modelPath = '';
let trainedAccuracy = NaN;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-cli-'));
  modelPath = join(dir, 'seed.kiln');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('kiln CLI', () => {
  it('train --json trains, saves and reports the evaluation as the last stdout line', async () => {
    const r = await runCli('train', '--dataset', 'synthetic', '--epochs', '1', '--width-multiplier', '0.25', '--out', modelPath, '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const result = lastJson(r);
    expect(typeof result.testAccuracy).toBe('number');
    trainedAccuracy = result.testAccuracy as number;
    expect(result.testAccuracy as number).toBeGreaterThanOrEqual(0);
    expect(result.testAccuracy as number).toBeLessThanOrEqual(1);
    expect(existsSync(modelPath)).toBe(true);
  }, 120_000);

  it('info --json counts parameters and MACs of the saved model', async () => {
    const r = await runCli('info', modelPath, '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const result = lastJson(r);
    const model = await load(modelPath);
    const parameters = model.parameters().reduce((s, p) => s + p.value.size, 0);
    expect(result.parameters).toBe(parameters);
    // A quarter-width SeedCNN: conv 1->8, conv 8->16, linear 16*5*5 -> 32, linear 32 -> 10.
    expect(parameters).toBe(8 * 9 + 8 + 16 * 8 * 9 + 16 + 400 * 32 + 32 + 32 * 10 + 10);
    expect(result.macsPerImage).toBe(26 * 26 * 8 * 9 + 11 * 11 * 16 * 72 + 400 * 32 + 32 * 10);
    expect(result.inputShape).toEqual([1, 28, 28]);
  });

  it('eval --json re-evaluates the saved model to the accuracy train reported', async () => {
    const r = await runCli('eval', modelPath, '--dataset', 'synthetic', '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const result = lastJson(r);
    expect(result.testImages).toBe(512);
    // The fp32 session and the training-time forward round differently, so allow one flipped digit.
    expect(Math.abs((result.testAccuracy as number) - trainedAccuracy)).toBeLessThanOrEqual(1 / 512 + 1e-12);
  });

  it('export then verify --json: onnxruntime-node agrees with Kiln on the exported model', async () => {
    const onnxPath = join(dir, 'seed.onnx');
    const e = await runCli('export', modelPath, '--out', onnxPath, '--json');
    expect(e.exitCode, e.stderr).toBe(0);
    expect(existsSync(onnxPath)).toBe(true);
    const v = await runCli('verify', onnxPath, '--count', '64', '--json');
    expect(v.exitCode, v.stderr).toBe(0);
    const result = lastJson(v) as { outputs: { top1Agreement: number; relL2: number }[] };
    expect(result.outputs.length).toBe(1);
    expect(result.outputs[0].top1Agreement).toBe(1);
    expect(result.outputs[0].relL2).toBeLessThan(1e-5);
  }, 60_000);

  it('quantize --json writes an int8 .kiln that info describes node by node', async () => {
    const qPath = join(dir, 'seed-int8.kiln');
    const q = await runCli('quantize', modelPath, '--calibrate', 'synthetic', '--batches', '2', '--out', qPath, '--json');
    expect(q.exitCode, q.stderr + q.stdout).toBe(0);
    const r = await runCli('info', qPath, '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const result = lastJson(r) as { inputShape: number[]; layers: { type: string; macs: number; parameters: number }[]; parameters: number; macsPerImage: number };
    expect(result.inputShape).toEqual([1, 28, 28]);
    const ops = result.layers.map((l) => l.type);
    expect(ops.filter((o) => o === 'QLinearConv').length).toBe(2);
    expect(ops[0]).toBe('QuantizeLinear');
    // Same MACs as the fp32 model; parameters add one weight scale per output channel.
    const fp32 = lastJson(await runCli('info', modelPath, '--json')) as { macsPerImage: number; parameters: number };
    expect(result.macsPerImage).toBe(fp32.macsPerImage);
    expect(result.parameters).toBe(fp32.parameters + 8 + 16 + 32 + 10);
  }, 60_000);

  it('a missing model file is exit code 1 with a JSON error naming the file, not a crash', async () => {
    const missing = join(dir, 'missing.kiln');
    const r = await runCli('info', missing, '--json');
    expect(r.exitCode).toBe(1);
    const result = lastJson(r) as { error: { code: string; message: string } };
    expect(result.error.message).toContain('missing.kiln');
    expect(result.error.code).toBe('ERR_KILN_FILE_NOT_FOUND');
  });

  it('a corrupt model file is ERR_KILN_CORRUPT_MODEL', async () => {
    const corrupt = join(dir, 'corrupt.kiln');
    await writeFile(corrupt, new Uint8Array([0x4b, 0x49, 0x4c, 0x4e, 1, 2, 3]));
    const r = await runCli('eval', corrupt, '--dataset', 'synthetic', '--json');
    expect(r.exitCode).toBe(1);
    expect((lastJson(r) as { error: { code: string } }).error.code).toBe('ERR_KILN_CORRUPT_MODEL');
  });

  it('out-of-range options are refused with the option and the value named', async () => {
    const r = await runCli('--threads', '0', 'info', modelPath);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('--threads');
    expect(r.stderr).toContain('"0"');
    const d = await runCli('train', '--dataset', 'imagenet', '--out', join(dir, 'x.kiln'));
    expect(d.exitCode).toBe(1);
    expect(d.stderr).toContain('imagenet');
  });

  it('bin/kiln.js runs as a process (compiled CLI from npm install)', () => {
    const compiled = existsSync(join(process.cwd(), 'dist/src/cli/main.js'));
    expect(compiled, 'dist/src/cli/main.js is missing: run `npm run build:ts` (npm install does it)').toBe(true);
    const r = spawnSync(process.execPath, ['bin/kiln.js', 'info', modelPath, '--json'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(JSON.parse(lines[lines.length - 1]).parameters).toBeGreaterThan(0);
  });
});
