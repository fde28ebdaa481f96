// `kiln prune`: through the CLI entry point (main(argv)) on the synthetic data set: the --json
// last-line contract (accuracy before/after and their difference, per-layer sparsity), the pruned
// file (zeros in place, pruning recorded in its metadata), --out checked before any work, bad input.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { load, save } from '../../src/index.js';
import { seedCNN } from '../../src/nn/models.js';
import { readKilnFile } from '../../src/runtime/kiln-file.js';
import { lastJson, runCli } from './run-cli.js';

let dir = '';
let modelPath = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-prune-cli-'));
  modelPath = join(dir, 'seed.kiln');
  // Quarter width: conv 1->8, conv 8->16 (reduction 72), fc 400->32, fc 32->10.
  await save(seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, widthMultiplier: 0.25, seed: 2 }), modelPath);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface PruneJson {
  accuracyBefore: number;
  accuracyAfter: number;
  accuracyDelta: number;
  sparsity: number;
  schedule: string;
  pattern: string;
  layers: { name: string; sparsity: number; zeros: number; size: number }[];
}

const zerosOf = (a: Float32Array): number => a.filter((x) => x === 0).length;

describe('kiln prune', () => {
  it('AGP fine-tune: last JSON line has accuracy before, after and their difference, per-layer sparsity; the file holds the zeros', async () => {
    const out = join(dir, 'agp.kiln');
    const r = await runCli('prune', modelPath, '--dataset', 'synthetic', '--sparsity', '0.75', '--schedule', 'agp', '--epochs', '1', '--out', out, '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const result = lastJson<PruneJson>(r);
    expect(result.schedule).toBe('agp');
    expect(result.pattern).toBe('unstructured');
    for (const k of ['accuracyBefore', 'accuracyAfter'] as const) expect(result[k]).toBeGreaterThanOrEqual(0);
    expect(result.accuracyDelta).toBeCloseTo(result.accuracyAfter - result.accuracyBefore, 12);
    expect(result.layers.map((l) => [l.name, l.zeros])).toEqual([['3', Math.round(0.75 * 1152)], ['7', Math.round(0.75 * 12800)]]);
    const model = await load(out);
    const params = new Map(model.parameters().map((p) => [p.name, p.value.data]));
    expect(zerosOf(params.get('3.weight')!)).toBe(864);
    expect(zerosOf(params.get('7.weight')!)).toBe(9600);
    expect(zerosOf(params.get('0.weight')!)).toBe(0);
    const meta = (await readKilnFile(out)).metadata as { pruning: { schedule: string; layers: Record<string, number> } };
    expect(meta.pruning.schedule).toBe('agp');
    expect(meta.pruning.layers).toEqual({ '3': 0.75, '7': 0.75 });
  }, 60_000);

  it('--pattern 2:4 one-shot with 0 epochs: every group of 4 input channels at one kernel position keeps at most 2', async () => {
    const out = join(dir, 'nm.kiln');
    const r = await runCli('prune', modelPath, '--dataset', 'synthetic', '--pattern', '2:4', '--schedule', 'oneshot', '--epochs', '0', '--layers', '3', '--out', out, '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    expect(lastJson<PruneJson>(r).layers).toEqual([expect.objectContaining({ name: '3', sparsity: 0.5 })]);
    const { data: w, dims } = (await load(out)).parameters().find((p) => p.name === '3.weight')!.value;
    // Groups of 4 input channels at one kernel position (OIHW: kh*kw apart).
    const [outputs, channels, kh, kw] = dims;
    const spatial = kh * kw;
    let groups = 0;
    for (let o = 0; o < outputs; o++) {
      for (let s = 0; s < spatial; s++) {
        for (let c0 = 0; c0 < channels; c0 += 4, groups++) {
          const group = [0, 1, 2, 3].map((j) => w[(o * channels + c0 + j) * spatial + s]);
          expect(group.filter((x) => x !== 0).length).toBeLessThanOrEqual(2);
        }
      }
    }
    expect(groups).toBe(w.length / 4);
  }, 60_000);

  it('checks --out before any work (before even reading the model)', async () => {
    const out = join(dir, 'no-such-folder', 'x.kiln');
    const r = await runCli('prune', join(dir, 'missing.kiln'), '--sparsity', '0.5', '--out', out, '--json');
    expect(r.exitCode).toBe(1);
    const { error } = lastJson<{ error: { code: string; message: string } }>(r);
    expect(error.code).toBe('ERR_KILN_FILE_NOT_FOUND');
    expect(error.message).toMatch(/--out/);
  });

  it('refuses bad input with the flag named and writes nothing', async () => {
    const out = join(dir, 'bad.kiln');
    const cases: [string[], RegExp][] = [
      [['--sparsity', '1'], /--sparsity/],
      [['--sparsity', '-0.2'], /--sparsity/],
      [['--sparsity', '0.5', '--layers', '3,fc9'], /'fc9'.*prunable layers are '0' \(Conv2d 8x1x3x3\)/],
      [['--pattern', '4:8', '--layers', '0'], /divisible by M = 8.*'0'.*received 1 \(its input channels/],
      [['--sparsity', '0.5', '--schedule', 'gradual'], /--schedule/],
      [['--sparsity', '0.5', '--method', 'biggest'], /--method/],
      [['--sparsity', '0.5', '--method', 'bn'], /BatchNorm2d/],
      [['--sparsity', '0.5', '--schedule', 'agp', '--epochs', '0'], /--epochs/],
      [['--schedule', 'oneshot'], /--sparsity/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli('prune', modelPath, '--dataset', 'synthetic', ...args, '--out', out);
      expect(r.exitCode, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/ERR_KILN_INVALID_ARG/);
    }
    expect(existsSync(out)).toBe(false);
  });

  it('--analyze prints the per-layer table and JSON suggestion; --sparsity-from prunes each layer to it', async () => {
    const analysis = join(dir, 'analysis.json');
    const a = await runCli('prune', modelPath, '--dataset', 'synthetic', '--analyze', '--max-drop', '0.5', '--out', analysis, '--json');
    expect(a.exitCode, a.stderr + a.stdout).toBe(0);
    const result = lastJson<{ suggestion: Record<string, number>; layers: { name: string; points: unknown[] }[]; sparsities: number[] }>(a);
    expect(result.layers.map((l) => l.name)).toEqual(['0', '3', '7', '9']);
    expect(result.layers.every((l) => l.points.length === result.sparsities.length)).toBe(true);
    expect(a.stderr).toMatch(/layer +0\.10 .* suggested/);
    expect(existsSync(analysis)).toBe(true);
    // An untrained model is near chance: accepting a 50-point drop suggests pruning every layer.
    expect(Object.values(result.suggestion).every((s) => s > 0)).toBe(true);
    const out = join(dir, 'from.kiln');
    const p = await runCli('prune', modelPath, '--dataset', 'synthetic', '--sparsity-from', analysis, '--schedule', 'oneshot', '--epochs', '0', '--out', out, '--json');
    expect(p.exitCode, p.stderr + p.stdout).toBe(0);
    const layers = lastJson<PruneJson>(p).layers;
    expect(Object.fromEntries(layers.map((l) => [l.name, l.zeros]))).toEqual(
      Object.fromEntries(layers.map((l) => [l.name, Math.round(result.suggestion[l.name] * l.size)])),
    );
    const both = await runCli('prune', modelPath, '--dataset', 'synthetic', '--sparsity-from', analysis, '--sparsity', '0.5', '--out', out);
    expect(both.exitCode).toBe(1);
    expect(both.stderr).toMatch(/--sparsity/);
  }, 60_000);
});
