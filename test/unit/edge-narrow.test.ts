/**
 * The narrow formats and quantized codes at the session edge: Casts to and from float8 / int4,
 * uint8 codes fed to a DequantizeLinear and handed out by a QuantizeLinear.
 */
import { describe, expect, it } from 'vitest';

import { DataType } from '../../src/onnx/proto.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { decodeMiniFloat, encodeMiniFloat } from '../../src/tensor-formats.js';
import { Tensor } from '../../src/tensor.js';
import { attr, floatTensor, maxScaledDiff, model, node, randomData, runOrt, valueInfo } from './onnx-model-builder.js';

describe('narrow formats and quantized codes at the session edge', () => {
  it('Cast to float8 E4M3FN at the output, with and without saturation', async () => {
    const xs = [0, 1.3, -2.5, 448, 500, -1e6, Number.NaN, 1e-4];
    for (const saturate of [1, 0]) {
      const bytes = model({
        opset: 21,
        inputs: [valueInfo('x', [xs.length])],
        outputs: [valueInfo('y', [xs.length], DataType.FLOAT8E4M3FN)],
        nodes: [node('Cast', ['x'], ['y'], [attr.i('to', DataType.FLOAT8E4M3FN), attr.i('saturate', saturate)])],
      });
      const session = await InferenceSession.create(bytes);
      expect(session.outputTypes).toEqual(['float8e4m3fn']);
      const y = (await session.run<'float8e4m3fn'>({ x: new Tensor('float32', xs) })).y!;
      expect(y.type).toBe('float8e4m3fn');
      // NaN codes compare as NaN: the sign of a NaN the plan carries is not kept (0x7f for 0xff).
      const want = xs.map((v) => decodeMiniFloat('float8e4m3fn', encodeMiniFloat('float8e4m3fn', Math.fround(v), saturate === 1)));
      expect(Array.from(y.data, (c) => decodeMiniFloat('float8e4m3fn', c))).toEqual(want);
      expect(want.filter(Number.isNaN).length).toBe(saturate === 1 ? 1 : 3);
      session.release();
    }
  });

  it('int4 and float8 inputs through a Cast to float', async () => {
    const bytes = model({
      opset: 21,
      inputs: [valueInfo('a', [4], DataType.INT4), valueInfo('b', [3], DataType.FLOAT8E5M2)],
      outputs: [valueInfo('fa', [4]), valueInfo('fb', [3])],
      nodes: [node('Cast', ['a'], ['fa'], [attr.i('to', DataType.FLOAT)]), node('Cast', ['b'], ['fb'], [attr.i('to', DataType.FLOAT)])],
    });
    const session = await InferenceSession.create(bytes);
    const codes = [0x3c, 0xc5, 0x7c];
    const out = await session.run({ a: new Tensor('int4', [-8, 7, 0, -1]), b: new Tensor('float8e5m2', Uint8Array.from(codes)) });
    expect(Array.from(out.fa!.data)).toEqual([-8, 7, 0, -1]);
    expect(Array.from(out.fb!.data)).toEqual(codes.map((c) => decodeMiniFloat('float8e5m2', c)));
    await expect(session.run({ a: new Tensor('int8', [1, 2, 3, 4]), b: new Tensor('float8e5m2', Uint8Array.from(codes)) })).rejects.toMatchObject({ code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(/feeds\['a'\]/) });
    session.release();
  });

  it('uint8 codes into DequantizeLinear and out of QuantizeLinear, as ORT computes them', async () => {
    const bytes = model({
      opset: 13,
      inputs: [valueInfo('q', ['N', 6], DataType.UINT8), valueInfo('x', ['N', 6])],
      outputs: [valueInfo('dq', ['N', 6]), valueInfo('xq', ['N', 6], DataType.UINT8)],
      initializers: [floatTensor('s', [], [0.5]), { name: 'z', dims: [], dataType: DataType.UINT8, int32Data: [10] }],
      nodes: [node('DequantizeLinear', ['q', 's', 'z'], ['dq']), node('QuantizeLinear', ['x', 's', 'z'], ['xq'])],
    });
    const session = await InferenceSession.create(bytes);
    expect(session.inputTypes).toEqual(['uint8', 'float32']);
    const q = Uint8Array.from([0, 10, 11, 255, 128, 3, 9, 200, 1, 2, 77, 254]);
    const x = randomData(12, 4, 80);
    const ours = await session.run<'float32' | 'uint8'>({ q: new Tensor('uint8', q, [2, 6]), x: new Tensor('float32', x, [2, 6]) });
    const ort = await runOrt(bytes, { q: { data: q as never, dims: [2, 6] }, x: { data: x, dims: [2, 6] } });
    expect(ours.xq!.type).toBe('uint8');
    expect(Array.from(ours.xq!.data as Uint8Array)).toEqual(Array.from(ort.xq!.data as unknown as Uint8Array));
    expect(maxScaledDiff(ours.dq!.data as Float32Array, ort.dq!.data)).toBe(0);
    session.release();
  });

  it('a 3-D QLinearMatMul whose weight has a batch dimension runs as one unit-batch image, codes in and out', async () => {
    const u8 = (name: string, dims: number[], data: number[]) => ({ name, dims, dataType: DataType.UINT8, int32Data: data });
    const bytes = model({
      opset: 21,
      inputs: [valueInfo('a', [2, 2, 4], DataType.UINT8)],
      outputs: [valueInfo('y', [2, 2, 3], DataType.UINT8)],
      initializers: [
        floatTensor('as', [], [0.0066]), u8('az', [], [113]), u8('b', [2, 4, 3], Array.from({ length: 24 }, (_, i) => (i * 37) % 256)),
        floatTensor('bs', [], [0.00705]), u8('bz', [], [114]), floatTensor('ys', [], [0.0107]), u8('yz', [], [118]),
      ],
      nodes: [node('QLinearMatMul', ['a', 'as', 'az', 'b', 'bs', 'bz', 'ys', 'yz'], ['y'])],
    });
    const a = Uint8Array.from({ length: 16 }, (_, i) => (i * 53 + 7) % 256);
    const session = await InferenceSession.create(bytes);
    const ours = (await session.run<'uint8'>({ a: new Tensor('uint8', a, [2, 2, 4]) })).y!;
    const ort = await runOrt(bytes, { a: { data: a as never, dims: [2, 2, 4] } });
    expect(ours.type).toBe('uint8');
    expect(Array.from(ours.data)).toEqual(Array.from(ort.y!.data as unknown as Uint8Array));
    session.release();
  });
});
