/**
 * importModel: what a good model becomes, and every kind of bad file refused with a KilnError
 * carrying a stable code and a message that says what is wrong.
 */
import { mkdtempSync, mkdirSync, readFileSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

import { ErrorCode, KilnError } from '../../src/errors.js';
import { importModel } from '../../src/onnx/import.js';
import { DataType, decodeForEdit, encodeModel, onnx, type ITensorProto } from '../../src/onnx/proto.js';
import { Rng } from '../../src/util/rng.js';
import { attr, floatTensor, int64Tensor, model, node, randomTensor, smallCnn, valueInfo, type ModelSpec } from './onnx-model-builder.js';

const LIGHT = resolve(process.cwd(), '..', 'shared', 'onnx-light');

async function expectCode(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err, 'expected a rejection').toBeInstanceOf(KilnError);
  expect((err as KilnError).code).toBe(code);
  if (message) expect((err as KilnError).message).toMatch(message);
}

const corrupt = (bytes: Uint8Array, message?: RegExp): Promise<void> => expectCode(importModel(bytes), ErrorCode.CORRUPT_MODEL, message);

function withSpec(edit: (spec: ModelSpec) => void): Uint8Array {
  const spec = smallCnn();
  edit(spec);
  return model(spec);
}

describe('importModel: a good model', () => {
  it('becomes a canonical graph with a symbolic batch, folded shape chain and int64 shapes gone', async () => {
    const g = await importModel(model(smallCnn()));
    expect(g.inputs).toEqual([{ name: 'input', dtype: 'float32', shape: ['batch', 1, 8, 8] }]);
    expect(g.outputs).toEqual([{ name: 'probs', dtype: 'float32', shape: ['batch', 5] }]);
    expect(g.nodes.map((n) => n.op)).toEqual(['Conv', 'Relu', 'MaxPool', 'Reshape', 'Gemm', 'Softmax']);
    expect(g.nodes[0]!.attrs).toEqual({ kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 });
    expect(g.nodes[3]!.attrs).toEqual({ shape: [0, -1] });
    expect(g.nodes[4]!.attrs).toEqual({ alpha: 1, beta: 1, transA: 0, transB: 1 });
    expect([...g.initializers.keys()].sort()).toEqual(['conv.b', 'conv.w', 'fc.b', 'fc.w']);
    expect(g.initializers.get('conv.w')!.type).toBe('float32');
    expect(g.metadata).toMatchObject({ source_format: 'onnx', source_opset: '13', source_producer: 'kiln-test' });
  });

  it('reads from a path, and removes graph inputs that are initializers (old exporters)', async () => {
    const spec = smallCnn();
    spec.inputs.push(valueInfo('conv.w', [4, 1, 3, 3]), valueInfo('fc.b', [5]));
    const dir = mkdtempSync(join(tmpdir(), 'kiln-onnx-'));
    writeFileSync(join(dir, 'm.onnx'), model(spec));
    const g = await importModel(join(dir, 'm.onnx'));
    expect(g.inputs.map((i) => i.name)).toEqual(['input']);
  });

  it('keeps int64 data as int32 after range checks (an int64 initializer a Kiln op reads stays a tensor)', async () => {
    const g = await importModel(withSpec((s) => {
      s.initializers!.push({ name: 'big', dims: [2], dataType: DataType.INT64, int64Data: [2 ** 40, -5] });
      s.nodes.splice(4, 0, node('Gather', ['big', 'zero'], ['unused'], [], 'dead'));
    }));
    // The dead Gather is dropped with its input; nothing int64 leaks into the graph.
    expect([...g.initializers.values()].every((t) => t.type === 'float32')).toBe(true);
  });

  it('sorts nodes that the file lists out of topological order', async () => {
    const g = await importModel(withSpec((s) => { s.nodes.reverse(); }));
    expect(g.nodes.map((n) => n.op)).toEqual(['Conv', 'Relu', 'MaxPool', 'Reshape', 'Gemm', 'Softmax']);
  });

  it('applies inputShapes to fix dynamic sizes', async () => {
    const g = await importModel(model(smallCnn()), { inputShapes: { input: [2, 1, 8, 8] } });
    expect(g.inputs[0]!.shape).toEqual([2, 1, 8, 8]);
    expect(g.outputs[0]!.shape).toEqual([2, 5]);
    await expect(importModel(model(smallCnn()), { inputShapes: { nope: [1] } })).rejects.toMatchObject({ code: ErrorCode.INVALID_ARG });
    await expect(importModel(model(smallCnn()), { inputShapes: { input: [1, 2] } })).rejects.toMatchObject({ code: ErrorCode.INVALID_ARG });
  });

  it.runIf(existsSync(LIGHT))('imports the four onnx-light CNNs (ConstantOfShape weights folded)', async () => {
    const expected: Record<string, [string[], number[]]> = {
      bvlc_alexnet: [['Conv', 'Dropout', 'Gemm', 'LRN', 'MaxPool', 'Relu', 'Reshape', 'Softmax'], [1, 1000]],
      resnet50: [['AveragePool', 'BatchNormalization', 'Conv', 'Gemm', 'MaxPool', 'Relu', 'Reshape', 'Softmax', 'Sum'], [1, 1000]],
      // Opset-9 Softmax over [1, 1000, 1, 1] at axis 1: Reshape/Softmax/Reshape.
      squeezenet: [['Concat', 'Conv', 'Dropout', 'GlobalAveragePool', 'MaxPool', 'Relu', 'Reshape', 'Softmax'], [1, 1000, 1, 1]],
    };
    for (const [name, [ops, outShape]] of Object.entries(expected)) {
      const g = await importModel(join(LIGHT, `light_${name}.onnx`));
      expect([...new Set(g.nodes.map((n) => n.op))].sort()).toEqual(ops);
      expect(g.outputs[0]!.shape).toEqual(outShape);
      // Every weight is a float initializer now; no int64 shape tensors are left.
      expect([...g.initializers.values()].every((t) => t.type === 'float32')).toBe(true);
      expect(g.inputs).toHaveLength(1);
    }
  });
  it.skipIf(existsSync(LIGHT))(`onnx-light models not found at ${LIGHT}: skipped`, () => {});
});

describe('importModel: bad arguments', () => {
  it('refuses a source that is neither a path nor bytes', async () => {
    await expect(importModel(42 as never)).rejects.toMatchObject({ name: 'TypeError', code: ErrorCode.INVALID_ARG });
    await expect(importModel(model(smallCnn()), 'x' as never)).rejects.toMatchObject({ name: 'TypeError', code: ErrorCode.INVALID_ARG });
    await expect(importModel(model(smallCnn()), { externalDataDir: 3 as never })).rejects.toMatchObject({ code: ErrorCode.INVALID_ARG });
  });
  it('names a missing file', async () => {
    await expectCode(importModel('/nonexistent/model.onnx'), ErrorCode.FILE_NOT_FOUND, /nonexistent\/model\.onnx/);
  });
});

describe('importModel: corrupt files are ERR_KILN_CORRUPT_MODEL', () => {
  const good = model(smallCnn());

  it('truncated file, at many lengths', async () => {
    for (const cut of [1, 2, 10, 50, Math.floor(good.length / 2), good.length - 7, good.length - 1]) {
      await expectCode(importModel(good.subarray(0, cut)), ErrorCode.CORRUPT_MODEL);
    }
  });

  it('random bytes', async () => {
    const rng = new Rng(7);
    for (let k = 0; k < 20; k++) {
      const bytes = Uint8Array.from({ length: 1 + rng.int(4000) }, () => rng.int(256));
      await expectCode(importModel(bytes), ErrorCode.CORRUPT_MODEL);
    }
    await expectCode(importModel(new Uint8Array(0)), ErrorCode.CORRUPT_MODEL);
  });

  it('a valid protobuf that is not a model (a TensorProto, a NodeProto)', async () => {
    await corrupt(onnx.TensorProto.encode(floatTensor('w', [2, 2], [1, 2, 3, 4])).finish());
    await corrupt(onnx.NodeProto.encode(node('Relu', ['x'], ['y'])).finish());
  });

  it('a model without a graph, or without an opset for the ONNX domain', async () => {
    await corrupt(encodeModel({ irVersion: 8, opsetImport: [{ domain: '', version: 13 }] }), /graph/);
    const noOpset = decodeForEdit(good);
    noOpset.opsetImport = [];
    await corrupt(encodeModel(noOpset), /opset_import/);
  });

  it('inconsistent shapes: conv channels, declared output shape, declared value_info', async () => {
    await corrupt(withSpec((s) => { s.initializers![0] = randomTensor('conv.w', [4, 2, 3, 3], 1); }), /conv.*input channels/i);
    await corrupt(withSpec((s) => { s.outputs[0] = valueInfo('probs', ['batch', 6]); }), /declared \[batch, 6\].*computes \[batch, 5\]/);
    await corrupt(withSpec((s) => { s.valueInfo = [valueInfo('p1', ['batch', 4, 3, 3])]; }), /'p1'/);
    await corrupt(withSpec((s) => { s.initializers![2] = randomTensor('fc.w', [5, 63], 3); }), /Gemm 'fc'/);
  });

  it('an initializer whose data length does not match its dims', async () => {
    await corrupt(withSpec((s) => { s.initializers![1] = floatTensor('conv.b', [4], [1, 2, 3]); }), /4 values for initializer 'conv\.b'/);
    await corrupt(withSpec((s) => { s.initializers![1] = { name: 'conv.b', dims: [4], dataType: DataType.FLOAT, rawData: new Uint8Array(15) }; }), /16 bytes/);
    await corrupt(withSpec((s) => { s.initializers![1] = { name: 'conv.b', dims: [4], dataType: DataType.FLOAT }; }), /no data/);
  });

  it('a 2^40-element dim, in an initializer, a graph input or a folded ConstantOfShape', async () => {
    await corrupt(withSpec((s) => { s.initializers![1] = { name: 'conv.b', dims: [2 ** 40], dataType: DataType.FLOAT, rawData: new Uint8Array(16) }; }), /dimension/);
    await corrupt(withSpec((s) => { s.initializers![1] = { name: 'conv.b', dims: [2 ** 20, 2 ** 20], dataType: DataType.FLOAT }; }), /elements/);
    await corrupt(withSpec((s) => { s.inputs[0] = valueInfo('input', [2 ** 40, 1, 8, 8]); }), /dimension/);
    await corrupt(withSpec((s) => {
      s.initializers!.splice(1, 1, int64Tensor('bshape', [2], [2 ** 20, 2 ** 20]));
      s.nodes.unshift(node('ConstantOfShape', ['bshape'], ['conv.b'], [], 'fill'));
    }), /elements/);
  });

  it('an unknown dtype, in an initializer or a graph input', async () => {
    await corrupt(withSpec((s) => { s.initializers![1] = { name: 'conv.b', dims: [4], dataType: 99, rawData: new Uint8Array(16) }; }), /data type.*99/);
    await corrupt(withSpec((s) => { s.inputs[0] = valueInfo('input', ['batch', 1, 8, 8], 77); }), /element type.*77/);
  });

  it('a cycle, a value nothing produces, a value produced twice', async () => {
    await corrupt(withSpec((s) => { s.nodes[0]!.input![0] = 'probs'; }), /cycle/);
    await corrupt(withSpec((s) => { s.nodes[1]!.input![0] = 'ghost'; }), /'ghost'.*nothing produces/);
    await corrupt(withSpec((s) => { s.nodes[1]!.output![0] = 'c1'; }), /'c1'.*produced again/);
  });

  it('out-of-range attributes', async () => {
    await corrupt(withSpec((s) => { s.nodes[9]!.attribute = [attr.i('axis', 5)]; }), /Softmax 'softmax'/);
    await corrupt(withSpec((s) => { s.nodes[2]!.attribute = [attr.ints('kernel_shape', [2, 2]), attr.ints('strides', [0, 2])]; }), /MaxPool 'pool'/);
  });
});

describe('importModel: unsupported operators', () => {
  it('lists every unsupported op type and node name in one error', async () => {
    const bytes = withSpec((s) => {
      s.nodes.splice(3, 0,
        node('RoiAlign', ['p1'], ['rz'], [], 'roi_align_1'),
        node('NonMaxSuppression', ['rz'], ['nms'], [], 'nms_7'),
        { ...node('FusedConv', ['nms'], ['fc0'], [], 'ms_fused'), domain: 'com.microsoft' },
        node('Add', ['fc0', 'p1'], ['p1b'], [], 'add_after'));
      s.nodes[s.nodes.findIndex((n) => n.name === 'reshape')]!.input![0] = 'p1b';
    });
    const err = (await importModel(bytes).then(() => undefined, (e: unknown) => e)) as KilnError;
    expect(err).toBeInstanceOf(KilnError);
    expect(err.code).toBe(ErrorCode.UNSUPPORTED_OP);
    for (const part of ["RoiAlign 'roi_align_1'", "NonMaxSuppression 'nms_7'", "FusedConv 'ms_fused' (not implemented) [domain com.microsoft"]) expect(err.message).toContain(part);
    expect(err.message).not.toContain('add_after');
  });

  it('reports run-time configurations Kiln lacks (3-D conv, used MaxPool indices)', async () => {
    await expectCode(importModel(withSpec((s) => { s.nodes[2]!.output!.push('idx'); s.outputs.push(valueInfo('idx')); })), ErrorCode.UNSUPPORTED_OP, /MaxPool 'pool' \(its Indices output\)/);
    const conv3d = model({
      opset: 13, inputs: [valueInfo('x', [1, 1, 4, 4, 4])], outputs: [valueInfo('y')],
      nodes: [node('Conv', ['x', 'w'], ['y'], [], 'c3')], initializers: [randomTensor('w', [1, 1, 2, 2, 2], 1)],
    });
    await expectCode(importModel(conv3d), ErrorCode.UNSUPPORTED_OP, /Conv 'c3' \(3-D convolution/);
  });

  it('refuses opsets outside 1..28 and dead unsupported nodes do not block', async () => {
    await expectCode(importModel(withSpec((s) => { s.opset = 29; })), ErrorCode.UNSUPPORTED_OP, /opset/);
    const g = await importModel(withSpec((s) => { s.nodes.push(node('RoiAlign', ['p1'], ['unused'], [], 'dead_roi_align')); }));
    expect(g.nodes.some((n) => n.op === 'RoiAlign')).toBe(false);
  });
});

describe('importModel: external data', () => {
  function externalModel(location: string, extra: Partial<Record<'offset' | 'length', string>> = {}): Uint8Array {
    return withSpec((s) => {
      const t: ITensorProto = {
        name: 'fc.w', dims: [5, 64], dataType: DataType.FLOAT, dataLocation: 1,
        externalData: [{ key: 'location', value: location }, ...Object.entries(extra).map(([key, value]) => ({ key, value }))],
      };
      s.initializers![2] = t;
    });
  }
  const weights = new Float32Array(5 * 64).map((_, i) => i / 320);
  const dir = mkdtempSync(join(tmpdir(), 'kiln-onnx-ext-'));
  mkdirSync(join(dir, 'model'));
  mkdirSync(join(dir, 'model', 'data'));
  writeFileSync(join(dir, 'model', 'data', 'w.bin'), Buffer.concat([Buffer.alloc(64), Buffer.from(weights.buffer)]));
  writeFileSync(join(dir, 'secret.bin'), Buffer.from(weights.buffer));
  symlinkSync(join(dir, 'secret.bin'), join(dir, 'model', 'link.bin'));

  it('loads a tensor from next to the model file, with offset and length', async () => {
    const path = join(dir, 'model', 'm.onnx');
    writeFileSync(path, externalModel('data/w.bin', { offset: '64', length: String(weights.byteLength) }));
    const g = await importModel(path);
    expect(Array.from(g.initializers.get('fc.w')!.data)).toEqual(Array.from(weights));
    const fromBytes = await importModel(readFileSync(path), { externalDataDir: join(dir, 'model') });
    expect(Array.from(fromBytes.initializers.get('fc.w')!.data)).toEqual(Array.from(weights));
  });

  it('refuses paths that leave the model folder, missing or short files, and bytes without a folder', async () => {
    const base = { externalDataDir: join(dir, 'model') };
    await expectCode(importModel(externalModel('../secret.bin'), base), ErrorCode.CORRUPT_MODEL, /inside the model folder/);
    await expectCode(importModel(externalModel('data/../../secret.bin'), base), ErrorCode.CORRUPT_MODEL, /inside the model folder/);
    await expectCode(importModel(externalModel(join(dir, 'secret.bin')), base), ErrorCode.CORRUPT_MODEL, /relative path/);
    await expectCode(importModel(externalModel('link.bin'), base), ErrorCode.CORRUPT_MODEL, /leads outside/);
    await expectCode(importModel(externalModel('data/none.bin'), base), ErrorCode.CORRUPT_MODEL, /missing/);
    await expectCode(importModel(externalModel('data/w.bin', { offset: '100' }), base), ErrorCode.CORRUPT_MODEL, /holds/);
    await expectCode(importModel(externalModel('data/w.bin', { length: '12' }), base), ErrorCode.CORRUPT_MODEL, /length 1280/);
    await expectCode(importModel(externalModel('data/w.bin')), ErrorCode.CORRUPT_MODEL, /externalDataDir/);
  });
});
