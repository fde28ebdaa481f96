/**
 * PTQ of residual networks: an Add of two activations becomes a QLinearAdd (a Relu after it fused
 * as kiln_activation 'Relu'), nothing between it and its int8 neighbours; the native runtime equals
 * the reference interpreter bit for bit; int8 agrees with fp32 and ORT (on the QDQ export) agrees
 * with Kiln int8. Adds of a constant or of a broadcast value, or without ranges, stay fp32 and the
 * report says why.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';

import { type Graph, GraphBuilder } from '../../src/graph/ir.js';
import { compareInt8WithOnnxRuntime, exportModel } from '../../src/onnx/index.js';
import { decodeModel } from '../../src/onnx/proto.js';
import { convertToInt8, prepareForQuantization, quantize, valuesToCalibrate } from '../../src/quant/ptq.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import { Tensor } from '../../src/tensor.js';
import { argmaxRows, random, runNative, tensor } from '../support/int8-graphs.js';



const C = 6;
const H = 7; // odd: the pooled map is 3x3 with a dropped row and column
const CLASSES = 10;

interface Variant {
  /** A Relu after the Add (fused into the QLinearAdd). */
  relu?: boolean;
  /** What the skip branch adds to conv2's output: conv1's output (default), a constant, or a channel mean (broadcast). */
  skip?: 'activation' | 'constant' | 'broadcast';
}

/** conv -> relu -> conv, + skip, (relu), maxpool, flatten, gemm. */
function residualGraph(variant: Variant = {}, seed = 7): Graph {
  const next = random(seed);
  const g = new GraphBuilder('residual');
  const x = g.addInput('x', ['N', 3, H, H]);
  const w1 = g.addInitializer('w1', tensor([C, 3, 3, 3], 0.5, next));
  const b1 = g.addInitializer('b1', tensor([C], 0.1, next));
  const w2 = g.addInitializer('w2', tensor([C, C, 3, 3], 0.3, next));
  const b2 = g.addInitializer('b2', tensor([C], 0.1, next));
  const conv = { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1], dilations: [1, 1], group: 1 };
  const h1 = g.addNode('Relu', [g.addNode('Conv', [x, w1, b1], conv, 'conv1')], {}, 'relu1');
  const h2 = g.addNode('Conv', [h1, w2, b2], conv, 'conv2');
  let skip = h1;
  if (variant.skip === 'constant') skip = g.addInitializer('shift', tensor([C, H, H], 0.5, next));
  if (variant.skip === 'broadcast') skip = g.addNode('GlobalAveragePool', [h1], {}, 'mean');
  let sum = g.addNode('Add', [h2, skip], {}, 'add');
  if (variant.relu !== false) sum = g.addNode('Relu', [sum], {}, 'relu2');
  const pooled = g.addNode('MaxPool', [sum], { kernel_shape: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0] }, 'pool');
  const flat = g.addNode('Flatten', [pooled], { axis: 1 }, 'flatten');
  const features = C * Math.floor(H / 2) ** 2;
  const wf = g.addInitializer('wf', tensor([CLASSES, features], 0.3, next));
  const bf = g.addInitializer('bf', tensor([CLASSES], 0.1, next));
  const logits = g.addNode('Gemm', [flat, wf, bf], { transB: 1 }, 'fc');
  return g.build([{ name: logits, dtype: 'float32', shape: ['N', CLASSES] }]);
}

function images(n: number, seed: number): Tensor<'float32'> {
  return tensor([n, 3, H, H], 1, random(seed));
}



const dir = mkdtempSync(join(tmpdir(), 'kiln-ptq-add-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const calibration = images(128, 1);
const held = images(200, 2);

describe('quantize: residual Add as QLinearAdd', () => {
  for (const activations of ['uint8', 'int8'] as const) {
    it(`${activations}: one Q at the input, int8 ops back to back, Add + Relu fused into one QLinearAdd`, async () => {
      const { graph, report } = await quantize(residualGraph(), calibration, { activations, reportImages: 0 });
      expect(graph.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'QLinearConv', 'QLinearConv', 'QLinearAdd', 'MaxPool', 'Flatten', 'QLinearGemm']);
      const byOp = (op: string) => graph.nodes.find((n) => n.op === op)!;
      const [conv1, conv2] = graph.nodes.filter((n) => n.op === 'QLinearConv');
      const add = byOp('QLinearAdd');
      // Both inputs are the int8 convolutions' quantized outputs (the skip reads conv1's), no DQ/Q between.
      expect(add.inputs).toEqual([conv2.outputs[0], conv1.outputs[0]]);
      expect(byOp('MaxPool').inputs[0]).toBe(add.outputs[0]);
      expect(add.attrs.kiln_activation).toBe('Relu');
      expect(add.attrs.y_dtype).toBe(activations);
      // Each side's parameters are those its producer writes.
      expect([add.attrs.a_scale, add.attrs.a_zero_point]).toEqual([conv2.attrs.y_scale, conv2.attrs.y_zero_point]);
      expect([add.attrs.b_scale, add.attrs.b_zero_point]).toEqual([conv1.attrs.y_scale, conv1.attrs.y_zero_point]);
      // The fused Relu's output range: zero maps to the lowest stored value (uint8) or to 0 (int8).
      expect(add.attrs.y_zero_point).toBe(0);
      expect(conv2.attrs.kiln_activation).toBeUndefined();
      expect(report.fp32Nodes).toEqual([]);
      expect(report.adds).toHaveLength(1);
      expect(report.adds![0]).toMatchObject({ node: 'add', activation: 'Relu', fusedNode: 'relu2', outputDtype: activations, outputScale: add.attrs.y_scale });
      expect(JSON.parse(graph.metadata!.kiln_quantization).adds).toHaveLength(1);
    });

    it(`${activations}: the native runtime equals the reference interpreter bit for bit; top-1 agrees with fp32`, async () => {
      const float = residualGraph();
      const { graph } = await quantize(float, calibration, { activations, reportImages: 0 });
      const native = await runNative(graph, held);
      const reference = runInt8Reference(graph, { x: held })[graph.outputs[0].name].data as Float32Array;
      expect(native.length).toBe(held.dims[0] * CLASSES);
      expect(Array.from(native)).toEqual(Array.from(reference));

      const fp32 = await runNative(float, held);
      // The int8 logits are not fp32's (the comparison below is not of a graph with itself).
      expect(native.some((v, i) => v !== fp32[i])).toBe(true);
      const a = argmaxRows(native, CLASSES);
      const b = argmaxRows(fp32, CLASSES);
      const agreement = a.filter((c, i) => c === b[i]).length / a.length;
      console.log(`residual graph, ${activations} activations: int8 vs fp32 top-1 agreement ${(agreement * 100).toFixed(1)}% on ${a.length} random images`);
      expect(agreement).toBeGreaterThanOrEqual(0.9);
    });
  }

  it("the report measures the Add's output like a layer's: clipping fraction and SQNR against fp32", async () => {
    const { report } = await quantize(residualGraph(), calibration, { reportImages: 32 });
    const add = report.adds![0];
    const conv2 = report.layers.find((l) => l.node === 'conv2')!;
    console.log(`residual graph: SQNR conv2 ${conv2.sqnrDb!.toFixed(1)} dB, add+relu ${add.sqnrDb!.toFixed(1)} dB; add clipping ${add.clippingFraction}`);
    // min/max calibration on the same images: nothing saturates; 8-bit outputs are tens of dB clean.
    expect(add.clippingFraction).toBe(0);
    expect(add.sqnrDb).toBeGreaterThan(25);
    expect(add.sqnrDb).toBeLessThan(80); // int8, not the fp32 value itself
  });

  it('an Add without a Relu after it: QLinearAdd without kiln_activation, bit-equal to the reference', async () => {
    const { graph, report } = await quantize(residualGraph({ relu: false }), calibration, { reportImages: 0 });
    const add = graph.nodes.find((n) => n.op === 'QLinearAdd')!;
    expect(add.attrs.kiln_activation).toBeUndefined();
    expect(add.attrs.y_zero_point).toBeGreaterThan(0); // the sum takes negative values
    expect(report.adds![0].fusedNode).toBeUndefined();
    expect(graph.nodes.filter((n) => n.op === 'QuantizeLinear' || n.op === 'DequantizeLinear')).toHaveLength(1);
    const native = await runNative(graph, held);
    expect(Array.from(native)).toEqual(Array.from(runInt8Reference(graph, { x: held })[graph.outputs[0].name].data as Float32Array));
  });

  it("onnxruntime on the QDQ export agrees with Kiln's int8 runtime", async () => {
    const { graph } = await quantize(residualGraph(), calibration, { reportImages: 0 });
    const path = join(dir, 'residual.optimized.onnx');
    const session = await ort.InferenceSession.create(exportModel(graph), { optimizedModelFilePath: path, logSeverityLevel: 3 });
    await session.release();
    const ops = (decodeModel(readFileSync(path)).graph?.node ?? []).map((n) => n.opType ?? '');
    console.log(`ORT's optimized graph of the residual QDQ export: ${ops.join(' ')}`);
    expect(ops).toContain('QLinearAdd'); // ORT fuses DQ -> Add -> Relu -> Q into its own int8 add
    const result = await compareInt8WithOnnxRuntime(graph, { x: held }, undefined, { intraOpNumThreads: 1 });
    const o = result.outputs[0];
    console.log(`residual graph: Kiln int8 vs ORT on the QDQ export: top-1 ${(o.top1Agreement * 100).toFixed(1)}%, max logit difference ${o.maxDiffSteps?.toFixed(2)} steps`);
    expect(result.engine).toBe('runtime');
    expect(o.top1Agreement).toBeGreaterThanOrEqual(0.98);
    // Integer kernels on both sides: a rounding tie apart at most.
    expect(o.maxDiffSteps).toBeLessThanOrEqual(1);
  });
});

describe('convertToInt8: Adds that stay fp32', () => {
  const allRanges = (prepared: Graph) => {
    const names = new Set<string>([prepared.inputs[0].name]);
    for (const n of prepared.nodes) for (const o of n.outputs) names.add(o);
    return new Map([...names].map((v) => [v, { min: -4, max: 4 }]));
  };

  it('an Add of a constant stays fp32 and the report says why', () => {
    const prepared = prepareForQuantization(residualGraph({ skip: 'constant' }));
    const { graph, report } = convertToInt8(prepared, allRanges(prepared));
    expect(graph.nodes.some((n) => n.op === 'QLinearAdd')).toBe(false);
    expect(report.fp32Nodes.find((n) => n.op === 'Add')?.reason).toMatch(/constant/);
    expect(report.adds).toBeUndefined();
  });

  it('an Add of a broadcast value stays fp32 (QLinearAdd does not broadcast); strict refuses it', () => {
    const prepared = prepareForQuantization(residualGraph({ skip: 'broadcast' }));
    const { graph, report } = convertToInt8(prepared, allRanges(prepared));
    expect(graph.nodes.some((n) => n.op === 'QLinearAdd')).toBe(false);
    expect(report.fp32Nodes.find((n) => n.op === 'Add')?.reason).toMatch(/\[N, 6, 7, 7\] and \[N, 6, 1, 1\].*no broadcasting/);
    // Its output is calibrated only as the input of the Relu after it (which could run as a lookup).
    const withoutRelu = prepareForQuantization(residualGraph({ skip: 'broadcast', relu: false }));
    expect(valuesToCalibrate(withoutRelu)).not.toContain(withoutRelu.nodes.find((n) => n.op === 'Add')!.outputs[0]);
    expect(() => convertToInt8(prepared, allRanges(prepared), { strict: true })).toThrow(/Add 'add'.*broadcasting/);
  });

  it('an Add whose output has no range (QAT observes none) stays fp32 instead of failing', () => {
    const prepared = prepareForQuantization(residualGraph());
    const relu2 = prepared.nodes.find((n) => n.name === 'relu2')!;
    const ranges = allRanges(prepared);
    expect(valuesToCalibrate(prepared)).toContain(relu2.outputs[0]);
    ranges.delete(relu2.outputs[0]);
    const { graph, report } = convertToInt8(prepared, ranges);
    expect(graph.nodes.map((n) => n.op)).not.toContain('QLinearAdd');
    expect(report.fp32Nodes.find((n) => n.op === 'Add')?.reason).toMatch(/no range/);
    // With the range, the same graph quantizes it.
    ranges.set(relu2.outputs[0], { min: 0, max: 4 });
    expect(convertToInt8(prepared, ranges).graph.nodes.map((n) => n.op)).toContain('QLinearAdd');
  });
});
