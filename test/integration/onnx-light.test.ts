/**
 * The four "light" ImageNet CNNs from the ONNX backend tests (AlexNet, ResNet-50, SqueezeNet 1.0,
 * VGG-19; opset 9, Caffe2 exports) imported and run on Kiln:
 * 1. with their constant weights, against the expected outputs the ONNX reference evaluator
 *    computed (x[i] = i / n; rtol 1e-3, atol 1e-7) — the graph loads and runs;
 * 2. with every ConstantOfShape weight replaced by seeded Kaiming-scaled random values, against
 *    onnxruntime-node running the same file on random inputs — the arithmetic is right.
 * Reads ../shared/onnx-light next to the repository; skips, saying so, when it is absent.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

import { compareWithOnnxRuntime } from '../../src/onnx/compare.js';
import { importModel } from '../../src/onnx/import.js';
import { onnx } from '../../src/onnx/proto.js';
import { tensorFromProto } from '../../src/onnx/tensor-proto.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { writeRandomizedModel } from './onnx-light-weights.js';

const LIGHT = resolve(process.cwd(), '..', 'shared', 'onnx-light');
const MODELS = ['bvlc_alexnet', 'resnet50', 'squeezenet', 'vgg19'];
const present = existsSync(LIGHT);

describe.runIf(present)('onnx-light CNNs on Kiln', () => {
  for (const name of MODELS) {
    it(`${name}: matches the ONNX reference output (constant weights, x[i] = i/n)`, async () => {
      const graph = await importModel(join(LIGHT, `light_${name}.onnx`));
      const input = graph.inputs[0]!;
      const dims = input.shape as number[];
      const n = dims.reduce((a, b) => a * b, 1);
      const x = new Float32Array(n);
      for (let i = 0; i < n; i++) x[i] = i / n;
      const session = await InferenceSession.create(graph);
      const out = await session.run({ [input.name]: new Tensor('float32', x, dims) });
      session.release();
      const expected = tensorFromProto(onnx.TensorProto.decode(readFileSync(join(LIGHT, `light_${name}_output_0.pb`))), 'expected');
      const got = out[graph.outputs[0]!.name]!;
      expect(got.dims).toEqual(expected.dims);
      let worst = 0;
      for (let i = 0; i < expected.size; i++) {
        const e = expected.data[i]!;
        worst = Math.max(worst, Math.abs(got.data[i]! - e) - (1e-7 + 1e-3 * Math.abs(e)));
      }
      expect(worst).toBeLessThanOrEqual(0);
    });

    it(`${name}: with seeded Kaiming-scaled weights agrees with onnxruntime (logits relL2 <= 1e-4, same top-1)`, async () => {
      const dir = mkdtempSync(join(tmpdir(), `kiln-light-${name}-`));
      try {
        const path = await writeRandomizedModel(readFileSync(join(LIGHT, `light_${name}.onnx`)), dir, 7);
        // Kiln reads the weights through its external-data loader; ORT reads the same files.
        const result = await compareWithOnnxRuntime(path, 1, { seed: 3 });
        // The softmax output and the logits feeding it (exposed by writeRandomizedModel).
        expect(result.outputs).toHaveLength(2);
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

describe.skipIf(present)('onnx-light CNNs', () => {
  it(`skipped: ${LIGHT} is absent`, () => {});
});
