/**
 * Issue #4 acceptance, imported int8: a QDQ model and a QOperator model of a trained SeedCNN,
 * built node by node with protobufjs (per-channel int8 weights, uint8 activations), import into
 * whole int8 regions of Kiln's IR (no float Conv/Gemm left), and the imported graph, run on Kiln's
 * native int8 runtime, computes what onnxruntime computes from the original file: every logit within
 * one quantization step and the same top-1 on the 2,000 held-out digits. ORT on Kiln's QDQ re-export
 * of the imported graph (2,000 digits) and the int8 reference interpreter (250) must agree as well.
 */
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';

import type { Graph } from '../../src/graph/ir.js';
import { exportModel, importModel } from '../../src/onnx/index.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor as TensorClass, type Tensor } from '../../src/tensor.js';
import { firstImages, qdqModel, qoperatorModel, quantizeSeedCnn, testSet, trainedSeedCnn, type QuantSeedCnn } from './onnx-int8-fixtures.js';

async function runOrt(model: Uint8Array, x: Tensor<'float32'>): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x.data, x.dims.slice()) });
    return out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

/** Largest |a - b| in units of each logit's quantization step, and top-1 agreement. */
function compareLogits(a: Float32Array, b: Float32Array, step: Float32Array): { steps: number; agree: number } {
  let steps = 0;
  let agree = 0;
  const classes = step.length;
  for (let r = 0; r < a.length / classes; r++) {
    let ia = 0;
    let ib = 0;
    for (let c = 0; c < classes; c++) {
      const i = r * classes + c;
      steps = Math.max(steps, Math.abs(a[i]! - b[i]!) / step[c]!);
      if (a[i]! > a[r * classes + ia]!) ia = c;
      if (b[i]! > b[r * classes + ib]!) ib = c;
    }
    if (ia === ib) agree++;
  }
  return { steps, agree };
}

/** The imported graph on Kiln's native int8 runtime. */
async function runKiln(graph: Graph, x: Tensor<'float32'>): Promise<Float32Array> {
  const session = await InferenceSession.create(graph, { intraOpNumThreads: 1 });
  try {
    const out = await session.run({ [session.inputNames[0]!]: x });
    return out[session.outputNames[0]!]!.data;
  } finally {
    session.release();
  }
}

/**
 * The imported graph on Kiln's int8 reference interpreter, over the first REFERENCE_DIGITS digits
 * (plain-JS float64 loops: all 2,000 take over a minute) and ORT's logits for those.
 */
const REFERENCE_DIGITS = 250;
function runReference(graph: Graph, x: Tensor<'float32'>, theirs: Float32Array): [Float32Array, Float32Array] {
  const n = REFERENCE_DIGITS;
  const sub = new TensorClass('float32', x.data.subarray(0, n * 784), [n, 1, 28, 28]);
  const out = runInt8Reference(graph, { [graph.inputs[0]!.name]: sub })[graph.outputs[0]!.name]!.data as Float32Array;
  return [out, theirs.subarray(0, n * 10)];
}

function ops(g: Graph): string[] {
  return g.nodes.map((n) => n.op);
}

/**
 * Kiln's int8 runtime, ORT on Kiln's QDQ re-export and the int8 reference interpreter each within
 * one quantization step (`step` per logit) of ORT on the original file, with the same top-1.
 */
async function expectLikeOrt(model: string, graph: Graph, digits: Tensor<'float32'>, theirs: Float32Array, step: Float32Array): Promise<void> {
  const runs = [
    ['Kiln\'s int8 runtime', await runKiln(graph, digits), theirs],
    ['ORT on Kiln\'s QDQ re-export', await runOrt(exportModel(graph), digits), theirs],
    ['the int8 reference interpreter', ...runReference(graph, digits, theirs)],
  ] as const;
  for (const [who, ours, ref] of runs) {
    const { steps, agree } = compareLogits(ours, ref, step);
    console.log(`${model} imported, ${who} vs ORT on the file: max logit difference ${steps.toFixed(3)} steps, top-1 agreement ${agree}/${ours.length / 10}`);
    expect(steps).toBeLessThanOrEqual(1);
    expect(agree).toBe(ours.length / 10);
  }
}

describe('int8 ONNX models quantized elsewhere (acceptance)', () => {
  let q: QuantSeedCnn;
  const digits = firstImages(testSet, 2000);
  beforeAll(async () => {
    const net = await trainedSeedCnn();
    q = await quantizeSeedCnn(net, firstImages(testSet, 256), 'uint8');
  });

  it('QDQ SeedCNN: one QLinearConv/QLinearGemm per layer, ReLUs fused, same logits as ORT on the original file', async () => {
    const bytes = qdqModel(q);
    const graph = await importModel(bytes);
    expect(ops(graph)).toEqual(['QuantizeLinear', 'QLinearConv', 'MaxPool', 'QLinearConv', 'MaxPool', 'Reshape', 'QLinearGemm', 'QLinearGemm', 'Identity']);
    expect(graph.nodes.filter((n) => n.attrs.kiln_activation === 'Relu').length).toBe(3);
    // The weights stay int8 per channel, the biases int32.
    const conv = graph.nodes[1]!;
    expect(graph.initializers.get(conv.inputs[1]!)?.type).toBe('int8');
    expect(graph.initializers.get(conv.inputs[2]!)?.size).toBe(32);
    expect(graph.initializers.get(conv.inputs[3]!)?.type).toBe('int32');

    const theirs = await runOrt(bytes, digits);
    // Float logits: one step is one accumulator unit, a_scale * w_scale[o].
    const last = q.layers[3]!;
    const step = last.wScale.map((s) => Math.fround(q.layers[2]!.out!.scale * s));
    await expectLikeOrt('QDQ SeedCNN', graph, digits, theirs, step);
  });

  it('QOperator SeedCNN: QLinearConv, QGemm, QLinearMatMul map one to one, same logits as ORT on the original file', async () => {
    const bytes = qoperatorModel(q);
    const graph = await importModel(bytes);
    expect(ops(graph)).toEqual(['QuantizeLinear', 'QLinearConv', 'MaxPool', 'QLinearConv', 'MaxPool', 'Flatten', 'QLinearGemm', 'QLinearGemm', 'DequantizeLinear', 'Add']);
    const theirs = await runOrt(bytes, digits);
    const step = new Float32Array(10).fill(Math.fround(q.logitSpan / 127));
    await expectLikeOrt('QOperator SeedCNN', graph, digits, theirs, step);
  });
});
