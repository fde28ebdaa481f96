/**
 * Typed model I/O at the session edge (src/runtime/edge-types.ts): the conversions with ONNX Cast
 * semantics, sessions fed and answering in each dtype, the refusals, and feeds whose buffer is
 * taken away during an asynchronous run.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';

import { ErrorCode } from '../../src/errors.js';
import { DataType, type ITensorProto } from '../../src/onnx/proto.js';
import { bigintToFloat32, castElements, edgeTypes, halfBitsOfNumber } from '../../src/runtime/edge-types.js';
import { compareWithOnnxRuntime } from '../../src/onnx/compare.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { type DataTypeMap, type DType, fromFloat16Bits, Tensor, toFloat16Bits } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { attr, model, node, randomTensor, smallCnn, valueInfo, type ModelSpec } from './onnx-model-builder.js';

const ONNX: Partial<Record<DType, number>> = {
  float32: DataType.FLOAT, float64: DataType.DOUBLE, float16: DataType.FLOAT16, int8: DataType.INT8, uint8: DataType.UINT8,
  int16: DataType.INT16, uint16: DataType.UINT16, int32: DataType.INT32, uint32: DataType.UINT32, int64: DataType.INT64,
  uint64: DataType.UINT64, bool: DataType.BOOL,
};

async function refusal(bytes: Uint8Array): Promise<Error & { code: string }> {
  const error = (await InferenceSession.create(bytes).catch((e: unknown) => e)) as Error & { code: string };
  expect(error).toBeInstanceOf(Error);
  return error;
}

describe('float16 rounding of any number (halfBitsOfNumber)', () => {
  it('agrees with toFloat16Bits on float32 values, normal, subnormal and beyond the range', () => {
    const rng = new Rng(7);
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    for (let i = 0; i < 20000; i++) {
      u[0] = Math.floor(rng.uniform(0, 2 ** 32));
      // Exponents near the float16 range, where the rounding happens.
      if (i % 2 === 0) u[0] = (u[0]! & 0x807fffff) | ((Math.floor(rng.uniform(95, 145)) & 0xff) << 23);
      const x = f[0]!;
      const want = toFloat16Bits(x);
      const got = halfBitsOfNumber(x);
      if (Number.isNaN(x)) expect((got & 0x7c00) === 0x7c00 && (got & 0x3ff) !== 0).toBe(true);
      else if (got !== want) expect([x, got]).toEqual([x, want]);
    }
  });

  it('rounds a float64 once: ties to even, just above a tie up (float32 first would round down)', () => {
    expect(halfBitsOfNumber(1 + 2 ** -11)).toBe(0x3c00); // tie: even
    expect(halfBitsOfNumber(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie: up to even
    const above = 1 + 2 ** -11 + 2 ** -40;
    expect(halfBitsOfNumber(above)).toBe(0x3c01);
    expect(toFloat16Bits(above)).toBe(0x3c00); // what rounding through float32 gives
  });

  it('subnormals, the carry into the normal range, overflow, signed zero, NaN', () => {
    expect(halfBitsOfNumber(2 ** -24)).toBe(0x0001);
    expect(halfBitsOfNumber(2 ** -25)).toBe(0x0000); // tie to even: zero
    expect(halfBitsOfNumber(2 ** -25 + 2 ** -50)).toBe(0x0001);
    expect(halfBitsOfNumber(3 * 2 ** -25)).toBe(0x0002);
    expect(halfBitsOfNumber(1023.5 * 2 ** -24)).toBe(0x0400); // up into the smallest normal
    expect(halfBitsOfNumber(-(2 ** -14))).toBe(0x8400);
    expect(halfBitsOfNumber(65504)).toBe(0x7bff);
    expect(halfBitsOfNumber(65519.99)).toBe(0x7bff);
    expect(halfBitsOfNumber(65520)).toBe(0x7c00);
    expect(halfBitsOfNumber(-1e300)).toBe(0xfc00);
    expect(halfBitsOfNumber(-0)).toBe(0x8000);
    expect(Number.isNaN(fromFloat16Bits(halfBitsOfNumber(NaN)))).toBe(true);
  });
});

describe('castElements: ONNX Cast semantics', () => {
  const floats = Float64Array.from([2.7, -2.7, 0.5, -0.5, 1e10, -1e10, NaN, Infinity, -Infinity, 300, -1]);

  it('float to integer truncates toward zero; out of range saturates, NaN is 0', () => {
    expect(Array.from(castElements(floats, 'float64', 'int32'))).toEqual([2, -2, 0, 0, 2147483647, -2147483648, 0, 2147483647, -2147483648, 300, -1]);
    expect(Array.from(castElements(floats, 'float64', 'uint8'))).toEqual([2, 0, 0, 0, 255, 0, 0, 255, 0, 255, 0]);
    expect(Array.from(castElements(floats, 'float64', 'int8'))).toEqual([2, -2, 0, 0, 127, -128, 0, 127, -128, 127, -1]);
    expect(Array.from(castElements(Float64Array.from([1e19, -1e19, -3.9]), 'float64', 'int64'))).toEqual([2n ** 63n - 1n, -(2n ** 63n), -3n]);
    expect(Array.from(castElements(Float64Array.from([1e20, -5, 7.9]), 'float64', 'uint64'))).toEqual([2n ** 64n - 1n, 0n, 7n]);
    // float16 sources go by the value the bits stand for.
    const half = Uint16Array.from([2.75, -2.75, 65504].map(toFloat16Bits));
    expect(Array.from(castElements(half, 'float16', 'int16'))).toEqual([2, -2, 32767]);
  });

  it('integer to narrower integer wraps around, as numpy astype', () => {
    expect(Array.from(castElements(Int32Array.from([300, -1, -129, 127]), 'int32', 'int8'))).toEqual([44, -1, 127, 127]);
    expect(Array.from(castElements(Int32Array.from([-1, 256, 65537]), 'int32', 'uint8'))).toEqual([255, 0, 1]);
    expect(Array.from(castElements(BigInt64Array.from([2n ** 40n + 5n, -1n]), 'int64', 'int32'))).toEqual([5, -1]);
    expect(Array.from(castElements(BigInt64Array.from([-1n]), 'int64', 'uint64'))).toEqual([2n ** 64n - 1n]);
  });

  it('anything to bool is x != 0 (NaN is true); bool to numbers is 0/1', () => {
    expect(Array.from(castElements(Float32Array.from([0, -0, 0.1, NaN, -3]), 'float32', 'bool'))).toEqual([0, 0, 1, 1, 1]);
    expect(Array.from(castElements(BigInt64Array.from([0n, 7n]), 'int64', 'bool'))).toEqual([0, 1]);
    expect(Array.from(castElements(Uint8Array.from([0, 1]), 'bool', 'float32'))).toEqual([0, 1]);
    expect(Array.from(castElements(Uint8Array.from([0, 1]), 'bool', 'int64'))).toEqual([0n, 1n]);
  });

  it('int64 to float32 rounds once, to nearest even', () => {
    const v = 2n ** 60n + 2n ** 36n + 1n; // just above the halfway point between two float32 values
    expect(bigintToFloat32(v)).toBe(2 ** 60 + 2 ** 37);
    expect(Math.fround(Number(v))).toBe(2 ** 60); // Number() then fround rounds twice, down
    expect(bigintToFloat32(2n ** 24n + 1n)).toBe(2 ** 24); // tie: even
    expect(bigintToFloat32(-(2n ** 24n) - 3n)).toBe(-(2 ** 24) - 4);
    expect(Array.from(castElements(BigInt64Array.from([v, -v, 5n]), 'int64', 'float32'))).toEqual([2 ** 60 + 2 ** 37, -(2 ** 60 + 2 ** 37), 5]);
  });

  it('float64 to float16 rounds once; float16 and float32 to float64 widen exactly', () => {
    const above = 1 + 2 ** -11 + 2 ** -40;
    expect(Array.from(castElements(Float64Array.from([above]), 'float64', 'float16'))).toEqual([0x3c01]);
    const f16 = Uint16Array.from([0x0001, 0x3555, 0x7bff, 0xfc00]);
    expect(Array.from(castElements(f16, 'float16', 'float64'))).toEqual([2 ** -24, fromFloat16Bits(0x3555), 65504, -Infinity]);
    expect(Array.from(castElements(Float32Array.from([0.1]), 'float32', 'float64'))).toEqual([Math.fround(0.1)]);
  });
});

/** x (dtype) -> Relu -> y (dtype): a model that computes on typed values. */
function reluModel(dtype: number): Uint8Array {
  return model({ opset: 13, inputs: [valueInfo('x', ['N', 4], dtype)], outputs: [valueInfo('y', ['N', 4], dtype)], nodes: [node('Relu', ['x'], ['y'], [], 'relu')] });
}

describe('sessions with typed inputs and outputs', () => {
  it('float64: fed and answered in float64, computed at float32 precision', async () => {
    const session = await InferenceSession.create(reluModel(DataType.DOUBLE));
    expect(session.inputTypes).toEqual(['float64']);
    expect(session.outputTypes).toEqual(['float64']);
    const x = Float64Array.from([0.1, -2, 1 / 3, 1e-30, 7, -0.5, 1e30, 2 ** -149 / 4]);
    const { y } = await session.run<'float64'>({ x: new Tensor('float64', x, [2, 4]) });
    expect(y!.type).toBe('float64');
    expect(y!.data).toBeInstanceOf(Float64Array);
    expect(Array.from(y!.data)).toEqual(Array.from(x, (v) => Math.max(0, Math.fround(v))));
    expect(y!.dims).toEqual([2, 4]);
    expect(session.runSync<'float64'>({ x: new Tensor('float64', x, [2, 4]) }).y!.data).toEqual(y!.data);
    session.release();
  });

  it('float16: bits in, bits out (widening exact, results rounded to nearest even)', async () => {
    const spec: ModelSpec = {
      opset: 13, inputs: [valueInfo('x', ['N', 4], DataType.FLOAT16)], outputs: [valueInfo('y', ['N', 4], DataType.FLOAT16)],
      nodes: [node('Mul', ['x', 'k'], ['y'], [], 'mul')],
      initializers: [{ name: 'k', dims: [], dataType: DataType.FLOAT16, int32Data: [toFloat16Bits(1 / 3)] }],
    };
    const session = await InferenceSession.create(model(spec));
    const values = [1, -3, 0.1, 65504, 2 ** -24, 6e-5, 1000, NaN];
    const bits = Uint16Array.from(values, toFloat16Bits);
    const { y } = await session.run<'float16'>({ x: new Tensor('float16', bits, [2, 4]) });
    expect(y!.type).toBe('float16');
    const k = fromFloat16Bits(toFloat16Bits(1 / 3));
    const want = Array.from(bits, (b) => toFloat16Bits(Math.fround(fromFloat16Bits(b) * k)));
    expect(Array.from(y!.data)).toEqual(want);
    session.release();
  });

  it('refuses feeds of another dtype with a TypeError naming the feed and both dtypes', async () => {
    const session = await InferenceSession.create(reluModel(DataType.DOUBLE));
    await expect(session.run({ x: new Tensor('float32', new Float32Array(4), [1, 4]) })).rejects.toMatchObject({
      name: 'TypeError', code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(/Expected a float64 Tensor for feeds\['x'\] but received .*a float32 Tensor/),
    });
    // A Tensor-like object whose array is not the dtype's is refused too.
    const fake = { type: 'float64', data: new Float32Array(4), dims: [1, 4] } as unknown as Tensor<'float64'>;
    await expect(session.run({ x: fake })).rejects.toMatchObject({ name: 'TypeError', message: expect.stringMatching(/feeds\['x'\]/) });
    session.release();
  });

  const INTEGER_TYPES: DType[] = ['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool'];

  it.each(INTEGER_TYPES)('%s input through a Cast to float at the input', async (dtype) => {
    const bytes = model({
      opset: 13, inputs: [valueInfo('x', ['N', 3], ONNX[dtype]!)], outputs: [valueInfo('y', ['N', 3])],
      nodes: [node('Cast', ['x'], ['xf'], [attr.i('to', DataType.FLOAT)], 'cast'), node('Neg', ['xf'], ['y'], [], 'neg')],
    });
    const session = await InferenceSession.create(bytes);
    expect(session.inputTypes).toEqual([dtype]);
    const raw = dtype === 'bool' ? [1, 0, 1] : dtype.startsWith('u') ? [0, 7, 200] : [-100, 0, 100];
    const big = dtype === 'int64' || dtype === 'uint64';
    const x = new Tensor(dtype, (big ? raw.map(BigInt) : raw) as never, [1, 3]);
    const { y } = await session.run({ x });
    expect(y!.type).toBe('float32');
    expect(Array.from(y!.data)).toEqual(raw.map((v) => (v === 0 ? -0 : -v)));
    session.release();
  });

  it.each(INTEGER_TYPES.concat(['float16', 'float64']))('float32 computed, Cast to %s at the output', async (dtype) => {
    const bytes = model({
      opset: 13, inputs: [valueInfo('x', ['N', 6])], outputs: [valueInfo('y', ['N', 6], ONNX[dtype])],
      nodes: [node('Neg', ['x'], ['n'], [], 'neg'), node('Cast', ['n'], ['y'], [attr.i('to', ONNX[dtype]!)], 'cast')],
    });
    const session = await InferenceSession.create(bytes);
    expect(session.outputTypes).toEqual([dtype]);
    const x = Float32Array.from([2.7, -2.7, 0, 1000.5, -1e10, 0.25]);
    const { y } = await session.run<DType>({ x: new Tensor('float32', x, [1, 6]) });
    expect(y!.type).toBe(dtype);
    const neg = Float32Array.from(x, (v) => -v);
    expect(Array.from(y!.data as ArrayLike<number | bigint>)).toEqual(Array.from(castElements(neg, 'float32', dtype) as ArrayLike<number | bigint>));
    session.release();
  });

  it('the truncation at an int32 output, spelled out', async () => {
    const bytes = model({
      opset: 13, inputs: [valueInfo('x', ['N', 4])], outputs: [valueInfo('y', ['N', 4], DataType.INT32)],
      nodes: [node('Cast', ['x'], ['y'], [attr.i('to', DataType.INT32)], 'cast')],
    });
    const session = await InferenceSession.create(bytes);
    const { y } = await session.run<'int32'>({ x: new Tensor('float32', [2.9, -2.9, -0.5, 3e9], [1, 4]) });
    expect(Array.from(y!.data)).toEqual([2, -2, 0, 2147483647]);
    session.release();
  });

  it('a float64 input cast to float16 at the output rounds once (through float16, not float32)', async () => {
    const bytes = model({
      opset: 13, inputs: [valueInfo('x', ['N', 1], DataType.DOUBLE)], outputs: [valueInfo('y', ['N', 1], DataType.FLOAT16)],
      nodes: [node('Cast', ['x'], ['y'], [attr.i('to', DataType.FLOAT16)], 'cast')],
    });
    const session = await InferenceSession.create(bytes);
    const { y } = await session.run<'float16'>({ x: new Tensor('float64', [1 + 2 ** -11 + 2 ** -40], [1, 1]) });
    expect(Array.from(y!.data)).toEqual([0x3c01]);
    session.release();
  });

  it('CastLike at the output takes the type of its second input, which is fed but not read', async () => {
    const bytes = model({
      opset: 15, inputs: [valueInfo('x', ['N', 2]), valueInfo('like', [0], DataType.FLOAT16)], outputs: [valueInfo('y', ['N', 2], DataType.FLOAT16)],
      nodes: [node('Relu', ['x'], ['r'], [], 'relu'), node('CastLike', ['r', 'like'], ['y'], [], 'castlike')],
    });
    const session = await InferenceSession.create(bytes);
    expect(session.inputNames).toEqual(['x', 'like']);
    expect(session.inputTypes).toEqual(['float32', 'float16']);
    const { y } = await session.run<'float16'>({ x: new Tensor('float32', [0.1, -1], [1, 2]), like: new Tensor('float16', new Uint16Array(0), [0]) });
    expect(Array.from(y!.data)).toEqual([toFloat16Bits(0.1), 0]);
    // The unread input is still type-checked.
    await expect(session.run({ x: new Tensor('float32', [0.1, -1], [1, 2]), like: new Tensor('float32', new Float32Array(0), [0]) })).rejects.toMatchObject({ name: 'TypeError' });
    session.release();
  });
});

describe('Casts between float32 and float64 inside the graph', () => {
  it('are identities: float64 values are computed as float32', async () => {
    const bytes = model({
      opset: 13, inputs: [valueInfo('x', ['N', 2], DataType.DOUBLE)], outputs: [valueInfo('y', ['N', 2], DataType.DOUBLE)],
      nodes: [
        node('Cast', ['x'], ['xf'], [attr.i('to', DataType.FLOAT)], 'down'),
        node('Relu', ['xf'], ['r'], [], 'relu'),
        node('Cast', ['r'], ['rd'], [attr.i('to', DataType.DOUBLE)], 'up'),
        node('Neg', ['rd'], ['y'], [], 'neg'),
      ],
    });
    const session = await InferenceSession.create(bytes);
    const { y } = await session.run<'float64'>({ x: new Tensor('float64', [0.1, -2], [1, 2]) });
    expect(Array.from(y!.data)).toEqual([-Math.fround(0.1), -0]);
    session.release();
  });
});

describe('refusals at typed inputs and outputs', () => {
  it('integer arithmetic on an integer input names the op and the dtype', async () => {
    const bytes = model({ opset: 13, inputs: [valueInfo('x', ['N', 3], DataType.INT64)], outputs: [valueInfo('y', ['N', 3], DataType.INT64)], nodes: [node('Neg', ['x'], ['y'], [], 'neg')] });
    const error = await refusal(bytes);
    expect(error.code).toBe(ErrorCode.UNSUPPORTED_OP);
    expect(error.message).toMatch(/Neg 'neg' \(integer arithmetic: it reads the int64 input 'x'/);
  });

  it('an integer Cast at the input that the graph computes with', async () => {
    const bytes = model({
      opset: 13, inputs: [valueInfo('x', ['N', 3])], outputs: [valueInfo('y', ['N', 3], DataType.INT32)],
      nodes: [node('Cast', ['x'], ['c'], [attr.i('to', DataType.INT32)], 'cast'), node('Neg', ['c'], ['y'], [], 'neg')],
    });
    const error = await refusal(bytes);
    expect(error.code).toBe(ErrorCode.UNSUPPORTED_OP);
    expect(error.message).toMatch(/Neg 'neg' \(integer arithmetic: it reads a Cast to int32/);
  });

  it('a Cast to float16 inside the graph', async () => {
    const bytes = model({
      opset: 13, inputs: [valueInfo('x', ['N', 3])], outputs: [valueInfo('y', ['N', 3])],
      nodes: [node('Relu', ['x'], ['r'], [], 'relu'), node('Cast', ['r'], ['h'], [attr.i('to', DataType.FLOAT16)], 'cast'), node('Neg', ['h'], ['y'], [], 'neg')],
    });
    const error = await refusal(bytes);
    expect(error.code).toBe(ErrorCode.UNSUPPORTED_OP);
    expect(error.message).toMatch(/Cast 'cast' \(Cast to ONNX type 10 on values computed at run time/);
  });

  it('FLOAT8E8M0 inputs, outputs and Cast targets: no JavaScript tensor type (bfloat16 and the other narrow formats run)', async () => {
    for (const spec of [
      { opset: 13, inputs: [valueInfo('x', ['N', 3], DataType.FLOAT8E8M0)], outputs: [valueInfo('y', ['N', 3])], nodes: [node('Cast', ['x'], ['y'], [attr.i('to', 1)], 'cast')] },
      { opset: 13, inputs: [valueInfo('x', ['N', 3])], outputs: [valueInfo('y', ['N', 3], DataType.FLOAT8E8M0)], nodes: [node('Cast', ['x'], ['y'], [attr.i('to', DataType.FLOAT8E8M0)], 'cast')] },
    ] satisfies ModelSpec[]) {
      const error = await refusal(model(spec));
      expect(error.code).toBe(ErrorCode.UNSUPPORTED_OP);
      expect(error.message).toMatch(/no JavaScript tensor type for FLOAT8E8M0/);
    }
    const session = await InferenceSession.create(model({ opset: 13, inputs: [valueInfo('x', ['N', 3])], outputs: [valueInfo('y', ['N', 3], DataType.BFLOAT16)], nodes: [node('Cast', ['x'], ['y'], [attr.i('to', DataType.BFLOAT16)], 'cast')] }));
    const y = (await session.run<'bfloat16'>({ x: new Tensor('float32', [1, -2, 3.14159], [1, 3]) })).y!;
    expect(Array.from(y.data)).toEqual([0x3f80, 0xc000, 0x4049]);
    session.release();
  });

  it('a parameter slot the caller names lets an integer input through untouched', () => {
    const graph = {
      name: 'g', inputs: [{ name: 'x', dtype: 'float32' as const, shape: ['N', 3] }, { name: 'axes', dtype: 'int64' as const, shape: [1] }],
      outputs: [{ name: 'y', dtype: 'float32' as const, shape: ['N', 1] }],
      nodes: [{ name: 'r', op: 'ReduceSum', inputs: ['x', 'axes'], outputs: ['y'], attrs: {} }], initializers: new Map(),
    };
    expect(() => edgeTypes(graph)).toThrow(/ReduceSum 'r' \(integer arithmetic: it reads the int64 input 'axes'/);
    const edges = edgeTypes(graph, { parameterSlot: (n, i) => n.op === 'ReduceSum' && i === 1 });
    expect(edges.inputs.map((e) => [e.name, e.dtype, e.via])).toEqual([['x', 'float32', 'float32'], ['axes', 'int64', undefined]]);
    expect(edges.graph.inputs.map((i) => i.dtype)).toEqual(['float32', 'int64']);
  });
});

/** The small CNN of the builder with float64 (or float16) input and output. */
function typedCnn(dtype: number): Uint8Array {
  const spec = smallCnn();
  spec.inputs = [valueInfo('input', ['batch', 1, 8, 8], dtype)];
  spec.outputs = [valueInfo('probs', ['batch', 5], dtype)];
  spec.initializers!.push(randomTensor('unused', [1], 9));
  return model(spec);
}

function transferAway(buffer: ArrayBuffer): void {
  const clone = structuredClone as (value: unknown, options: { transfer: ArrayBuffer[] }) => ArrayBuffer;
  new Uint8Array(clone(buffer, { transfer: [buffer] })).fill(0x7f);
}

describe('typed feeds taken away during an asynchronous run', () => {
  const batch = 20000;
  const pixels = (seed: number): Float64Array => {
    const rng = new Rng(seed);
    return Float64Array.from({ length: batch * 64 }, () => rng.uniform(0, 1));
  };

  it('a float64 feed transferred right after run(): the run reads its own float32 copy', async () => {
    const session = await InferenceSession.create(typedCnn(DataType.DOUBLE));
    const data = pixels(1);
    const expected = await session.run<'float64'>({ input: new Tensor('float64', data.slice(), [batch, 1, 8, 8]) });
    const pending = session.run<'float64'>({ input: new Tensor('float64', data, [batch, 1, 8, 8]) });
    expect(session.pendingRuns).toBe(1); // it did leave the event loop
    transferAway(data.buffer as ArrayBuffer);
    expect(data.length).toBe(0);
    const got = await pending;
    expect(got.probs!.type).toBe('float64');
    expect(Array.from(got.probs!.data)).toEqual(Array.from(expected.probs!.data));
    session.release();
  }, 60_000);

  it('a float16 feed on a resizable buffer, resized to 0 right after run()', async () => {
    const session = await InferenceSession.create(typedCnn(DataType.FLOAT16));
    const source = Uint16Array.from(pixels(2), toFloat16Bits);
    const rab = new ArrayBuffer(source.byteLength, { maxByteLength: source.byteLength });
    const view = new Uint16Array(rab, 0, source.length);
    view.set(source);
    const expected = await session.run<'float16'>({ input: new Tensor('float16', source, [batch, 1, 8, 8]) });
    const pending = session.run<'float16'>({ input: new Tensor('float16', view, [batch, 1, 8, 8]) });
    rab.resize(0);
    const got = await pending;
    expect(Array.from(got.probs!.data)).toEqual(Array.from(expected.probs!.data as DataTypeMap['float16']));
    session.release();
  }, 60_000);
});

describe('typed models against onnxruntime-node', () => {
  /** A float initializer stored as float16 bits (what `model.half()` exports). */
  const halfTensor = (name: string, dims: number[], seed: number, scale: number): ITensorProto => {
    const values = randomTensor(name, dims, seed, scale).floatData as number[];
    return { name, dims, dataType: DataType.FLOAT16, int32Data: values.map(toFloat16Bits) };
  };
  const doubleTensor = (name: string, dims: number[], seed: number, scale: number): ITensorProto => {
    const values = randomTensor(name, dims, seed, scale).floatData as number[];
    return { name, dims, dataType: DataType.DOUBLE, doubleData: values.map((v) => v * (1 + 1e-9)) };
  };

  const halfCnn = (): Uint8Array => model({
      opset: 17, inputs: [valueInfo('input', ['N', 3, 12, 12], DataType.FLOAT16)], outputs: [valueInfo('probs', ['N', 5], DataType.FLOAT16)],
      nodes: [
        node('Conv', ['input', 'w1', 'b1'], ['c1'], [attr.ints('kernel_shape', [3, 3]), attr.ints('pads', [1, 1, 1, 1])], 'conv1'),
        node('Relu', ['c1'], ['r1'], [], 'relu1'),
        node('Conv', ['r1', 'w2', 'b2'], ['c2'], [attr.ints('kernel_shape', [3, 3]), attr.ints('strides', [2, 2]), attr.ints('pads', [1, 1, 1, 1])], 'conv2'),
        node('Relu', ['c2'], ['r2'], [], 'relu2'),
        node('ReduceMean', ['r2'], ['m'], [attr.ints('axes', [2, 3]), attr.i('keepdims', 0)], 'mean'),
        node('Gemm', ['m', 'fw', 'fb'], ['logits'], [attr.i('transB', 1)], 'fc'),
        node('Softmax', ['logits'], ['probs'], [attr.i('axis', -1)], 'softmax'),
      ],
      initializers: [halfTensor('w1', [8, 3, 3, 3], 1, 0.4), halfTensor('b1', [8], 2, 0.1), halfTensor('w2', [8, 8, 3, 3], 3, 0.3), halfTensor('b2', [8], 4, 0.1), halfTensor('fw', [5, 8], 5, 0.5), halfTensor('fb', [5], 6, 0.1)],
  });

  it('a float16 CNN (as `model.half()` exports it) answers what onnxruntime-node answers, in float16', async () => {
    const bytes = halfCnn();
    const rng = new Rng(11);
    const bits = Uint16Array.from({ length: 2 * 3 * 12 * 12 }, () => toFloat16Bits(rng.uniform(-1, 1)));
    const session = await InferenceSession.create(bytes);
    const ours = (await session.run<'float16'>({ input: new Tensor('float16', bits, [2, 3, 12, 12]) })).probs!;
    session.release();
    const ortSession = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
    const theirs = (await ortSession.run({ input: new ort.Tensor('float16', bits, [2, 3, 12, 12]) })).probs!;
    await ortSession.release();
    expect(ours.type).toBe('float16');
    expect(theirs.type).toBe('float16');
    const a = Array.from(ours.data, fromFloat16Bits);
    const b = Array.from(theirs.data as Uint16Array, fromFloat16Bits);
    // Within one float16 step (2^-11 relative) of onnxruntime's float16 answer.
    a.forEach((v, i) => expect(Math.abs(v - b[i]!)).toBeLessThanOrEqual(2 ** -11 * Math.abs(b[i]!) + 1e-7));
  });

  it('a float64 MLP answers in float64 at float32 precision, not float64 precision', async () => {
    const bytes = model({
      opset: 17, inputs: [valueInfo('x', ['N', 16], DataType.DOUBLE)], outputs: [valueInfo('y', ['N', 4], DataType.DOUBLE)],
      nodes: [node('Gemm', ['x', 'w1', 'b1'], ['h'], [attr.i('transB', 1)], 'fc1'), node('Relu', ['h'], ['r'], [], 'relu'), node('Gemm', ['r', 'w2', 'b2'], ['y'], [attr.i('transB', 1)], 'fc2')],
      initializers: [doubleTensor('w1', [32, 16], 1, 0.3), doubleTensor('b1', [32], 2, 0.1), doubleTensor('w2', [4, 32], 3, 0.3), doubleTensor('b2', [4], 4, 0.1)],
    });
    const rng = new Rng(12);
    const x = Float64Array.from({ length: 3 * 16 }, () => rng.uniform(-1, 1));
    const session = await InferenceSession.create(bytes);
    const ours = (await session.run<'float64'>({ x: new Tensor('float64', x, [3, 16]) })).y!;
    session.release();
    const ortSession = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
    const theirs = (await ortSession.run({ x: new ort.Tensor('float64', x, [3, 16]) })).y!;
    await ortSession.release();
    expect(ours.data).toBeInstanceOf(Float64Array);
    const diffs = Array.from(ours.data, (v, i) => Math.abs(v - (theirs.data as Float64Array)[i]!) / Math.max(1, Math.abs((theirs.data as Float64Array)[i]!)));
    expect(Math.max(...diffs)).toBeLessThan(1e-5); // float32 rounding of inputs, weights and sums
    expect(Math.max(...diffs)).toBeGreaterThan(1e-12); // and not float64's: the documented precision
    // Every value is a float32 widened exactly.
    for (const v of ours.data) expect(Math.fround(v)).toBe(v);
  });

  it('compareWithOnnxRuntime feeds a float16 model float16 and compares its outputs as float32 values', async () => {
    const report = await compareWithOnnxRuntime(halfCnn(), 3);
    expect(report.batch).toBe(3);
    expect(report.outputs.map((o) => o.name)).toEqual(['probs']);
    expect(report.outputs[0]!.maxRelDiff).toBeLessThanOrEqual(2 ** -10);
    // Per node too: ORT's intermediate values are float16 (the model's float type), Kiln's float32.
    const perNode = await compareWithOnnxRuntime(halfCnn(), 2, { perNode: true });
    expect(perNode.nodes!.map((n) => n.op)).toContain('Conv');
    expect(perNode.outputs[0]!.maxRelDiff).toBeLessThanOrEqual(2 ** -10);
    // Given feeds must have the model's input type.
    await expect(compareWithOnnxRuntime(halfCnn(), { input: Tensor.zeros([1, 3, 12, 12]) })).rejects.toThrow(/a float16 Tensor for inputs\['input'\]/);
  });
});
