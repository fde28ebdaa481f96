/**
 * Seeded fuzzing of importModel: 2,000 mutations of valid models (byte flips, truncations,
 * insertions, and edits of decoded fields: op types, inputs, attributes, dims, data types,
 * opsets). Every outcome must be a graph or a KilnError — never a crash, never another error
 * type — and a graph that imports must also export (or refuse with a KilnError). A second pass
 * takes mutations down to the kernels: every model that imports builds a session and runs a
 * forward pass, or fails with a stable Kiln code (npm run test:asan runs it sanitized, with
 * KILN_FUZZ_CASES in the thousands).
 */
import { describe, expect, it } from 'vitest';

import { KilnError } from '../../src/errors.js';
import { exportModel } from '../../src/onnx/export.js';
import { importModel } from '../../src/onnx/import.js';
import { AttributeType, decodeForEdit, encodeModel, onnx } from '../../src/onnx/proto.js';
import { seedCNN } from '../../src/nn/models.js';
import { quantize } from '../../src/quant/ptq.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { fuzzCases, mutateBytes, Outcomes, strayError } from '../fuzz/mutate.js';
import { createAndRun } from '../fuzz/run-model.js';
import { attr, int64Tensor, model, node, smallCnn, valueInfo } from './onnx-model-builder.js';

/** The small CNN, and an opset-9 variant with a ConstantOfShape weight like the onnx-light files. */
function bases(): Uint8Array[] {
  const a = model(smallCnn());
  const spec = smallCnn();
  spec.opset = 9;
  spec.initializers = spec.initializers!.filter((t) => t.name !== 'conv.w' && t.name !== 'axes0');
  spec.initializers.push(int64Tensor('conv.w__SHAPE', [4], [4, 1, 3, 3]));
  spec.inputs.push(valueInfo('conv.w__SHAPE', [4]));
  spec.nodes.unshift(node('ConstantOfShape', ['conv.w__SHAPE'], ['conv.w'], [attr.t('value', { dims: [1], dataType: 1, floatData: [0.02] })], 'fill'));
  spec.nodes[spec.nodes.findIndex((n) => n.opType === 'Unsqueeze')] = node('Unsqueeze', ['n'], ['n1'], [attr.ints('axes', [0])], 'unsqueeze');
  spec.nodes[spec.nodes.findIndex((n) => n.opType === 'Softmax')] = node('Softmax', ['logits'], ['probs'], [], 'softmax');
  return [a, model(spec)];
}

const OPS = ['Relu', 'Conv', 'Foo', 'Add', 'Reshape', 'Softmax', 'Concat', 'MaxPool', 'Gemm', 'Shape', 'Gather', 'Squeeze', 'Pad', 'Clip', 'ConstantOfShape', 'Flatten', 'Transpose'];
const INTS = [-1, 0, 1, 2, 3, 7, 1e9, -(2 ** 40), 2 ** 40];

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

/** One decoded-field edit. */
function editFields(bytes: Uint8Array, rng: Rng): Uint8Array {
  const m = decodeForEdit(bytes);
  const g = m.graph!;
  const nodes = g.node;
  const n = nodes[rng.int(nodes.length)]!;
  const values = [...new Set(nodes.flatMap((x) => [...x.input, ...x.output]))];
  switch (rng.int(12)) {
    case 0: n.opType = pick(rng, OPS); break;
    case 1: if (n.input.length) n.input[rng.int(n.input.length)] = pick(rng, [...values, '', 'ghost']); break;
    case 2: n.input.push(pick(rng, values)); break;
    case 3: {
      const a = n.attribute[rng.int(Math.max(1, n.attribute.length))];
      if (a) {
        if (a.ints.length) a.ints[rng.int(a.ints.length)] = pick(rng, INTS);
        else a.i = pick(rng, INTS);
        if (rng.next() < 0.2) a.type = rng.int(16) as AttributeType_;
      } else {
        n.attribute.push(onnx.AttributeProto.create(pick(rng, [attr.i('axis', pick(rng, INTS)), attr.ints('pads', [1, 2]), attr.s('auto_pad', 'SAME_UPPER'), attr.f('alpha', NaN)])) as never);
      }
      break;
    }
    case 4: {
      const t = g.initializer[rng.int(g.initializer.length)]!;
      if (t.dims.length) t.dims[rng.int(t.dims.length)] = pick(rng, INTS);
      break;
    }
    case 5: g.initializer[rng.int(g.initializer.length)]!.dataType = rng.int(26); break;
    case 6: {
      const t = g.initializer[rng.int(g.initializer.length)]!;
      if (t.floatData.length) t.floatData.length = rng.int(t.floatData.length);
      if (t.rawData.length) t.rawData = t.rawData.subarray(0, rng.int(t.rawData.length));
      if (t.int64Data.length) t.int64Data[0] = pick(rng, INTS);
      break;
    }
    case 7: {
      const dims = g.input[0]!.type!.tensorType!.shape!.dim;
      const d = dims[rng.int(dims.length)]!;
      d.dimValue = pick(rng, INTS);
      d.dimParam = '';
      break;
    }
    case 8: g.input[0]!.type!.tensorType!.elemType = rng.int(26); break;
    case 9: m.opsetImport[0]!.version = pick(rng, [1, 6, 7, 9, 11, 13, 17, 21, 22, 30]); break;
    case 10: nodes.splice(rng.int(nodes.length), 1); break;
    default: {
      const i = rng.int(nodes.length);
      const j = rng.int(nodes.length);
      [nodes[i], nodes[j]] = [nodes[j]!, nodes[i]!];
    }
  }
  return encodeModel(m);
}
type AttributeType_ = (typeof AttributeType)[keyof typeof AttributeType];

function mutate(bytes: Uint8Array, rng: Rng): Uint8Array {
  const out = Uint8Array.from(bytes);
  switch (rng.int(4)) {
    case 0: {
      for (let k = 1 + rng.int(8); k > 0; k--) out[rng.int(out.length)] = rng.int(256);
      return out;
    }
    case 1:
      return out.subarray(0, rng.int(out.length));
    case 2: {
      const at = rng.int(out.length);
      const junk = Uint8Array.from({ length: 1 + rng.int(16) }, () => rng.int(256));
      return Uint8Array.from([...out.subarray(0, at), ...junk, ...out.subarray(at)]);
    }
    default:
      return editFields(bytes, rng);
  }
}

describe('importModel fuzzing', () => {
  it('2,000 seeded mutations: every outcome is a graph or a KilnError', async () => {
    const rng = new Rng(20240611);
    const seeds = bases();
    const outcomes = { imported: 0, exported: 0, kilnErrors: new Map<string, number>() };
    const strays: string[] = [];
    for (let k = 0; k < 2000; k++) {
      const bytes = mutate(seeds[k % seeds.length]!, rng);
      try {
        const g = await importModel(bytes);
        outcomes.imported++;
        exportModel(g);
        outcomes.exported++;
      } catch (err) {
        if (err instanceof KilnError) outcomes.kilnErrors.set(err.code, (outcomes.kilnErrors.get(err.code) ?? 0) + 1);
        else strays.push(`mutation ${k}: ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
      }
    }
    expect(strays.slice(0, 10)).toEqual([]);
    // The fuzzer exercises both sides: some mutations still import, many are refused.
    expect(outcomes.imported).toBeGreaterThan(100);
    expect(outcomes.kilnErrors.get('ERR_KILN_CORRUPT_MODEL') ?? 0).toBeGreaterThan(300);
    expect(outcomes.kilnErrors.get('ERR_KILN_UNSUPPORTED_OP') ?? 0).toBeGreaterThan(10);
  });

  it('seeded mutations that import also build a session and run, or fail with a stable Kiln code', async () => {
    // The float bases and a QDQ int8 model (a quantized SeedCNN, exported), for the int8 kernels.
    const net = seedCNN({ inChannels: 1, height: 12, width: 12, numClasses: 5, widthMultiplier: 0.5, seed: 4 });
    const calibration = new Tensor('float32', new Float32Array(8 * 144).map((_, i) => 0.5 + 0.5 * Math.sin(i * 0.37)), [8, 1, 12, 12]);
    const seeds = [...bases(), exportModel((await quantize(net, calibration, { reportImages: 0 })).graph)];
    for (const bytes of seeds) expect(await createAndRun(await importModel(bytes), new Rng(1))).toBe('ran');
    const rng = new Rng(20261203);
    const cases = fuzzCases(300);
    const outcomes = new Outcomes();
    const started = Date.now();
    for (let k = 0; k < cases; k++) {
      // A third of the cases take the shared raw edits (splices, absurd length fields) instead.
      const seed = seeds[k % seeds.length]!;
      const bytes = k % 3 === 2 ? mutateBytes(seed, rng, seeds[(k + 1) % seeds.length]) : mutate(seed, rng);
      try {
        const graph = await importModel(bytes);
        outcomes.add(await createAndRun(graph, rng));
      } catch (err) {
        const stray = strayError(err);
        if (stray) outcomes.strays.push(`mutation ${k}: ${stray}`);
        else outcomes.add((err as { code: string }).code);
      }
    }
    console.log(`ONNX fuzz through a forward pass: ${cases} cases in ${Date.now() - started} ms: ${outcomes}`);
    expect(outcomes.strays.slice(0, 10)).toEqual([]);
    expect(outcomes.get('ran')).toBeGreaterThan(cases / 20);
    expect(outcomes.get('ERR_KILN_CORRUPT_MODEL')).toBeGreaterThan(cases / 10);
  });
});
