/**
 * Issue #4 acceptance, imported int8: a QDQ model and a QOperator model of a trained SeedCNN,
 * built node by node with protobufjs (per-channel int8 weights, uint8 activations), import into
 * whole int8 regions of Kiln's IR (no float Conv/Gemm left), and the imported graph computes what
 * onnxruntime computes from the original file: every logit within one quantization step and the
 * same top-1 on the 2,000 held-out digits.
 */
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';

import type { Graph } from '../../src/graph/ir.js';
import { exportModel, importModel } from '../../src/onnx/index.js';
import type { Tensor } from '../../src/tensor.js';
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

function ops(g: Graph): string[] {
  return g.nodes.map((n) => n.op);
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

    const ours = await runOrt(exportModel(graph), digits);
    const theirs = await runOrt(bytes, digits);
    // Float logits: one step is one accumulator unit, a_scale * w_scale[o].
    const last = q.layers[3]!;
    const step = last.wScale.map((s) => Math.fround(q.layers[2]!.out!.scale * s));
    const { steps, agree } = compareLogits(ours, theirs, step);
    console.log(`QDQ SeedCNN imported: max logit difference ${steps.toFixed(3)} steps, top-1 agreement ${agree}/2000`);
    expect(steps).toBeLessThanOrEqual(1);
    expect(agree).toBe(2000);
  });

  it('QOperator SeedCNN: QLinearConv, QGemm, QLinearMatMul map one to one, same logits as ORT on the original file', async () => {
    const bytes = qoperatorModel(q);
    const graph = await importModel(bytes);
    expect(ops(graph)).toEqual(['QuantizeLinear', 'QLinearConv', 'MaxPool', 'QLinearConv', 'MaxPool', 'Flatten', 'QLinearGemm', 'QLinearGemm', 'DequantizeLinear', 'Add']);
    const ours = await runOrt(exportModel(graph), digits);
    const theirs = await runOrt(bytes, digits);
    const step = new Float32Array(10).fill(q.logitSpan / 127);
    const { steps, agree } = compareLogits(ours, theirs, step);
    console.log(`QOperator SeedCNN imported: max logit difference ${steps.toFixed(3)} steps, top-1 agreement ${agree}/2000`);
    expect(steps).toBeLessThanOrEqual(1);
    expect(agree).toBe(2000);
  });
});
