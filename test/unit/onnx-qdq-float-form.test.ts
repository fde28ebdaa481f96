/**
 * Q/DQ of run-time values that Kiln's int8 ops cannot hold (scales per axis or per block), run as
 * float arithmetic on the codes (src/onnx/import-quant.ts floatForm), against ORT.
 */
import { describe, expect, it } from 'vitest';

import { DataType } from '../../src/onnx/proto.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { attr, floatTensor, maxScaledDiff, model, node, randomData, runOrt, valueInfo } from './onnx-model-builder.js';

const u8 = (name: string, dims: number[], data: number[]) => ({ name, dims, dataType: DataType.UINT8, int32Data: data });

describe('per-axis and blocked DequantizeLinear of run-time values', () => {
  it('per-axis scales and zero points along the channels, after a per-tensor QuantizeLinear', async () => {
    const bytes = model({
      opset: 13,
      inputs: [valueInfo('x', ['N', 3, 2, 2])],
      outputs: [valueInfo('y', ['N', 3, 2, 2])],
      initializers: [floatTensor('s', [], [0.05]), u8('z', [], [128]), floatTensor('cs', [3], [0.5, 0.02, 3]), u8('cz', [3], [120, 128, 131])],
      nodes: [node('QuantizeLinear', ['x', 's', 'z'], ['q']), node('DequantizeLinear', ['q', 'cs', 'cz'], ['y'], [attr.i('axis', 1)])],
    });
    const session = await InferenceSession.create(bytes);
    for (const n of [1, 3]) {
      const data = randomData(n * 12, n, 4);
      const ours = await session.run({ x: new Tensor('float32', data, [n, 3, 2, 2]) });
      const ort = await runOrt(bytes, { x: { data, dims: [n, 3, 2, 2] } });
      expect(maxScaledDiff(ours.y!.data, ort.y!.data)).toBe(0);
    }
    expect(session.info().steps.join('\n')).toMatch(/Sub[\s\S]*Mul/);
    session.release();
  });

  it('blocked scales (opset 21, block_size 2 along the last axis)', async () => {
    const bytes = model({
      opset: 21,
      inputs: [valueInfo('x', [2, 3, 4])],
      outputs: [valueInfo('y', [2, 3, 4])],
      initializers: [floatTensor('s', [], [0.1]), u8('z', [], [100]), floatTensor('bs', [2, 3, 2], randomData(12, 9, 1).map((v) => Math.abs(v) + 0.1)), u8('bz', [2, 3, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])],
      nodes: [node('QuantizeLinear', ['x', 's', 'z'], ['q']), node('DequantizeLinear', ['q', 'bs', 'bz'], ['y'], [attr.i('axis', 2), attr.i('block_size', 2)])],
    });
    const data = randomData(24, 5, 6);
    const session = await InferenceSession.create(bytes);
    const ours = await session.run({ x: new Tensor('float32', data, [2, 3, 4]) });
    const ort = await runOrt(bytes, { x: { data, dims: [2, 3, 4] } });
    expect(maxScaledDiff(ours.y!.data, ort.y!.data)).toBe(0);
    session.release();
  });

  it('per-axis QuantizeLinear of a run-time value (Div, Round, Add, Clip), handed out as uint8 codes or read by a DequantizeLinear', async () => {
    const bytes = model({
      opset: 13,
      inputs: [valueInfo('x', ['N', 3, 2])],
      outputs: [valueInfo('y', ['N', 3, 2])],
      initializers: [floatTensor('cs', [3], [0.5, 0.02, 3]), u8('cz', [3], [120, 128, 131])],
      nodes: [node('QuantizeLinear', ['x', 'cs', 'cz'], ['q'], [attr.i('axis', 1)]), node('DequantizeLinear', ['q', 'cs', 'cz'], ['y'], [attr.i('axis', 1)])],
    });
    const session = await InferenceSession.create(bytes);
    const data = randomData(2 * 6, 3, 8);
    data[0] = 0.25; // a tie: rounds to even
    data[1] = 1e6; // saturates
    const ours = await session.run({ x: new Tensor('float32', data, [2, 3, 2]) });
    const ort = await runOrt(bytes, { x: { data, dims: [2, 3, 2] } });
    expect(maxScaledDiff(ours.y!.data, ort.y!.data)).toBe(0);
    session.release();
  });

  it('refuses blocked scales that do not tile the value, naming the shapes', async () => {
    const bytes = model({
      opset: 21,
      inputs: [valueInfo('x', [2, 4])],
      outputs: [valueInfo('y', [2, 4])],
      initializers: [floatTensor('s', [], [0.1]), u8('z', [], [100]), floatTensor('bs', [2, 3], [1, 1, 1, 1, 1, 1])],
      nodes: [node('QuantizeLinear', ['x', 's', 'z'], ['q']), node('DequantizeLinear', ['q', 'bs'], ['y'], [attr.i('axis', 1), attr.i('block_size', 2)])],
    });
    await expect(InferenceSession.create(bytes)).rejects.toMatchObject({ code: 'ERR_KILN_UNSUPPORTED_OP', message: expect.stringMatching(/blocked scales of shape \[2, 3\] for a value of shape \[2, 4\]/) });
  });
});
