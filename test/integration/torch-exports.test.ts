/**
 * Small PyTorch exports (issue 14): every file in test/fixtures/torch (made by
 * bench/models/export_small.py: reduced-width torchvision architectures and small ResNet-,
 * EfficientNet-, ConvNeXt- and detection-style nets, randomly initialised with a fixed seed,
 * exported by the dynamo exporter at opset 21 and the TorchScript exporter at opset 17 with a
 * dynamic batch) is imported by Kiln and compared with onnxruntime-node on seeded image-like
 * 64x64 inputs at batch 1 and 2: relative L2 <= 1e-4 and the same top-1 on every row. The two rows
 * of the batch-2 input must give outputs that differ by more than 1e-3 relative (in
 * onnxruntime), so that a match shows Kiln follows the input rather than a constant.
 *
 * One file is a known refusal, checked as such: the dynamo export of the ConvNeXt-style net
 * computes its LayerNorm through Shape on the dynamic batch and Range (as ConvNeXt-Tiny's does in
 * bench/results/real-models.md), which Kiln does not run.
 *
 *   KILN_TORCH_EXPORTS_LOG=1 npx vitest run test/integration/torch-exports.test.ts   (prints relL2s)
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';

import { imageLike } from '../../bench/image-like.js';
import { ErrorCode, KilnError } from '../../src/errors.js';
import { compareGraphWithModel } from '../../src/onnx/compare.js';
import { importModel } from '../../src/onnx/import.js';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'torch');
const HW = 64;
const FILES = readdirSync(DIR)
  .filter((f) => f.endsWith('.onnx'))
  .sort();

/**
 * Files Kiln refuses to import, with what the refusal must name. (None today: the dynamo
 * ConvNeXt, whose head Gathers with indices built from Range over the batch, runs since
 * src/onnx/batch-index.ts.)
 */
const REFUSED: Record<string, RegExp> = {};

/** ‖y0 − y1‖ / ‖y1‖ for onnxruntime's outputs on the two rows of a batch-2 input. */
async function rowSensitivity(path: string): Promise<number> {
  const x = imageLike(2, 2, HW);
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x.data as Float32Array, [2, 3, HW, HW]) });
    const y = out[session.outputNames[0]!]!.data as Float32Array;
    const per = y.length / 2;
    let d2 = 0;
    let n2 = 0;
    for (let j = 0; j < per; j++) {
      const d = y[j]! - y[per + j]!;
      d2 += d * d;
      n2 += y[per + j]! * y[per + j]!;
    }
    return Math.sqrt(d2 / n2);
  } finally {
    await session.release();
  }
}

describe('PyTorch exports (test/fixtures/torch) against onnxruntime-node', () => {
  it('has the committed files', () => {
    expect(FILES.length).toBeGreaterThanOrEqual(12);
    expect(FILES.some((f) => f.includes('dynamo-op21'))).toBe(true);
    expect(FILES.some((f) => f.includes('torchscript-op17'))).toBe(true);
  });

  for (const file of FILES.filter((f) => REFUSED[f] !== undefined)) {
    it(`${file}: refused with UNSUPPORTED_OP (known gap)`, async () => {
      const err = await importModel(join(DIR, file)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KilnError);
      expect((err as KilnError).code).toBe(ErrorCode.UNSUPPORTED_OP);
      expect((err as KilnError).message).toMatch(REFUSED[file]!);
    });
  }

  for (const file of FILES.filter((f) => REFUSED[f] === undefined)) {
    it(`${file}: matches at batch 1 and 2, and its output depends on the input`, async () => {
      const path = join(DIR, file);
      const graph = await importModel(path);
      const input = graph.inputs[0]!.name;
      for (const [batch, seed] of [
        [1, 1],
        [2, 2],
      ] as const) {
        const res = await compareGraphWithModel(graph, path, { [input]: imageLike(batch, seed, HW) }, { intraOpNumThreads: 1 });
        expect(res.batch).toBe(batch);
        for (const o of res.outputs) {
          if (process.env.KILN_TORCH_EXPORTS_LOG) console.log(`${file} batch ${batch} ${o.name}: relL2 ${o.relL2.toExponential(2)} top1 ${o.top1Agreement}`);
          expect(o.relL2, `${file} batch ${batch} ${o.name} relL2`).toBeLessThanOrEqual(1e-4);
          expect(o.top1Agreement, `${file} batch ${batch} ${o.name} top-1`).toBe(1);
        }
      }
      const sensitivity = await rowSensitivity(path);
      if (process.env.KILN_TORCH_EXPORTS_LOG) console.log(`${file} sensitivity ${sensitivity.toExponential(2)}`);
      expect(sensitivity, `${file}: the two rows' outputs differ`).toBeGreaterThan(1e-3);
    });
  }
});
