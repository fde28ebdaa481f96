/**
 * Property test: seeded random CNN graphs (random op sequences, channels, kernels, strides, pads,
 * dilations, groups), built as Kiln Graph IR, exported to ONNX, run by onnxruntime-node and by
 * Kiln on random batches: the outputs agree. Also the perNode report: it names the first
 * divergent node of a graph whose Kiln side was sabotaged.
 */
import { describe, expect, it } from 'vitest';

import { optimizeGraph } from '../../src/graph/passes/index.js';
import { compareGraphWithModel, compareWithOnnxRuntime } from '../../src/onnx/compare.js';
import { exportModel } from '../../src/onnx/export.js';
import { importModel } from '../../src/onnx/import.js';
import { Tensor } from '../../src/tensor.js';
import { randomCnn } from './onnx-random-graphs.js';

const GRAPHS = 100;

describe('random CNN graphs: Kiln and onnxruntime agree', () => {
  it(`${GRAPHS} seeded graphs, batches of 1..3`, async () => {
    const failures: string[] = [];
    for (let seed = 0; seed < GRAPHS; seed++) {
      const { graph, description } = randomCnn(seed);
      const result = await compareWithOnnxRuntime(graph, 1 + (seed % 3), { seed });
      const out = result.outputs[0]!;
      if (!(out.relL2 <= 1e-5)) {
        failures.push(`seed ${seed} (${description}): relL2 ${out.relL2}, maxAbsDiff ${out.maxAbsDiff}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it("exporting the runtime's optimised graphs (BN folded, activations fused as kiln_activation) keeps their meaning", async () => {
    const failures: string[] = [];
    let fused = 0;
    for (let seed = 0; seed < 30; seed++) {
      const { graph, description } = randomCnn(seed);
      const optimised = optimizeGraph(graph, 'all');
      fused += optimised.nodes.filter((n) => n.attrs.kiln_activation !== undefined).length;
      const result = await compareGraphWithModel(graph, exportModel(optimised), 2, { seed });
      if (!(result.outputs[0]!.relL2 <= 1e-5)) failures.push(`seed ${seed} (${description}): relL2 ${result.outputs[0]!.relL2}`);
    }
    expect(failures).toEqual([]);
    expect(fused).toBeGreaterThan(5);
  });

  it('the imported export of a random graph runs identically on Kiln (perNode report all within tolerance)', async () => {
    for (const seed of [3, 11, 29]) {
      const { graph } = randomCnn(seed);
      const bytes = exportModel(graph);
      const result = await compareWithOnnxRuntime(bytes, 2, { perNode: true, seed });
      expect(result.nodes!.length).toBeGreaterThanOrEqual((await importModel(bytes)).nodes.length - 1);
      expect(result.firstDivergentNode).toBeUndefined();
    }
  });
});

describe('compareWithOnnxRuntime perNode', () => {
  it('names the first node whose output diverges', async () => {
    const { graph } = randomCnn(5);
    const honest = exportModel(graph);
    // Kiln runs a copy whose first conv bias is off by 0.5; ORT runs the honest export.
    const culprit = graph.nodes.find((n) => n.op === 'Conv' && n.inputs.length === 3)!;
    const bias = graph.initializers.get(culprit.inputs[2]!)!;
    const initializers = new Map(graph.initializers);
    initializers.set(culprit.inputs[2]!, new Tensor('float32', (bias.data as Float32Array).map((v) => v + 0.5), bias.dims));
    const result = await compareGraphWithModel({ ...graph, initializers }, honest, 2, { perNode: true, seed: 1 });
    expect(result.firstDivergentNode?.node).toBe(culprit.name);
    expect(result.firstDivergentNode!.relL2).toBeGreaterThan(1e-3);
    const at = result.nodes!.findIndex((n) => n.node === culprit.name);
    expect(at).toBeGreaterThanOrEqual(0);
    expect(result.nodes!.slice(0, at).every((n) => n.relL2 <= 1e-5)).toBe(true);
    expect(result.outputs[0]!.relL2).toBeGreaterThan(0);
  });

  it('validates its arguments', async () => {
    const { graph } = randomCnn(1);
    await expect(compareWithOnnxRuntime(42 as never)).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_ARG' });
    await expect(compareWithOnnxRuntime(graph, 0)).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_ARG' });
    await expect(compareWithOnnxRuntime(graph, { nope: Tensor.zeros([1]) })).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_ARG' });
    await expect(compareWithOnnxRuntime(graph, 1, { tolerance: -1 })).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_ARG' });
    await expect(compareGraphWithModel(graph, 7 as never)).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_ARG' });
  });
});
