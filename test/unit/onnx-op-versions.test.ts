/**
 * Operator versions: a model is judged node by node, by the version of each operator its opset
 * means, not refused for its opset number; what Kiln refuses is ERR_KILN_UNSUPPORTED_OP naming
 * op, domain and version, and only bytes that are no valid model are ERR_KILN_CORRUPT_MODEL.
 * Kiln's results are compared with onnxruntime on the same file.
 */
import { describe, expect, it } from 'vitest';

import { ErrorCode, KilnError } from '../../src/errors.js';
import { compareWithOnnxRuntime } from '../../src/onnx/compare.js';
import { importModel } from '../../src/onnx/import.js';
import { resolveOpVersion, unimplementedVersion, NEWEST_ONNX_OPSET } from '../../src/onnx/op-versions.js';
import { DataType, encodeModel } from '../../src/onnx/proto.js';
import { Tensor } from '../../src/tensor.js';
import { attr, floatTensor, int64Tensor, model, node, randomData, randomTensor, runOrt, valueInfo, type ModelSpec } from './onnx-model-builder.js';

async function rejection(p: Promise<unknown>): Promise<KilnError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err, 'expected a rejection').toBeInstanceOf(KilnError);
  return err as KilnError;
}

/** IR versions onnx 1.23 pairs with the newest opsets. */
const IR_FOR: Record<number, number> = { 23: 11, 24: 12, 25: 13, 26: 13, 27: 13, 28: 13 };

/** Conv -> Relu -> Reshape -> Transpose -> Flatten over a dynamic batch: ops whose newest versions are 22-25. */
function newOpsetCnn(opset: number): ModelSpec & { irVersion: number } {
  return {
    opset,
    irVersion: IR_FOR[opset]!,
    inputs: [valueInfo('x', ['N', 2, 5, 5])],
    outputs: [valueInfo('y')],
    initializers: [randomTensor('w', [3, 2, 3, 3], 1), randomTensor('b', [3], 2), int64Tensor('shape', [4], [0, 3, 9, -1])],
    nodes: [
      node('Conv', ['x', 'w', 'b'], ['c'], [attr.ints('pads', [0, 0, 0, 0])]),
      node('Relu', ['c'], ['r']),
      node('Reshape', ['r', 'shape'], ['rs']),
      node('Transpose', ['rs'], ['t'], [attr.ints('perm', [0, 2, 1, 3])]),
      node('Flatten', ['t'], ['y'], [attr.i('axis', 1)]),
    ],
  };
}

describe('operator versions', () => {
  it('resolves the version each opset means from the onnx 1.23 operator history', () => {
    expect(NEWEST_ONNX_OPSET).toBe(28);
    expect(resolveOpVersion('Reshape', 22)).toBe(21);
    expect(resolveOpVersion('Reshape', 28)).toBe(25);
    expect(resolveOpVersion('Conv', 28)).toBe(22);
    expect(resolveOpVersion('Softmax', 12)).toBe(11);
    expect(resolveOpVersion('HardSwish', 13)).toBeUndefined();
    expect(unimplementedVersion('Reshape', 25)).toBeUndefined();
    // Celu-28 is newer than the versions Kiln implements; Pow-1 predates broadcasting.
    expect(unimplementedVersion('Celu', 12)).toBeUndefined();
    expect(unimplementedVersion('Celu', 28)).toMatch(/Celu versions 12$/);
    expect(unimplementedVersion('Pow', 1)).toMatch(/Pow versions 7, 12, 13, 15/);
    // Versions older than opset 7 whose semantics changed since are not implemented.
    expect(unimplementedVersion('Add', 1)).toMatch(/Add versions 7, 13, 14/);
    expect(unimplementedVersion('Conv', 1)).toBeUndefined();
  });

  for (const opset of [23, 24, 25]) {
    it(`runs an opset-${opset} model like onnxruntime`, async () => {
      const bytes = model(newOpsetCnn(opset));
      const graph = await importModel(bytes);
      expect(graph.metadata?.source_opset).toBe(String(opset));
      const x = new Tensor('float32', randomData(2 * 2 * 5 * 5, 7), [2, 2, 5, 5]);
      const result = await compareWithOnnxRuntime(bytes, { x });
      for (const out of result.outputs) expect(out.relL2, out.name).toBeLessThanOrEqual(1e-5);
    });
  }

  it('imports the newest opset onnx 1.23 defines (28): Kiln ops have not changed since 25', async () => {
    const graph = await importModel(model(newOpsetCnn(28)));
    expect(graph.nodes.map((n) => n.op)).toEqual(['Conv', 'Relu', 'Reshape', 'Transpose', 'Flatten']);
  });

  it('refuses an opset newer than onnx 1.23 defines, naming the range', async () => {
    const err = await rejection(importModel(model({ ...newOpsetCnn(28), opset: NEWEST_ONNX_OPSET + 1 })));
    expect(err.code).toBe(ErrorCode.UNSUPPORTED_OP);
    expect(err.message).toMatch(/domain ai\.onnx\) in \[1, 28\] but received 29/);
  });

  it('judges opsets below 7 per node: unchanged operators run, changed ones are named', async () => {
    const relu6 = model({ opset: 6, irVersion: 3, inputs: [valueInfo('x', [2, 3])], outputs: [valueInfo('y')], nodes: [node('Relu', ['x'], ['y'])] });
    const result = await compareWithOnnxRuntime(relu6, { x: new Tensor('float32', randomData(6, 2), [2, 3]) });
    expect(result.outputs[0]!.relL2).toBeLessThanOrEqual(1e-6);
    const add1 = model({ opset: 1, irVersion: 3, inputs: [valueInfo('x', [2, 3]), valueInfo('z', [2, 3])], outputs: [valueInfo('y')], nodes: [node('Add', ['x', 'z'], ['y'], [], 'add')] });
    const err = await rejection(importModel(add1));
    expect(err.code).toBe(ErrorCode.UNSUPPORTED_OP);
    expect(err.message).toContain("Add 'add' (Kiln implements Add versions 7, 13, 14) [domain ai.onnx, version 1]");
  });

  it('refuses a QuantizeLinear-23 dividing in another precision, naming op, domain and version', async () => {
    const spec: ModelSpec = {
      opset: 23,
      irVersion: 11,
      inputs: [valueInfo('x', [2, 3])],
      outputs: [valueInfo('y', undefined, DataType.UINT8)],
      initializers: [floatTensor('s', [], [0.1]), { name: 'z', dims: [], dataType: DataType.UINT8, int32Data: [128] }],
      nodes: [node('QuantizeLinear', ['x', 's', 'z'], ['y'], [attr.i('precision', DataType.FLOAT16)], 'q')],
    };
    const err = await rejection(importModel(model(spec)));
    expect(err.code).toBe(ErrorCode.UNSUPPORTED_OP);
    expect(err.message).toContain("QuantizeLinear 'q' (QuantizeLinear-23 with precision 10 (Kiln divides in float32)) [domain ai.onnx, version 23]");
  });
});

describe('errors that tell the truth', () => {
  it('a model of another domain only (ai.onnx.ml) is unsupported, not corrupt', async () => {
    const bytes = encodeModel({
      irVersion: 8,
      opsetImport: [{ domain: 'ai.onnx.ml', version: 3 }],
      graph: {
        name: 'ml',
        node: [{ opType: 'Normalizer', domain: 'ai.onnx.ml', input: ['x'], output: ['y'], name: 'norm', attribute: [attr.s('norm', 'L1')] }],
        input: [valueInfo('x', [2, 3])],
        output: [valueInfo('y')],
      },
    });
    // A valid model: onnxruntime runs it.
    const ort = await runOrt(bytes, { x: { data: Float32Array.from([1, 2, 3, 4, 5, 6]), dims: [2, 3] } });
    expect(ort.y!.dims).toEqual([2, 3]);
    const err = await rejection(importModel(bytes));
    expect(err.code).toBe(ErrorCode.UNSUPPORTED_OP);
    expect(err.message).toContain("Normalizer 'norm' (not implemented) [domain ai.onnx.ml, version 3]");
  });

  it('inputs of the newest data types are unsupported (FLOAT8E8M0) or read (UINT2, INT2), never corrupt', async () => {
    for (const [type, name] of [[25, 'UINT2'], [26, 'INT2']] as const) {
      const bytes = model({ opset: 25, irVersion: 13, inputs: [valueInfo('x', [4], type)], outputs: [valueInfo('y')], nodes: [node('Cast', ['x'], ['y'], [attr.i('to', DataType.FLOAT)])] });
      const graph = await importModel(bytes);
      expect(graph.inputs[0]!.dtype, name).toBe(name.toLowerCase());
    }
    for (const [type, name] of [[24, 'FLOAT8E8M0']] as const) {
      const bytes = model({ opset: 25, irVersion: 13, inputs: [valueInfo('x', [4], type)], outputs: [valueInfo('y')], nodes: [node('Cast', ['x'], ['y'], [attr.i('to', DataType.FLOAT)])] });
      const err = await rejection(importModel(bytes));
      expect(err.code, name).toBe(ErrorCode.UNSUPPORTED_OP);
      expect(err.message).toContain(name);
    }
  });

  it('a default-domain node without a default-domain opset import is corrupt (no valid model)', async () => {
    const bytes = encodeModel({
      irVersion: 8,
      opsetImport: [{ domain: 'ai.onnx.ml', version: 3 }],
      graph: { name: 'bad', node: [{ opType: 'Relu', input: ['x'], output: ['y'], name: 'relu' }], input: [valueInfo('x', [2])], output: [valueInfo('y')] },
    });
    const err = await rejection(importModel(bytes));
    expect(err.code).toBe(ErrorCode.CORRUPT_MODEL);
    expect(err.message).toContain("Relu 'relu'");
  });

  it('a standalone DynamicQuantizeLinear is unsupported, named, and keeps no internal check leaking out', async () => {
    const bytes = model({
      opset: 13,
      inputs: [valueInfo('x', [2, 3])],
      outputs: [valueInfo('y', undefined, DataType.UINT8), valueInfo('y_scale'), valueInfo('y_zero_point', undefined, DataType.UINT8)],
      nodes: [node('DynamicQuantizeLinear', ['x'], ['y', 'y_scale', 'y_zero_point'], [], 'dql')],
    });
    const ort = await runOrt(bytes, { x: { data: randomData(6, 3), dims: [2, 3] } });
    expect(Object.keys(ort).sort()).toEqual(['y', 'y_scale', 'y_zero_point']);
    const err = await rejection(importModel(bytes));
    expect(err.code).toBe(ErrorCode.UNSUPPORTED_OP);
    expect(err.message).toContain("DynamicQuantizeLinear 'dql' (DynamicQuantizeLinear outside a DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul pattern) [domain ai.onnx, version 11]");
  });
});
