// `kiln quantize --qat --epochs N`: QAT through the CLI entry point (main(argv)) on the synthetic data
// set, the --json last-line contract, and the flag combinations it refuses (exit code 1, flag named).
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadGraph, save } from '../../src/index.js';
import { seedCNN } from '../../src/nn/models.js';
import { runCli } from './run-cli.js';

let dir = '';
let modelPath = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-qat-cli-'));
  modelPath = join(dir, 'seed.kiln');
  // An untrained quarter-width SeedCNN is enough for the command's plumbing.
  await save(seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, widthMultiplier: 0.25, seed: 2 }), modelPath);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('kiln quantize --qat', () => {
  it('fine-tunes, converts, writes the int8 graph and reports fp32 vs int8 accuracy as the last JSON line', async () => {
    const out = join(dir, 'qat.kiln');
    const r = await runCli('quantize', modelPath, '--calibrate', 'synthetic', '--qat', '--epochs', '1', '--out', out, '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const result = JSON.parse(lines[lines.length - 1]) as Record<string, unknown>;
    expect(result.method).toBe('qat');
    expect(result.mode).toBe('static');
    expect(typeof result.int8Accuracy).toBe('number');
    expect(typeof result.fp32Accuracy).toBe('number');
    expect((result.layers as unknown[]).length).toBe(4);
    expect(existsSync(out)).toBe(true);
    const graph = await loadGraph(out);
    expect(graph.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'QLinearConv', 'MaxPool', 'QLinearConv', 'MaxPool', 'Flatten', 'QLinearGemm', 'QLinearGemm']);
    expect(JSON.parse(graph.metadata!.kiln_quantization).calibration.method).toBe('qat');
  }, 120_000);

  it('refuses --epochs without --qat, --qat with --dynamic, and --qat on a file without a Module', async () => {
    const out = join(dir, 'bad.kiln');
    const noQat = await runCli('quantize', modelPath, '--calibrate', 'synthetic', '--epochs', '2', '--out', out);
    expect(noQat.exitCode).toBe(1);
    expect(noQat.stderr).toMatch(/--epochs/);
    const dynamic = await runCli('quantize', modelPath, '--qat', '--dynamic', '--out', out);
    expect(dynamic.exitCode).toBe(1);
    expect(dynamic.stderr).toMatch(/--qat/);
    // A saved int8 graph holds no Module to fine-tune.
    const graphFile = join(dir, 'qat.kiln');
    const graph = await runCli('quantize', graphFile, '--calibrate', 'synthetic', '--qat', '--out', out);
    expect(graph.exitCode).toBe(1);
    expect(graph.stderr).toMatch(/a \.kiln file holding a trained Module/);
    expect(existsSync(out)).toBe(false);
  }, 60_000);
});
