/**
 * Linear layers over the last axis of a channels-last image, as ConvNeXt writes them (Transpose to
 * [N, H, W, C], MatMul with a constant weight, Add of the bias, ..., Transpose back): PTQ turns
 * each MatMul into a QLinearGemm on [N, H, W, C] (docs/int8-ir.md). Checked: the int8 graph has
 * those QLinearGemms, each MatMul's bias Add folded into its int32 bias and Gelu between them a
 * QLinearLookup; the native runtime equals the reference interpreter bit for bit (the step
 * multiplies H x W rows per image, the input transposed back from NHWC storage first) at odd
 * sizes and batches; onnxruntime on the QDQ export (rows reshaped for Gemm) agrees within one
 * output step; the float model's top-1 is kept; a .kiln file round-trips it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { type Graph, GraphBuilder } from '../../src/graph/ir.js';
import { compareInt8WithOnnxRuntime } from '../../src/onnx/index.js';
import { quantize } from '../../src/quant/ptq.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import { loadGraph, save } from '../../src/runtime/model-io.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { argmaxRows, random, runNative, tensor } from '../support/int8-graphs.js';

const H = 7;
const W = 5;
const C = 12;
const HIDDEN = 24;
const CLASSES = 6;

/**
 * conv 3 -> C -> Transpose [0, 2, 3, 1] -> MatMul C -> HIDDEN (+ bias) -> Gelu (or Relu) -> MatMul
 * HIDDEN -> C (+ bias) -> Transpose back -> conv C -> C -> GlobalAveragePool -> Flatten -> Gemm.
 * 'nchw': no Transposes, the MatMuls run over W of conv1's [N, C, H, W] output, which the int8
 * conv stores NHWC (the Gemm then reads it transposed back).
 */
type Activation = 'Relu' | 'Gelu' | 'GeluTanh';
function channelsLastGraph(layout: 'nhwc' | 'nchw' = 'nhwc', activation: Activation = 'Gelu', seed = 4): Graph {
  const last = layout === 'nhwc' ? C : W;
  const next = random(seed);
  const g = new GraphBuilder('channels-last');
  const x = g.addInput('x', ['N', 3, H, W]);
  const conv = { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1], dilations: [1, 1], group: 1 };
  let h = g.addNode('Conv', [x, g.addInitializer('conv1_w', tensor([C, 3, 3, 3], 0.5, next)), g.addInitializer('conv1_b', tensor([C], 0.1, next))], conv, 'conv1');
  if (layout === 'nhwc') h = g.addNode('Transpose', [h], { perm: [0, 2, 3, 1] }, 'to_nhwc');
  h = g.addNode('MatMul', [h, g.addInitializer('fc1_w', tensor([last, HIDDEN], 0.4, next))], {}, 'fc1');
  h = g.addNode('Add', [h, g.addInitializer('fc1_b', tensor([HIDDEN], 0.1, next))], {}, 'fc1_bias');
  h = activation === 'Relu' ? g.addNode('Relu', [h], {}, 'act') : g.addNode('Gelu', [h], { approximate: activation === 'Gelu' ? 'none' : 'tanh' }, 'act');
  h = g.addNode('MatMul', [h, g.addInitializer('fc2_w', tensor([HIDDEN, last], 0.3, next))], {}, 'fc2');
  h = g.addNode('Add', [h, g.addInitializer('fc2_b', tensor([last], 0.1, next))], {}, 'fc2_bias');
  if (layout === 'nhwc') h = g.addNode('Transpose', [h], { perm: [0, 3, 1, 2] }, 'to_nchw');
  h = g.addNode('Conv', [h, g.addInitializer('conv2_w', tensor([C, C, 3, 3], 0.3, next))], conv, 'conv2');
  h = g.addNode('GlobalAveragePool', [h], {}, 'pool');
  h = g.addNode('Flatten', [h], { axis: 1 }, 'flatten');
  const logits = g.addNode('Gemm', [h, g.addInitializer('fc_w', tensor([CLASSES, C], 0.5, next))], { transB: 1 }, 'fc');
  return g.build([{ name: logits, dtype: 'float32', shape: ['N', CLASSES] }]);
}

const calibration = tensor([64, 3, H, W], 1.5, random(1));
const held = tensor([101, 3, H, W], 1.5, random(2));
const dir = mkdtempSync(join(tmpdir(), 'kiln-ptq-channels-last-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('PTQ: MatMul over the last axis of a channels-last image', () => {
  const cases = [['uint8', 'nhwc', 'Gelu'], ['int8', 'nhwc', 'GeluTanh'], ['uint8', 'nchw', 'Relu']] as const;
  for (const [activations, layout, activation] of cases) {
    it(`${activations}, ${layout}, ${activation}: both MatMuls become QLinearGemm on rank 4; the native runtime equals the reference bit for bit; top-1 kept`, async () => {
      const float = channelsLastGraph(layout, activation);
      const { graph, report } = await quantize(float, calibration, { activations, reportImages: 0 });
      const gemms = graph.nodes.filter((n) => n.op === 'QLinearGemm');
      expect(gemms.map((n) => n.name)).toEqual(expect.arrayContaining(['fc1', 'fc2']));
      expect(report.layers.filter((l) => l.op === 'MatMul')).toHaveLength(2);
      // Gelu between two int8 Gemms is a table on the codes (no float round trip).
      if (activation !== 'Relu') expect(graph.nodes.filter((n) => n.op === 'QLinearLookup').map((n) => n.attrs.kiln_function)).toEqual([activation]);

      // nhwc: conv1's codes stored NHWC are the Transpose's [N, H, W, C] as they are (a view), and
      // fc2's rows are conv2's NHWC input. nchw: conv1's NHWC output is transposed back for fc1,
      // and fc2's rows to NHWC for conv2.
      const session = await InferenceSession.create(graph, { intraOpNumThreads: 1 });
      const transposes = session.info().steps.filter((line) => line.startsWith('TransposeU8'));
      session.release();
      expect(transposes).toHaveLength(layout === 'nchw' ? 2 : 0);

      const reference = runInt8Reference(graph, { x: held })[graph.outputs[0].name].data as Float32Array;
      const native = await runNative(graph, held);
      expect(Array.from(native)).toEqual(Array.from(reference));
      // Odd batch sizes run other row counts through the same step.
      for (const n of [1, 3]) {
        const part = new Tensor('float32', held.data.subarray(0, n * 3 * H * W), [n, 3, H, W]);
        expect(Array.from(await runNative(graph, part))).toEqual(Array.from(reference.subarray(0, n * CLASSES)));
      }

      const floatOut = await runNative(float, held);
      const agree = argmaxRows(native, CLASSES).filter((c, i) => c === argmaxRows(floatOut, CLASSES)[i]).length;
      console.log(`channels-last Linear ${activations} ${layout} ${activation}: top-1 agreement with fp32 ${agree}/101`);
      expect(agree).toBeGreaterThanOrEqual(95);
    });
  }

  // ORT evaluates Gelu from its opset-17 expansion (Erf, or Tanh) in float32: this checks the tables' formulas.
  for (const activation of ['Gelu', 'GeluTanh'] as const) {
    it(`${activation}: onnxruntime on the QDQ export agrees within one output step`, async () => {
      const { graph } = await quantize(channelsLastGraph('nhwc', activation), calibration, { reportImages: 0 });
      const result = await compareInt8WithOnnxRuntime(graph, { x: held }, undefined, { intraOpNumThreads: 1 });
      const o = result.outputs[0];
      console.log(`channels-last Linear ${activation}: Kiln int8 vs ORT on the QDQ export: top-1 ${(o.top1Agreement * 100).toFixed(1)}%, max ${o.maxDiffSteps?.toFixed(2)} steps`);
      expect(result.engine).toBe('runtime');
      expect(o.top1Agreement).toBeGreaterThanOrEqual(0.98);
      expect(o.maxDiffSteps).toBeLessThanOrEqual(1);
    });
  }

  it('a .kiln file round-trips the graph with its Gelu lookup', async () => {
    const { graph } = await quantize(channelsLastGraph(), calibration, { reportImages: 0 });

    const file = join(dir, 'channels-last.kiln');
    await save(graph, file);
    const loaded = await loadGraph(file);
    expect(Array.from(await runNative(loaded, held))).toEqual(Array.from(await runNative(graph, held)));
  });
});

/**
 * ShuffleNet's channel shuffle between int8 convolutions: two branch convs (C/2 channels each) ->
 * Concat -> Reshape [N, g, C/g, H, W] -> Transpose [0, 2, 1, 3, 4] -> Reshape back -> Slice into
 * halves -> conv on one, Concat with the other -> conv -> GlobalAveragePool -> Gemm.
 */
function shuffleGraph(c: number, groups: number, seed = 6): Graph {
  const next = random(seed);
  const g = new GraphBuilder('shuffle');
  const x = g.addInput('x', ['N', 3, H, W]);
  const conv = (name: string, input: string, cin: number, cout: number) =>
    g.addNode('Conv', [input, g.addInitializer(`${name}_w`, tensor([cout, cin, 3, 3], 1.2 / Math.sqrt(cin), next)), g.addInitializer(`${name}_b`, tensor([cout], 0.1, next))],
      { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1], dilations: [1, 1], group: 1 }, name);
  const half = c / 2;
  const c1 = g.addNode('Relu', [conv('conv1', x, 3, c)], {}, 'relu1');
  let h = g.addNode('Concat', [conv('conv_a', c1, c, half), conv('conv_b', c1, c, half)], { axis: 1 }, 'concat');
  h = g.addNode('Reshape', [h], { shape: [0, groups, c / groups, H, W] }, 'groups');
  h = g.addNode('Transpose', [h], { perm: [0, 2, 1, 3, 4] }, 'shuffle');
  h = g.addNode('Reshape', [h], { shape: [0, c, H, W] }, 'ungroup');
  const left = g.addNode('Slice', [h], { starts: [0], ends: [half], axes: [1], steps: [1] }, 'left');
  const right = g.addNode('Slice', [h], { starts: [half], ends: [c], axes: [1], steps: [1] }, 'right');
  h = g.addNode('Concat', [conv('conv_left', left, half, half), right], { axis: 1 }, 'concat2');
  h = g.addNode('GlobalAveragePool', [conv('conv2', h, c, c)], {}, 'pool');
  h = g.addNode('Flatten', [h], { axis: 1 }, 'flatten');
  const logits = g.addNode('Gemm', [h, g.addInitializer('fc_w', tensor([CLASSES, c], 0.5, next))], { transB: 1 }, 'fc');
  return g.build([{ name: logits, dtype: 'float32', shape: ['N', CLASSES] }]);
}

describe('Transpose of quantized values', () => {
  // 2 groups of 20 channels: the SSE2 interleave and its tail; 3 groups of 8: the plain gather.
  for (const [c, groups] of [[40, 2], [24, 3]] as const) {
    it(`PTQ runs a channel shuffle of ${groups} groups of ${c / groups} channels on the codes (one ChannelShuffleU8 step), bit for bit against the reference; onnxruntime agrees on the export`, async () => {
      const float = shuffleGraph(c, groups);
      const { graph, report } = await quantize(float, calibration, { reportImages: 0 });
      expect(report.fp32Nodes.map((n) => n.op)).toEqual([]);
      const session = await InferenceSession.create(graph, { intraOpNumThreads: 1 });
      const ops = session.info().steps.map((line) => line.split(' ')[0]);
      session.release();
      expect(ops).toContain('ChannelShuffleU8');
      expect(ops.filter((op) => op.startsWith('Transpose'))).toEqual([]);

      const reference = runInt8Reference(graph, { x: held })[graph.outputs[0].name].data as Float32Array;
      const native = await runNative(graph, held);
      expect(Array.from(native)).toEqual(Array.from(reference));
      const top1 = argmaxRows(await runNative(float, held), CLASSES);
      const agree = argmaxRows(native, CLASSES).filter((k, i) => k === top1[i]).length;
      console.log(`channel shuffle ${groups} x ${c / groups}: int8 vs fp32 top-1 agreement ${agree}/101`);
      expect(agree).toBeGreaterThanOrEqual(90);

      const result = await compareInt8WithOnnxRuntime(graph, { x: held }, undefined, { intraOpNumThreads: 1 });
      expect(result.engine).toBe('runtime');
      expect(result.outputs[0].top1Agreement).toBeGreaterThanOrEqual(0.98);
      expect(result.outputs[0].maxDiffSteps).toBeLessThanOrEqual(1);
    });
  }

  // QuantizeLinear -> Transpose(s) on the codes -> DequantizeLinear, as QDQ import lifts them: a
  // quantized [C, H, W] is stored NHWC, so [0, 2, 3, 1] is a view of it and [0, 3, 1, 2] back a view
  // too; other permutations run TransposeNdU8 on the IR's order. Exact: codes only move (a scale
  // of 2^-6, so both dequantize exactly).
  const cases: { name: string; dims: number[]; perms: number[][]; steps: string[] }[] = [
    { name: 'NCHW -> NHWC, then back', dims: [3, 5, 4, 6], perms: [[0, 2, 3, 1], [0, 3, 1, 2]], steps: [] },
    { name: 'H and W swapped on an image', dims: [2, 5, 4, 6], perms: [[0, 1, 3, 2]], steps: ['TransposeU8', 'TransposeNdU8'] },
    { name: 'a rank-5 channel shuffle', dims: [2, 2, 3, 4, 5], perms: [[0, 2, 1, 3, 4]], steps: ['TransposeNdU8'] },
  ];
  for (const c of cases) {
    it(`${c.name}: the native runtime moves the codes as the reference does`, async () => {
      const g = new GraphBuilder('t');
      let h = g.addInput('x', ['N', ...c.dims.slice(1)]);
      h = g.addNode('QuantizeLinear', [h], { scale: 0.015625, zero_point: 128, dtype: 'uint8' }, 'q');
      c.perms.forEach((perm, i) => (h = g.addNode('Transpose', [h], { perm }, `t${i}`)));
      const y = g.addNode('DequantizeLinear', [h], { scale: 0.015625, zero_point: 128 }, 'dq');
      const graph = g.build([{ name: y, dtype: 'float32', shape: [] }]);
      const x = tensor(c.dims, 2, random(7));
      const session = await InferenceSession.create(graph, { intraOpNumThreads: 1 });
      const steps = session.info().steps.map((line) => line.split(' ')[0]).filter((op) => op.startsWith('Transpose'));
      session.release();
      expect(steps).toEqual(c.steps);
      const want = runInt8Reference(graph, { x })[y].data as Float32Array;
      expect(Array.from(await runNative(graph, x))).toEqual(Array.from(want));
    });
  }
});
