/**
 * Structured shrinking end to end: a shrunk graph exports to ONNX and runs in onnxruntime-node
 * with the same outputs as on Kiln, and the real ResNet-50 (residual Adds) and SqueezeNet
 * (Concats) from ../shared/onnx-light, with seeded weights, shrink by 50% of the prunable filters
 * (by L1, coupled groups together), agree with the masked original on Kiln and with ORT on their
 * own export. Skips the onnx-light part, saying so, when the folder is absent.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

import { toGraph } from '../../src/graph/from-module.js';
import { GraphBuilder, type Graph } from '../../src/graph/ir.js';
import { seedCNN } from '../../src/nn/models.js';
import { compareWithOnnxRuntime } from '../../src/onnx/compare.js';
import { exportModel } from '../../src/onnx/export.js';
import { importModel } from '../../src/onnx/import.js';
import { maskGraph, shrinkByImportance } from '../../src/prune/shrink/index.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { writeRandomizedModel } from './onnx-light-weights.js';

const rng = new Rng(21);
function tensor(dims: number[], lo = -1, hi = 1): Tensor<'float32'> {
  return new Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.uniform(lo, hi)), dims);
}

/** max |b - a| / max |a| over every output of the two graphs on the same input. */
async function relError(a: Graph, b: Graph, x: Tensor): Promise<number> {
  const outs: Tensor[][] = [];
  for (const g of [a, b]) {
    const session = await InferenceSession.create(g);
    const out = await session.run({ [session.inputNames[0]]: x });
    outs.push(session.outputNames.map((n) => out[n]));
    session.release();
  }
  let worst = 0;
  outs[0].forEach((t, k) => {
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < t.data.length; i++) {
      diff = Math.max(diff, Math.abs(t.data[i] - outs[1][k].data[i]));
      scale = Math.max(scale, Math.abs(t.data[i]));
    }
    expect(scale).toBeGreaterThan(0);
    worst = Math.max(worst, diff / scale);
  });
  return worst;
}

/** Residual block with BatchNorm, a Concat and a depthwise conv: every coupling in one graph. */
function mixedGraph(): Graph {
  const b = new GraphBuilder('mixed');
  const x = b.addInput('x', ['N', 3, 10, 10]);
  const attrs = (k: number, group = 1) => ({ kernel_shape: [k, k], strides: [1, 1], pads: Array(4).fill((k - 1) / 2), dilations: [1, 1], group });
  const conv = (input: string, cin: number, cout: number, name: string, k = 3, group = 1) =>
    b.addNode('Conv', [input, b.addInitializer(`${name}_w`, tensor([cout, cin / group, k, k])), b.addInitializer(`${name}_b`, tensor([cout], -0.1, 0.1))], attrs(k, group), name);
  const bn = (input: string, c: number, name: string) =>
    b.addNode('BatchNormalization', [input, ...['s', 'b', 'm', 'v'].map((p) => b.addInitializer(`${name}_${p}`, p === 's' || p === 'v' ? tensor([c], 0.5, 1.5) : tensor([c], -0.2, 0.2)))], { epsilon: 1e-5 }, name);
  const stem = b.addNode('Relu', [bn(conv(x, 3, 16, 'stem'), 16, 'bn_stem')]);
  const branch = bn(conv(b.addNode('Relu', [bn(conv(stem, 16, 12, 'c1', 1), 12, 'bn1')]), 12, 16, 'c2'), 16, 'bn2');
  const res = b.addNode('Relu', [b.addNode('Add', [branch, stem])]);
  const dw = b.addNode('Clip', [conv(res, 16, 16, 'dw', 3, 16)], { min: 0, max: 6 });
  const cat = b.addNode('Concat', [b.addNode('Relu', [conv(dw, 16, 8, 'e1', 1)]), b.addNode('Relu', [conv(dw, 16, 8, 'e3')])], { axis: 1 });
  const pooled = b.addNode('MaxPool', [cat], { kernel_shape: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], ceil_mode: 0 });
  const f = b.addNode('Flatten', [pooled], { axis: 1 });
  const y = b.addNode('Gemm', [f, b.addInitializer('fc_w', tensor([6, 16 * 25])), b.addInitializer('fc_b', tensor([6]))], { alpha: 1, beta: 1, transA: 0, transB: 1 });
  return b.build([{ name: y, dtype: 'float32', shape: ['N', 6] }]);
}

describe('shrunk graphs in onnxruntime', () => {
  for (const [name, make, dims] of [
    ['SeedCNN', () => toGraph(seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 4 }), [1, 28, 28]), [4, 1, 28, 28]],
    ['BatchNorm + residual Add + depthwise + Concat', mixedGraph, [4, 3, 10, 10]],
  ] as const) {
    it(`${name}: 50% of filters removed, equals the masked model on Kiln, its export agrees with ORT`, async () => {
      const graph = make();
      const { graph: shrunk, report, plan } = shrinkByImportance(graph, { fraction: 0.5 });
      expect(plan.groups.every((g) => g.skipped === undefined)).toBe(true);
      expect(await relError(maskGraph(graph, plan.removals), shrunk, tensor([...dims]))).toBeLessThanOrEqual(1e-5);
      expect(report.after.macs).toBeLessThan(report.before.macs * 0.6);
      expect(exportModel(shrunk).byteLength).toBeLessThan(exportModel(graph).byteLength);
      const result = await compareWithOnnxRuntime(shrunk, dims[0], { seed: 2 });
      for (const out of result.outputs) expect(out.relL2, out.name).toBeLessThanOrEqual(1e-5);
    });
  }
});

const LIGHT = resolve(process.cwd(), '..', 'shared', 'onnx-light');
const present = existsSync(LIGHT);

describe.runIf(present)('onnx-light CNNs shrink by 50% of their prunable filters', () => {
  for (const name of ['resnet50', 'squeezenet']) {
    it(`${name}: equals the masked original on Kiln, its own export agrees with ORT`, async () => {
      const dir = mkdtempSync(join(tmpdir(), `kiln-shrink-${name}-`));
      try {
        const graph = await importModel(await writeRandomizedModel(readFileSync(join(LIGHT, `light_${name}.onnx`)), dir, 7));
        const { graph: shrunk, report, plan } = shrinkByImportance(graph, { fraction: 0.5 });
        const shrunkGroups = plan.groups.filter((g) => g.removed > 0);
        const skipped = plan.groups.filter((g) => g.skipped !== undefined);
        const filters = (gs: typeof plan.groups) => gs.reduce((s, g) => s + g.channels, 0);
        // Figures for the report: what shrank, what could not and why, parameters and MACs.
        console.log(
          `${name}: ${shrunkGroups.length} groups shrunk (${filters(shrunkGroups)} channels, ${shrunkGroups.reduce((s, g) => s + g.removed, 0)} removed), ` +
            `${skipped.length} skipped (${skipped.map((g) => `${g.convs.join('+')}: ${g.skipped}`).join('; ')}); ` +
            `parameters ${report.before.parameters} -> ${report.after.parameters}, MACs ${report.before.macs} -> ${report.after.macs}`,
        );
        if (name === 'resnet50') {
          // Every group shrinks: the residual stages (coupled through the Adds) included, the last
          // one through the Reshape that flattens into the classifier.
          expect(skipped).toEqual([]);
          expect(shrunkGroups.some((g) => g.convs.length === 4)).toBe(true);
          // Rounded to multiples of 16, every shrunk conv keeps a multiple of 16 filters.
          const rounded = shrinkByImportance(graph, { fraction: 0.5, roundTo: 16 }).report.channels;
          expect(Object.keys(rounded)).toHaveLength(53);
          expect(Object.values(rounded).filter((c) => c.after % 16 !== 0)).toEqual([]);
        } else {
          // conv10's 1000 class maps feed the output; every fire module shrinks.
          expect(skipped.map((g) => g.convs)).toEqual([['n62']]);
        }
        expect(report.after.parameters).toBeLessThan(report.before.parameters * 0.6);
        expect(report.after.macs).toBeLessThan(report.before.macs * 0.6);
        const x = tensor(graph.inputs[0].shape as number[], 0, 1);
        expect(await relError(maskGraph(graph, plan.removals), shrunk, x)).toBeLessThanOrEqual(1e-5);
        const result = await compareWithOnnxRuntime(shrunk, 1, { seed: 3 });
        for (const out of result.outputs) {
          expect(out.relL2, out.name).toBeLessThanOrEqual(1e-4);
          expect(out.top1Agreement, out.name).toBe(1);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe.skipIf(present)('onnx-light CNNs shrink', () => {
  it(`skipped: ${LIGHT} is absent`, () => {});
});
