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
import { firstImages, testSet, trainedSeedCnn, trainSet } from './onnx-int8-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-int8-ptq-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


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

      const result = await compareInt8WithOnnxRuntime(graph, { [graph.inputs[0]!.name]: digits }, undefined, { intraOpNumThreads: 1 });
      const o = result.outputs[0]!;
      console.log(`PTQ ${dtype}: Kiln int8 (${result.engine}) vs ORT on the QDQ export over 2,000 digits: top-1 agreement ${(o.top1Agreement * 100).toFixed(2)}%, max logit difference ${o.maxDiffSteps?.toFixed(2)} steps`);
      expect(result.engine).toBe('runtime');
      expect(result.batch).toBe(2000);
      expect(o.top1Agreement).toBeGreaterThanOrEqual(0.999);
      // ORT runs uint8 models on integer kernels: a rounding tie at most apart.
      if (dtype === 'uint8') expect(o.maxDiffSteps).toBeLessThanOrEqual(1);
    });
  }
});
