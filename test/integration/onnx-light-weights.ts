/**
 * Test helper: an onnx-light model with its ConstantOfShape weights replaced by seeded
 * Kaiming-scaled random values, written as ONNX external data.
 */
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { DataType, decodeForEdit, encodeModel, int64ToNumber } from '../../src/onnx/proto.js';
import { tensorFromProto } from '../../src/onnx/tensor-proto.js';

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
 * of megabytes, and the logits as a second graph output: conv/fc weights Kaiming-uniform (bound sqrt(6 / fan_in)), batch-norm scale and
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
  // Also expose the logits (the input of the final Softmax): with random weights the softmax
  // output can saturate to one-hot, which would hide arithmetic errors.
  const softmax = kept.filter((n) => n.opType === 'Softmax').pop();
  if (softmax) g.output.push({ name: softmax.input[0]!, type: { tensorType: { elemType: DataType.FLOAT } } } as never);
  g.initializer = g.initializer.filter((t) => !dropped.has(t.name));
  g.input = g.input.filter((i) => !dropped.has(i.name));
  const path = join(dir, 'model.onnx');
  await writeFile(path, encodeModel(m));
  return path;
}
