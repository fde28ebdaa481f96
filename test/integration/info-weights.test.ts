// `kiln info` per layer: for a model pruned with a different pattern in each layer, each Conv/Gemm
// weight's sparsity, detected pattern, dense and packed bytes, how the file stores it, and the
// kernel a default InferenceSession chooses (from its step text); the same for its ONNX export.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { WeightRow } from '../../src/cli/info.js';
import { toGraph } from '../../src/graph/from-module.js';
import { seedCNN } from '../../src/nn/models.js';
import { exportModel } from '../../src/onnx/export.js';
import { prune } from '../../src/prune/prune.js';
import { save } from '../../src/runtime/model-io.js';
import { lastJson, runCli } from './run-cli.js';

let dir = '';
let kilnPath = '';
let onnxPath = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-info-weights-'));
  // Quarter width: conv '0' 8x1x3x3, conv '3' 16x8x3x3, fc '7' 32x400, fc '9' 10x32 (left dense).
  const model = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, widthMultiplier: 0.25, seed: 2 });
  const oneshot = { schedule: 'oneshot', epochs: 0 } as const;
  await prune(model, undefined, { ...oneshot, pattern: 'block8x1', sparsity: 0.5, layers: ['0'] });
  await prune(model, undefined, { ...oneshot, pattern: 'filter', sparsity: 0.5, layers: ['3'] });
  await prune(model, undefined, { ...oneshot, pattern: 'unstructured', sparsity: 0.9, layers: ['7'] });
  kilnPath = join(dir, 'pruned.kiln');
  await save(model, kilnPath, { sparse: 'auto' });
  onnxPath = join(dir, 'pruned.onnx');
  await writeFile(onnxPath, exportModel(toGraph(model, [1, 28, 28])));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('kiln info: per layer weights', () => {
  it('a pruned .kiln model: sparsity, pattern, dense and packed bytes, storage and kernel per Conv/Gemm', async () => {
    const r = await runCli('info', kilnPath, '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const { weights } = lastJson<{ weights: WeightRow[] }>(r);
    expect(weights.map((w) => [w.layer, w.op, w.pattern, w.sparsity])).toEqual([
      // '0' has 9 blocks of 8 outputs x 1 input: half of them rounds to 5.
      ['0', 'Conv', 'block8x1', 5 / 9],
      ['3', 'Conv', 'filter', 0.5],
      ['7', 'Gemm', 'unstructured', 0.9],
      ['9', 'Gemm', 'dense', 0],
    ]);
    expect(weights.map((w) => w.denseBytes)).toEqual([72 * 4, 1152 * 4, 12800 * 4, 320 * 4]);
    // 90% zeros: values and indices take far less than the dense weight; a dense weight has no packed form.
    expect(weights[2].packedBytes!).toBeLessThan(0.25 * weights[2].denseBytes);
    expect(weights[2].stored).toBe('csr');
    expect(weights[3]).toMatchObject({ packedBytes: null, stored: 'dense', kernel: 'dense' });
    for (const w of weights) {
      // The kernel is read from the session's step for this very node.
      expect(w.step).toMatch(new RegExp(`^${w.op} ${w.node}: `));
      expect(w.kernel).toMatch(/^(dense|sparse \S+ \d+%)/);
      expect(w.kernel!.startsWith('sparse')).toBe(/ sparse /.test(w.step!));
    }
    // Below half zeros a layer is never packed for the sparse kernels.
    expect(weights[3].step).not.toMatch(/sparse|zeros/);
    const text = await runCli('info', kilnPath);
    expect(text.stdout).toMatch(/layer +op +sparsity +pattern +dense bytes +packed bytes +stored +kernel/);
    expect(text.stdout).toMatch(/\n3 +Conv +50\.0% +filter +4,608 /);
  }, 60_000);

  it('its ONNX export: the same patterns, by node name, stored dense', async () => {
    const r = await runCli('info', onnxPath, '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const { weights } = lastJson<{ weights: WeightRow[] }>(r);
    expect(weights.map((w) => [w.op, w.pattern, w.stored])).toEqual([
      ['Conv', 'block8x1', 'dense'],
      ['Conv', 'filter', 'dense'],
      ['Gemm', 'unstructured', 'dense'],
      ['Gemm', 'dense', 'dense'],
    ]);
    expect(weights.every((w) => w.layer === w.node && w.kernel !== null)).toBe(true);
  }, 60_000);
});
