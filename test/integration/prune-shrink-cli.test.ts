// `kiln prune --shrink` through the CLI entry point: filter pruning with fine-tuning then shrinking
// (sizes and accuracy before/after in the --json line, the written .kiln graph gives that accuracy),
// --no-finetune on an ONNX model written as ONNX (the same plan as planShrink, outputs equal to the
// masked model, channel counts multiples of --round-to), and bad input with stable codes.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { graphAccuracy } from '../../src/runtime/accuracy.js';
import { loadDatasets } from '../../src/cli/datasets.js';
import { toGraph } from '../../src/graph/from-module.js';
import { GraphBuilder, type Graph } from '../../src/graph/ir.js';
import { seedCNN } from '../../src/nn/models.js';
import { exportModel } from '../../src/onnx/export.js';
import { importModel } from '../../src/onnx/import.js';
import { maskGraph, planShrink } from '../../src/prune/shrink/index.js';
import { loadGraph, save } from '../../src/runtime/model-io.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { lastJson, runCli } from './run-cli.js';

let dir = '';
let modelPath = '';
let onnxPath = '';

const rng = new Rng(8);
function tensor(dims: number[], lo = -1, hi = 1): Tensor<'float32'> {
  return new Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.uniform(lo, hi)), dims);
}

async function outputs(graph: Graph, x: Tensor): Promise<Float32Array> {
  const session = await InferenceSession.create(graph);
  try {
    return (await session.run({ [session.inputNames[0]]: x }))[session.outputNames[0]].data as Float32Array;
  } finally {
    session.release();
  }
}

/** conv0(40) Relu -> conv1(24) Relu -> conv2(3, the graph output) and conv1 -> GAP -> Gemm. */
function onnxModel(): Graph {
  const b = new GraphBuilder('cli-shrink');
  const x = b.addInput('x', ['N', 3, 6, 6]);
  const attrs = { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 };
  const conv = (input: string, cin: number, cout: number, name: string) =>
    b.addNode('Conv', [input, b.addInitializer(`${name}_w`, tensor([cout, cin, 3, 3])), b.addInitializer(`${name}_b`, tensor([cout], -0.1, 0.1))], attrs, name);
  const r0 = b.addNode('Relu', [conv(x, 3, 40, 'conv0')], {}, 'relu0');
  const r1 = b.addNode('Relu', [conv(r0, 40, 24, 'conv1')], {}, 'relu1');
  const map = conv(r1, 24, 3, 'conv2');
  const f = b.addNode('Flatten', [b.addNode('GlobalAveragePool', [r1], {}, 'gap')], { axis: 1 }, 'flatten');
  const y = b.addNode('Gemm', [f, b.addInitializer('fc_w', tensor([5, 24])), b.addInitializer('fc_b', tensor([5]))], { alpha: 1, beta: 1, transA: 0, transB: 1 }, 'fc');
  return b.build([
    { name: y, dtype: 'float32', shape: ['N', 5] },
    { name: map, dtype: 'float32', shape: ['N', 3, 6, 6] },
  ]);
}

/** conv0(8) Relu -> conv1(8) + conv0's output (a residual Add) -> Relu -> GAP -> Gemm: conv0 and conv1 shrink together. */
function residualModel(): Graph {
  const b = new GraphBuilder('cli-residual');
  const x = b.addInput('x', ['N', 3, 6, 6]);
  const attrs = { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 };
  const conv = (input: string, cin: number, cout: number, name: string) =>
    b.addNode('Conv', [input, b.addInitializer(`${name}_w`, tensor([cout, cin, 3, 3]))], attrs, name);
  const r0 = b.addNode('Relu', [conv(x, 3, 8, 'conv0')], {}, 'relu0');
  const sum = b.addNode('Relu', [b.addNode('Add', [conv(r0, 8, 8, 'conv2'), r0], {}, 'add')], {}, 'relu1');
  const f = b.addNode('Flatten', [b.addNode('GlobalAveragePool', [sum], {}, 'gap')], { axis: 1 }, 'flatten');
  const y = b.addNode('Gemm', [f, b.addInitializer('fc_w', tensor([5, 8]))], { alpha: 1, beta: 1, transA: 0, transB: 1 }, 'fc');
  return b.build([{ name: y, dtype: 'float32', shape: ['N', 5] }]);
}
let residualPath = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-prune-shrink-cli-'));
  modelPath = join(dir, 'seed.kiln');
  // Quarter width: conv '0' 1->8, conv '3' 8->16, fc '7' 400->32, fc '9' 32->10.
  await save(seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, widthMultiplier: 0.25, seed: 2 }), modelPath);
  onnxPath = join(dir, 'model.onnx');
  await writeFile(onnxPath, exportModel(onnxModel()));
  residualPath = join(dir, 'residual.onnx');
  await writeFile(residualPath, exportModel(residualModel()));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface ShrinkJson {
  format: string;
  finetune: boolean;
  roundTo: number;
  channels: { conv: string; layer?: string; before: number; after: number }[];
  skipped: { convs: string[]; reason: string }[];
  before: { parameters: number; macs: number; fileBytes: number };
  after: { parameters: number; macs: number; fileBytes: number };
  evalImages?: number;
  accuracyBefore?: number;
  accuracyPruned?: number;
  accuracyAfter?: number;
  accuracyDelta?: number;
}

const errorOf = (r: Awaited<ReturnType<typeof runCli>>) => lastJson<{ error: { code: string; message: string } }>(r).error;

describe('kiln prune --shrink', () => {
  it('fine-tunes with --pattern filter, then writes a smaller dense .kiln graph whose accuracy is the one reported', async () => {
    const out = join(dir, 'small.kiln');
    const r = await runCli('prune', modelPath, '--dataset', 'synthetic', '--pattern', 'filter', '--sparsity', '0.5', '--shrink', '--epochs', '1', '--out', out, '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const result = lastJson<ShrinkJson>(r);
    expect(result.format).toBe('kiln');
    expect(result.finetune).toBe(true);
    // By default the first conv stays; conv '3' loses half its 16 filters, fc1 its matching inputs.
    expect(result.channels).toEqual([{ conv: expect.any(String), layer: '3', before: 16, after: 8 }]);
    expect(result.after.parameters).toBeLessThan(result.before.parameters);
    expect(result.before.parameters - result.after.parameters).toBe(8 * (8 * 9 + 1) + 8 * 25 * 32);
    expect(result.after.macs).toBeLessThan(result.before.macs);
    expect(result.after.fileBytes).toBeLessThan(result.before.fileBytes);
    for (const k of ['accuracyBefore', 'accuracyPruned', 'accuracyAfter'] as const) expect(result[k]).toBeGreaterThanOrEqual(0);
    expect(result.accuracyDelta).toBeCloseTo(result.accuracyAfter! - result.accuracyBefore!, 12);
    // SeedCNN has no BatchNorm: the shrunk model computes what the masked one does.
    expect(Math.abs(result.accuracyAfter! - result.accuracyPruned!)).toBeLessThanOrEqual(1 / result.evalImages!);
    const graph = await loadGraph(out);
    const { test } = await loadDatasets({ dataset: 'synthetic', seed: 1 });
    expect(await graphAccuracy(graph, test)).toBe(result.accuracyAfter);
    const conv = graph.nodes.filter((n) => n.op === 'Conv')[1];
    expect(graph.initializers.get(conv.inputs[1])!.dims).toEqual([8, 8, 3, 3]);
    expect(r.stderr).toMatch(/parameters [\d,]+ -> [\d,]+, MACs per image [\d,]+ -> [\d,]+, file [\d,]+ -> [\d,]+ bytes/);
  }, 120_000);

  it('--round-to after fine-tuning: prunes to a kept count that is a multiple (method global: zeroed channels stay up to it)', async () => {
    const zeroFilters = (graph: Graph, conv: string): number => {
      const w = graph.initializers.get(graph.nodes.find((n) => n.name === conv)!.inputs[1])!;
      const per = w.size / w.dims[0];
      return Array.from({ length: w.dims[0] }, (_, o) => w.data.subarray(o * per, (o + 1) * per).every((v) => v === 0)).filter(Boolean).length;
    };
    const out = join(dir, 'small8.onnx');
    // 60% of 16 filters would keep 6: pruned to 8 kept (50%) instead, so none of those is zero.
    const r = await runCli('prune', modelPath, '--dataset', 'synthetic', '--sparsity', '0.6', '--shrink', '--round-to', '8', '--schedule', 'oneshot', '--epochs', '0', '--out', out, '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const result = lastJson<ShrinkJson & { targetSparsity: number }>(r);
    expect(result.format).toBe('onnx');
    expect(result.targetSparsity).toBe(0.5);
    expect(result.channels.map((c) => c.after)).toEqual([8]);
    const graph = await importModel(out);
    const convs = graph.nodes.filter((n) => n.op === 'Conv');
    expect(convs.map((n) => graph.initializers.get(n.inputs[1])!.dims[0])).toEqual([8, 8]);
    expect(zeroFilters(graph, convs[1].name)).toBe(0);
    // One global threshold: 10 filters zeroed, 6 kept, 8 written (two of them zero).
    const g = join(dir, 'global8.kiln');
    const q = await runCli('prune', modelPath, '--dataset', 'synthetic', '--method', 'global', '--sparsity', '0.6', '--shrink', '--round-to', '8', '--schedule', 'oneshot', '--epochs', '0', '--out', g, '--json');
    expect(q.exitCode, q.stderr + q.stdout).toBe(0);
    expect(lastJson<ShrinkJson>(q).channels.map((c) => c.after)).toEqual([8]);
    const shrunk = await loadGraph(g);
    expect(zeroFilters(shrunk, shrunk.nodes.filter((n) => n.op === 'Conv')[1].name)).toBe(2);
    // Rounding that keeps every filter is refused, not written as an unchanged model.
    const all = await runCli('prune', modelPath, '--dataset', 'synthetic', '--sparsity', '0.3', '--shrink', '--round-to', '16', '--schedule', 'oneshot', '--epochs', '0', '--out', join(dir, 'none.kiln'), '--json');
    expect(all.exitCode).toBe(1);
    expect(errorOf(all)).toMatchObject({ code: 'ERR_KILN_CANNOT_SHRINK', message: expect.stringMatching(/--round-to 16 every layer keeps all its filters \(filters: '3' 16\)/) });
  }, 120_000);

  it('--sparsity-from with --shrink: the suggestion\'s convs are pruned to it and shrunk, its Linear layers stay dense (said so)', async () => {
    const analysis = join(dir, 'analysis.json');
    // An untrained model is near chance: accepting a 50-point drop suggests pruning every layer.
    const a = await runCli('prune', modelPath, '--dataset', 'synthetic', '--analyze', '--pattern', 'filter', '--max-drop', '0.5', '--out', analysis, '--json');
    expect(a.exitCode, a.stderr + a.stdout).toBe(0);
    const suggestion = lastJson<{ suggestion: Record<string, number> }>(a).suggestion;
    expect(Object.keys(suggestion).filter((k) => suggestion[k] > 0)).toEqual(['0', '3', '7', '9']);
    const r = await runCli('prune', modelPath, '--dataset', 'synthetic', '--sparsity-from', analysis, '--shrink', '--schedule', 'oneshot', '--epochs', '0', '--out', join(dir, 'from.kiln'), '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    expect(r.stderr).toMatch(/the suggestion's Linear layers '7', '9' stay dense/);
    const channels = lastJson<ShrinkJson>(r).channels;
    // A layer pruned to no filter at all still keeps one (zero) channel: a value cannot lose every channel.
    expect(channels.map((c) => [c.layer, c.after])).toEqual([
      ['0', Math.max(1, 8 - Math.round(suggestion['0'] * 8))],
      ['3', Math.max(1, 16 - Math.round(suggestion['3'] * 16))],
    ]);
  }, 120_000);

  it('--no-finetune on an ONNX model: no data, the plan planShrink makes, outputs equal the masked model, counts multiples of --round-to', async () => {
    const out = join(dir, 'small.onnx');
    const r = await runCli('prune', onnxPath, '--pattern', 'filter', '--sparsity', '0.3', '--shrink', '--no-finetune', '--round-to', '16', '--out', out, '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const result = lastJson<ShrinkJson>(r);
    expect(result.finetune).toBe(false);
    expect(result.accuracyBefore).toBeUndefined();
    // conv0: 40 -> 28 kept -> 32; conv1 (24 -> 17 -> 32 > 24) stays whole; conv2 feeds the graph output.
    expect(result.channels).toEqual([{ conv: 'conv0', before: 40, after: 32 }]);
    expect(result.skipped).toEqual([{ convs: ['conv2'], channels: 3, reason: expect.stringMatching(/reaches the graph output/) }]);
    const original = await importModel(onnxPath);
    const shrunk = await importModel(out);
    const plan = planShrink(original, { fraction: 0.3, roundTo: 16 });
    const x = tensor([2, 3, 6, 6]);
    const [a, b] = [await outputs(maskGraph(original, plan.removals), x), await outputs(shrunk, x)];
    let diff = 0;
    let scale = 0;
    a.forEach((v, i) => {
      diff = Math.max(diff, Math.abs(v - b[i]));
      scale = Math.max(scale, Math.abs(v));
    });
    expect(scale).toBeGreaterThan(0);
    expect(diff / scale).toBeLessThanOrEqual(1e-5);
    // And the shrink did something the original does not compute.
    const c = await outputs(original, x);
    expect(Math.max(...c.map((v, i) => Math.abs(v - b[i])))).toBeGreaterThan(1e-4 * scale);
    for (const n of shrunk.nodes.filter((n) => n.op === 'Conv')) {
      const dims = shrunk.initializers.get(n.inputs[1])!.dims[0];
      expect([32, 24, 3]).toContain(dims);
    }
    // The same on the .kiln model, written as .kiln: --layers are the Module's names.
    const kiln = join(dir, 'nf.kiln');
    const k = await runCli('prune', modelPath, '--sparsity', '0.5', '--shrink', '--no-finetune', '--layers', '0,3', '--out', kiln, '--json');
    expect(k.exitCode, k.stderr + k.stdout).toBe(0);
    expect(lastJson<ShrinkJson>(k).channels.map((ch) => [ch.before, ch.after])).toEqual([[8, 4], [16, 8]]);
    expect(existsSync(kiln)).toBe(true);
  }, 120_000);

  it('refuses bad input with stable codes, the flag named, and writes nothing', async () => {
    const out = join(dir, 'bad.onnx');
    const cases: [string, string[], string, RegExp][] = [
      [modelPath, ['--pattern', '2:4', '--shrink'], 'ERR_KILN_INVALID_ARG', /'filter' with --shrink .* for --pattern but received "2:4"/],
      [modelPath, ['--sparsity', '0.5', '--shrink', '--round-to', '0'], 'ERR_KILN_INVALID_ARG', /positive integer .* for --round-to but received "0"/],
      [modelPath, ['--sparsity', '0.5', '--shrink', '--round-to', '1.5'], 'ERR_KILN_INVALID_ARG', /--round-to but received "1.5"/],
      [modelPath, ['--sparsity', '0.5', '--shrink', '--round-to', 'x'], 'ERR_KILN_INVALID_ARG', /--round-to but received "x"/],
      [modelPath, ['--sparsity', '0.5', '--round-to', '16'], 'ERR_KILN_INVALID_ARG', /nothing without --shrink for --round-to/],
      [modelPath, ['--sparsity', '0.5', '--no-finetune'], 'ERR_KILN_INVALID_ARG', /--no-finetune/],
      [modelPath, ['--sparsity', '0.5', '--shrink', '--layers', '3,7'], 'ERR_KILN_INVALID_ARG', /Conv2d layers with --shrink .* for --layers but received "7 \(a Linear\)"/],
      [modelPath, ['--sparsity', '0.5', '--shrink', '--layers', '1'], 'ERR_KILN_INVALID_ARG', /'1', a ReLU layer which has no weight to prune/],
      [onnxPath, ['--sparsity', '0.5', '--shrink'], 'ERR_KILN_INVALID_ARG', /add --no-finetune/],
      [onnxPath, ['--sparsity', '0.5', '--shrink', '--no-finetune', '--layers', 'relu0'], 'ERR_KILN_INVALID_ARG', /--layers\[0\] .*'relu0' is a Relu node, which has no filters to remove/],
      [onnxPath, ['--sparsity', '0.5', '--shrink', '--no-finetune', '--layers', 'conv9'], 'ERR_KILN_INVALID_ARG', /'conv9' is not a node/],
      [onnxPath, ['--sparsity', '0.5', '--shrink', '--no-finetune', '--layers', 'conv2'], 'ERR_KILN_CANNOT_SHRINK', /Cannot shrink Conv 'conv2' \(--layers\): it reaches the graph output/],
      [onnxPath, ['--sparsity', '0.5', '--shrink', '--no-finetune', '--method', 'random'], 'ERR_KILN_INVALID_ARG', /--method/],
      [residualPath, ['--sparsity', '0.5', '--shrink', '--no-finetune', '--layers', 'conv0'], 'ERR_KILN_CANNOT_SHRINK', /Cannot shrink Conv 'conv0' \(--layers\): its channels are coupled .* with Conv 'conv2', which --layers does not name/],
      [onnxPath, ['--sparsity', '0.5', '--shrink', '--no-finetune', '--epochs', '2'], 'ERR_KILN_INVALID_ARG', /nothing with --no-finetune .* for --epochs/],
      [onnxPath, ['--sparsity', '0.5', '--shrink', '--no-finetune', '--schedule', 'agp'], 'ERR_KILN_INVALID_ARG', /for --schedule/],
      [onnxPath, ['--sparsity', '0.5', '--shrink', '--no-finetune', '--dataset', 'synthetic'], 'ERR_KILN_INVALID_ARG', /for --dataset/],
      // Without --shrink too: a layer with no weight is named with what it is, an unknown one is not.
      [modelPath, ['--sparsity', '0.5', '--layers', '3,2'], 'ERR_KILN_INVALID_ARG', /--layers\[1\] but received '2', a MaxPool2d layer which has no weight to prune/],
      [modelPath, ['--sparsity', '0.5', '--layers', 'pool'], 'ERR_KILN_INVALID_ARG', /--layers\[0\] but received 'pool': the model's prunable layers are/],
      [modelPath, ['--analyze', '--shrink'], 'ERR_KILN_INVALID_ARG', /nothing with --analyze for --shrink/],
    ];
    for (const [model, args, code, message] of cases) {
      // --no-finetune refuses a data set: the others are given the small one.
      const data = args.includes('--no-finetune') ? [] : ['--dataset', 'synthetic'];
      const r = await runCli('prune', model, ...data, ...args, '--out', out, '--json');
      expect(r.exitCode, args.join(' ')).toBe(1);
      const error = errorOf(r);
      expect(error.code, args.join(' ')).toBe(code);
      expect(error.message, args.join(' ')).toMatch(message);
    }
    expect(existsSync(out)).toBe(false);
    // Naming the whole coupled group shrinks it.
    const both = await runCli('prune', residualPath, '--sparsity', '0.5', '--shrink', '--no-finetune', '--layers', 'conv0,conv2', '--out', out, '--json');
    expect(both.exitCode, both.stderr + both.stdout).toBe(0);
    expect(lastJson<ShrinkJson>(both).channels).toEqual([{ conv: 'conv0', before: 8, after: 4 }, { conv: 'conv2', before: 8, after: 4 }]);
  }, 120_000);

  const resnet = resolve(__dirname, '../../../shared/onnx-light/light_resnet50.onnx');
  it.skipIf(!existsSync(resnet))('ResNet-50 from ONNX, no data: every shrunk conv keeps a multiple of --round-to 16, written as ONNX', async () => {
    const out = join(dir, 'r50-small.onnx');
    const r = await runCli('prune', resnet, '--pattern', 'filter', '--sparsity', '0.5', '--shrink', '--no-finetune', '--round-to', '16', '--out', out, '--json');
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    const result = lastJson<ShrinkJson>(r);
    expect(result.channels.length).toBeGreaterThan(40);
    expect(result.channels.filter((c) => c.after % 16 !== 0 || c.after >= c.before)).toEqual([]);
    expect(result.after.parameters).toBeLessThan(0.3 * result.before.parameters);
    const graph = await importModel(out);
    const convs = new Map(graph.nodes.filter((n) => n.op === 'Conv').map((n) => [n.name, graph.initializers.get(n.inputs[1])!.dims[0]]));
    for (const c of result.channels) expect(convs.get(c.conv)).toBe(c.after);
  }, 120_000);
});
