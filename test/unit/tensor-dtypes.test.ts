import { describe, expect, it } from 'vitest';

import { DTYPE_BYTES, DTYPES, fromFloat16Bits, Tensor, toFloat16Bits } from '../../src/tensor.js';

describe('Tensor dtypes (onnxruntime-node names and arrays)', () => {
  it('holds every dtype in its typed array, from typed arrays or plain values', () => {
    const arrays = {
      float32: Float32Array, float64: Float64Array, float16: Uint16Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array,
      uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array, bool: Uint8Array,
      bfloat16: Uint16Array, float8e4m3fn: Uint8Array, float8e4m3fnuz: Uint8Array, float8e5m2: Uint8Array, float8e5m2fnuz: Uint8Array,
      float4e2m1: Uint8Array, int4: Int8Array, uint4: Uint8Array, int2: Int8Array, uint2: Uint8Array,
    } as const;
    expect(Object.keys(arrays).sort()).toEqual([...DTYPES].sort());
    for (const type of DTYPES) {
      const t = new Tensor(type, [1, 0, 1, 1], [2, 2]);
      expect(t.data).toBeInstanceOf(arrays[type]);
      expect(t.data.BYTES_PER_ELEMENT).toBe(DTYPE_BYTES[type]);
      expect(t.dims).toEqual([2, 2]);
    }
  });

  it('reads int64 from numbers or bigints and refuses fractions', () => {
    expect(Array.from(new Tensor('int64', [-3, 2n ** 40n]).data)).toEqual([-3n, 2n ** 40n]);
    expect(() => new Tensor('int64', [1.5])).toThrow(/integer for type 'int64'.*1.5/);
    expect(() => new Tensor('int64', new Int32Array(2) as never)).toThrow(TypeError);
  });

  it('stores float16 values as half bits, rounding to nearest even', () => {
    const t = new Tensor('float16', [1, -2, 65504, 1e6, 2 ** -24, 2 ** -26, 1 + 2 ** -11, 1 + 3 * 2 ** -11, NaN]);
    expect(Array.from(t.data, (b) => b.toString(16))).toEqual(['3c00', 'c000', '7bff', '7c00', '1', '0', '3c00', '3c02', '7e00']);
    expect(fromFloat16Bits(0x3555)).toBeCloseTo(1 / 3, 3);
    expect(bool(new Tensor('bool', [2, 0, -1]).data)).toEqual([1, 0, 1]);
  });

  it('encodes plain numbers for the narrow formats and range-checks narrow integers', () => {
    expect(Array.from(new Tensor('float8e4m3fn', [1, -2, 1000]).data)).toEqual([0x38, 0xc0, 0x7e]);
    expect(Array.from(new Tensor('bfloat16', [1, -2]).data)).toEqual([0x3f80, 0xc000]);
    expect(Array.from(new Tensor('int4', [-8, 7]).data)).toEqual([-8, 7]);
    expect(() => new Tensor('int4', [8])).toThrow(/an integer in \[-8, 7\] for type 'int4'/);
    expect(() => new Tensor('uint2', [1.5])).toThrow(TypeError);
  });

  it('round-trips every finite half through toFloat16Bits', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      if ((bits & 0x7c00) === 0x7c00) continue;
      expect(toFloat16Bits(fromFloat16Bits(bits))).toBe(bits === 0x8000 ? 0x8000 : bits);
    }
  });
});

function bool(a: Uint8Array): number[] {
  return Array.from(a);
}
