/**
 * Kiln's QDQ export of an int8 SeedCNN, checked by onnxruntime-node: ORT fuses every Conv and
 * Gemm back into QLinearConv / QGemm (read from its optimized model file), and its outputs are
 * bit-identical to those of an independently built QDQ model of the same quantized network.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Sequential } from '../../src/nn/layers/sequential.js';
import { exportModel, importModel } from '../../src/onnx/index.js';
import { decodeModel } from '../../src/onnx/proto.js';
import { runInt8Reference } from '../../src/quant/reference.js';
import { Tensor } from '../../src/tensor.js';
import { firstImages, int8Graph, qdqModel, quantizeSeedCnn, testSet, trainedSeedCnn, type QuantSeedCnn } from './onnx-int8-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-int8-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a model on ORT; returns the logits and the op types of ORT's optimized graph. */
async function runOrt(model: Uint8Array, x: Tensor<'float32'>, tag: string): Promise<{ logits: Float32Array; ops: string[] }> {
  const path = join(dir, `${tag}.optimized.onnx`);
  const session = await ort.InferenceSession.create(model, { optimizedModelFilePath: path, graphOptimizationLevel: 'all', intraOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    const out = await session.run({ input: new ort.Tensor('float32', x.data, x.dims.slice()) });
    const ops = (decodeModel(readFileSync(path)).graph?.node ?? []).map((n) => n.opType ?? '');
    return { logits: out.logits!.data as Float32Array, ops };
  } finally {
    await session.release();
  }
}

function count(ops: string[], op: string): number {
  return ops.filter((o) => o === op).length;
}

describe('QDQ export of an int8 SeedCNN', () => {
  let net: Sequential;
  const digits = firstImages(testSet, 2000);
  beforeAll(async () => {
    net = await trainedSeedCnn();
  });

  for (const dtype of ['uint8', 'int8'] as const) {
    it(`${dtype} activations: ORT fuses it (uint8: every Conv and Gemm) and matches an independent QDQ model bit for bit`, async () => {
      const q: QuantSeedCnn = await quantizeSeedCnn(net, firstImages(testSet, 256), dtype);
      const bytes = exportModel(int8Graph(q));
      const ours = await runOrt(bytes, digits, `kiln-${dtype}`);
      console.log(`ORT's optimized graph of Kiln's ${dtype} QDQ export: ${ours.ops.join(' ')}`);
      if (dtype === 'uint8') {
        expect(count(ours.ops, 'QLinearConv')).toBe(2);
        expect(count(ours.ops, 'QGemm')).toBe(2);
        for (const float of ['Conv', 'FusedConv', 'Gemm', 'FusedGemm', 'MatMul', 'DequantizeLinear']) expect(count(ours.ops, float)).toBe(0);
      } else {
        // onnxruntime 1.30 on x86 fuses int8-activation (s8s8) Gemm but leaves s8s8 Conv as DQ -> Conv -> Q.
        expect(count(ours.ops, 'QGemm')).toBeGreaterThanOrEqual(1);
      }

      // Weights stay int8 and biases int32 in the file; the metadata travels along.
      const model = decodeModel(bytes);
      const init = new Map((model.graph?.initializer ?? []).map((t) => [t.name, t.dataType]));
      expect([init.get('w0'), init.get('w3'), init.get('b0'), init.get('b3')]).toEqual([3, 3, 6, 6]);
      expect(model.metadataProps?.some((p) => p.key === 'kiln_quantization')).toBe(true);

      const reference = await runOrt(qdqModel(q), digits, `fixture-${dtype}`);
      expect(ours.logits.length).toBe(20000);
      expect(Buffer.from(ours.logits.buffer).equals(Buffer.from(reference.logits.buffer))).toBe(true);

      // Kiln's int8 semantics (the reference interpreter, first 100 digits: it is plain JS) vs ORT
      // on the export: same top-1; with uint8 activations (ORT runs QLinearConv/QGemm: integers)
      // within one accumulator step (a_scale * w_scale[o]) on every logit. With int8 activations
      // ORT runs the convolutions in float between DQ and Q, so a rounding tie can move a hidden
      // activation by one step and the logits by many accumulator steps.
      const n = 100;
      const ref = runInt8Reference(int8Graph(q), { input: new Tensor('float32', digits.data.subarray(0, n * 784), [n, 1, 28, 28]) }).logits!.data;
      const step = q.layers[3]!.wScale.map((s) => Math.fround(q.layers[2]!.out!.scale * s));
      let worst = 0;
      let agree = 0;
      for (let r = 0; r < n; r++) {
        let [a, b] = [0, 0];
        for (let c = 0; c < 10; c++) {
          worst = Math.max(worst, Math.abs(ref[r * 10 + c]! - ours.logits[r * 10 + c]!) / step[c]!);
          if (ref[r * 10 + c]! > ref[r * 10 + a]!) a = c;
          if (ours.logits[r * 10 + c]! > ours.logits[r * 10 + b]!) b = c;
        }
        if (a === b) agree++;
      }
      console.log(`${dtype}: int8 reference vs ORT on the QDQ export: ${worst.toFixed(3)} steps at most, top-1 agreement ${agree}/${n}`);
      if (dtype === 'uint8') expect(worst).toBeLessThanOrEqual(1);
      expect(agree).toBe(n);

      // And back: importing the export gives the same int8 graph (ops, parameters, weights).
      const original = int8Graph(q);
      const back = await importModel(bytes);
      expect(back.nodes.map((n) => n.op)).toEqual(original.nodes.map((n) => n.op));
      back.nodes.forEach((n, i) => {
        const o = original.nodes[i]!;
        for (const key of ['x_scale', 'x_zero_point', 'a_scale', 'a_zero_point', 'y_scale', 'y_zero_point', 'y_dtype', 'kiln_activation', 'scale', 'zero_point', 'dtype', 'transB']) {
          expect([key, n.attrs[key]]).toEqual([key, o.attrs[key]]);
        }
        n.inputs.slice(1).forEach((name, k) => expect(back.initializers.get(name)?.data).toEqual(original.initializers.get(o.inputs[k + 1]!)?.data));
      });
    });
  }

});
