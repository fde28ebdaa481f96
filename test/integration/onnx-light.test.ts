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
import { open, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

import { compareWithOnnxRuntime } from '../../src/onnx/compare.js';
import { importModel } from '../../src/onnx/import.js';
import { DataType, decodeForEdit, encodeModel, int64ToNumber, onnx } from '../../src/onnx/proto.js';
import { tensorFromProto } from '../../src/onnx/tensor-proto.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';

const LIGHT = resolve(process.cwd(), '..', 'shared', 'onnx-light');
const MODELS = ['bvlc_alexnet', 'resnet50', 'squeezenet', 'vgg19'];
const present = existsSync(LIGHT);

/** Fills `out` with seeded uniform values in [lo, hi) (xorshift32: fast enough for VGG's 143M weights). */
function fillUniform(out: Float32Array, state: { s: number }, lo: number, hi: number): void {
  let s = state.s;
  const scale = (hi - lo) / 4294967296;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = lo + (s >>> 0) * scale;
  }
  state.s = s;
}

/**
 * Writes the model into `dir` with each ConstantOfShape weight replaced by an initializer of
 * seeded random values, stored as ONNX external data (weights.bin) so nothing re-encodes hundreds
 * of megabytes: conv/fc weights Kaiming-uniform (bound sqrt(6 / fan_in)), batch-norm scale and
 * variance in [0.5, 1.5], biases, shifts and means in [-0.1, 0.1] — so activations neither vanish
 * nor explode through 50 layers. Returns the model's path.
 */
export async function writeRandomizedModel(bytes: Uint8Array, dir: string, seed: number): Promise<string> {
  const m = decodeForEdit(bytes);
  const g = m.graph;
  const state = { s: (seed * 2654435761) | 1 };
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const consumers = new Map<string, { op: string; index: number; transB: boolean }>();
  for (const n of g.node) {
    n.input.forEach((name, index) => {
      const transB = n.attribute.some((a) => a.name === 'transB' && int64ToNumber(a.i, 'transB') === 1);
      consumers.set(name, { op: n.opType, index, transB });
    });
  }
  const file = await open(join(dir, 'weights.bin'), 'w');
  let offset = 0;
  const dropped = new Set<string>();
  const kept: typeof g.node = [];
  try {
    for (const n of g.node) {
      if (n.opType !== 'ConstantOfShape') {
        kept.push(n);
        continue;
      }
      const shapeName = n.input[0]!;
      const dims = Array.from(tensorFromProto(inits.get(shapeName)!, shapeName).data as Int32Array);
      const size = dims.reduce((a, b) => a * b, 1);
      const use = consumers.get(n.output[0]!)!;
      const data = new Float32Array(size);
      if (use.index === 1 && (use.op === 'Conv' || use.op === 'Gemm')) {
        const fanIn = use.op === 'Conv' ? dims.slice(1).reduce((a, b) => a * b, 1) : use.transB ? dims[1]! : dims[0]!;
        const bound = Math.sqrt(6 / fanIn);
        fillUniform(data, state, -bound, bound);
      } else if (use.op === 'BatchNormalization' && (use.index === 1 || use.index === 4)) {
        fillUniform(data, state, 0.5, 1.5);
      } else {
        fillUniform(data, state, -0.1, 0.1);
      }
      await file.write(new Uint8Array(data.buffer));
      const external = [['location', 'weights.bin'], ['offset', String(offset)], ['length', String(data.byteLength)]].map(([key, value]) => ({ key: key!, value: value! }));
      g.initializer.push({ ...inits.get(shapeName)!, name: n.output[0]!, dims, dataType: DataType.FLOAT, rawData: new Uint8Array(0), int64Data: [], dataLocation: 1, externalData: external });
      offset += data.byteLength;
      dropped.add(shapeName);
    }
  } finally {
    await file.close();
  }
  g.node = kept;
  g.initializer = g.initializer.filter((t) => !dropped.has(t.name));
  g.input = g.input.filter((i) => !dropped.has(i.name));
  const path = join(dir, 'model.onnx');
  await writeFile(path, encodeModel(m));
  return path;
}

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

    it(`${name}: with seeded Kaiming-scaled weights agrees with onnxruntime (relL2 <= 1e-4, same top-1)`, async () => {
      const dir = mkdtempSync(join(tmpdir(), `kiln-light-${name}-`));
      try {
        const path = await writeRandomizedModel(readFileSync(join(LIGHT, `light_${name}.onnx`)), dir, 7);
        // Kiln reads the weights through its external-data loader; ORT reads the same files.
        const result = await compareWithOnnxRuntime(path, 1, { seed: 3 });
        expect(result.outputs).toHaveLength(1);
        const [out] = result.outputs;
        expect(out!.relL2).toBeLessThanOrEqual(1e-4);
        expect(out!.top1Agreement).toBe(1);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe.skipIf(present)('onnx-light CNNs', () => {
  it(`skipped: ${LIGHT} is absent`, () => {});
});
