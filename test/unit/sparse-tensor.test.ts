import { describe, expect, it } from 'vitest';

import { SPARSE_FORMATS, SparseTensor, sparseProblem, sparsityOf, toDense, toSparse, validateSparse } from '../../src/sparse-tensor.js';
import type { SparseFormat, SparseParts } from '../../src/sparse-tensor.js';
import { Tensor } from '../../src/tensor.js';
import { Rng } from '../../src/util/rng.js';
import { randomSparse } from './sparse-helpers.js';

function bits(t: Tensor): Int32Array | Int8Array {
  return t.data instanceof Float32Array ? new Int32Array(t.data.buffer, t.data.byteOffset, t.data.length) : (t.data as Int8Array);
}

const SHAPES = [[1], [7], [3, 5], [8, 12], [10, 3, 3, 3], [9, 1, 5, 5], [13, 17], [16, 8], [5, 0], [0, 4]];
const SPARSITIES = [0, 0.5, 0.9, 0.99, 1];

describe('SparseTensor', () => {
  it('toDense(toSparse(t)) is t bit for bit: every shape, sparsity, dtype and format', () => {
    const rng = new Rng(12);
    let cases = 0;
    for (const dims of SHAPES) {
      for (const sparsity of SPARSITIES) {
        for (const dtype of ['float32', 'int8'] as const) {
          const t = randomSparse(rng, dtype, dims, sparsity);
          for (const format of SPARSE_FORMATS) {
            const s = toSparse(t, format);
            expect(s.format).toBe(format);
            expect(sparseProblem(s)).toBeUndefined();
            const back = toDense(s);
            expect(back.type).toBe(dtype);
            expect(back.dims).toEqual(dims);
            expect(Array.from(bits(back))).toEqual(Array.from(bits(t)));
            if (format === 'csr') expect(s.nnz).toBe(Math.round((1 - sparsityOf(t)) * t.size));
            cases++;
          }
        }
      }
    }
    expect(cases).toBe(SHAPES.length * SPARSITIES.length * 2 * SPARSE_FORMATS.length);
  });

  it('drops zeros (+0 and -0) and keeps NaN payloads and every other value exactly', () => {
    const data = new Float32Array([0, -0, Number.NaN, -1.5, 0, 3e-39, 0, 0]);
    const payload = new Int32Array(data.buffer);
    payload[2] = 0x7fc00123;
    const s = toSparse(new Tensor('float32', data, [2, 4]));
    expect(s.nnz).toBe(3);
    expect(Array.from(s.rowPtr)).toEqual([0, 2, 3]);
    expect(Array.from(s.colIdx)).toEqual([2, 3, 1]);
    const back = new Int32Array(toDense(s).data.buffer);
    expect(back[2]).toBe(0x7fc00123);
    expect(back[1]).toBe(0); // -0 comes back as +0
    expect(Array.from(back).filter((_, i) => i !== 1)).toEqual(Array.from(payload).filter((_, i) => i !== 1));
    expect(sparsityOf(new Tensor('float32', data, [8]))).toBe(5 / 8);
  });

  it('stores blocks as documented: kept when any element is non-zero, padded with zeros at the edges', () => {
    // 3 x 6 matrix, 1x4 blocks: 2 block columns, the second half outside the matrix.
    const t = new Tensor('float32', [0, 0, 0, 0, 0, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [3, 6]);
    const s = toSparse(t, 'bcsr-1x4');
    expect(Array.from(s.rowPtr)).toEqual([0, 1, 2, 2]);
    expect(Array.from(s.colIdx)).toEqual([1, 0]);
    expect(Array.from(s.values)).toEqual([0, 5, 0, 0, 1, 0, 0, 0]);
    const r = toSparse(new Tensor('int8', new Int8Array([0, 1, 0, 0, 0, 2]), [3, 2]), 'bcsr-4x1');
    expect(Array.from(r.rowPtr)).toEqual([0, 1]);
    expect(Array.from(r.colIdx)).toEqual([1]);
    expect(Array.from(r.values)).toEqual([1, 0, 2, 0]);
    expect(r.sparsity).toBeCloseTo(1 - 4 / 6);
    expect(toSparse(t, 'csr').sparsity).toBeCloseTo(16 / 18);
  });

  const base = (): SparseParts => {
    const s = toSparse(new Tensor('float32', [1, 0, 2, 0, 0, 3, 0, 0, 4, 0, 5, 0], [3, 4]));
    return { dtype: s.dtype, dims: [3, 4], pattern: 'csr', block: [1, 1], rowPtr: s.rowPtr.slice(), colIdx: s.colIdx.slice(), values: s.values.slice() };
  };

  it('validateSparse names each structural fault with ERR_KILN_CORRUPT_MODEL', () => {
    expect(Array.from(base().rowPtr)).toEqual([0, 2, 3, 5]);
    expect(Array.from(base().colIdx)).toEqual([0, 2, 1, 0, 2]);
    expect(() => validateSparse(base(), [3, 4])).not.toThrow();
    const cases: [string, (p: SparseParts) => SparseParts, (readonly number[])?][] = [
      ['not monotonic', (p) => ({ ...p, rowPtr: Int32Array.from([0, 3, 2, 5]) })],
      ['row pointer 0 is 1', (p) => ({ ...p, rowPtr: Int32Array.from([1, 2, 3, 5]) })],
      ['row pointers hold 3 entries, expected 4', (p) => ({ ...p, rowPtr: Int32Array.from([0, 2, 5]) })],
      ['last row pointer is 4', (p) => ({ ...p, rowPtr: Int32Array.from([0, 2, 3, 4]) })],
      ['runs past the 5 stored column indices', (p) => ({ ...p, rowPtr: Int32Array.from([0, 2, 3, 6]) })],
      ['column index 4 at position 1 (row 0) is outside the row: 4 columns', (p) => ({ ...p, colIdx: Int32Array.from([0, 4, 1, 0, 2]) })],
      ['column index -1', (p) => ({ ...p, colIdx: Int32Array.from([0, 2, -1, 0, 2]) })],
      ['not strictly increasing: 2 then 2', (p) => ({ ...p, colIdx: Int32Array.from([0, 2, 1, 2, 2]) })],
      ['not strictly increasing: 2 then 0', (p) => ({ ...p, colIdx: Int32Array.from([2, 0, 1, 0, 2]) })],
      ['4 values stored, expected 5', (p) => ({ ...p, values: p.values.slice(0, 4) })],
      ["do not match the layer's [4, 3]", (p) => p, [4, 3]],
      ["do not match the layer's [3, 2, 2]", (p) => p, [3, 2, 2]],
      ['values is not a Float32Array', (p) => ({ ...p, values: new Int8Array(5) })],
      ['rowPtr is not an Int32Array', (p) => ({ ...p, rowPtr: new Uint32Array(4) as unknown as Int32Array })],
      ['block [1, 4] is not [1, 1]', (p) => ({ ...p, block: [1, 4] })],
      ['block [2, 2] is not one of', (p) => ({ ...p, pattern: 'bcsr', block: [2, 2] })],
      ['dtype int32', (p) => ({ ...p, dtype: 'int32' as 'int8' })],
      ['dims is not an array of 1 to 16', (p) => ({ ...p, dims: [] })],
      ['not an integer', (p) => ({ ...p, dims: [3, 4.5] })],
    ];
    for (const [message, edit, expectDims] of cases) {
      expect(() => validateSparse(edit(base()), expectDims, "tensor 'w'")).toThrow(
        expect.objectContaining({ name: 'KilnError', code: 'ERR_KILN_CORRUPT_MODEL', message: expect.stringContaining(message) }),
      );
    }
    // A blocked tensor: block column indices are bounded by the block columns, padding must be 0.
    const b = toSparse(new Tensor('float32', [1, 0, 0, 0, 0, 2], [1, 6]), 'bcsr-1x4');
    const parts = { ...b, dims: b.dims, block: b.block, pattern: b.pattern, dtype: b.dtype };
    expect(sparseProblem({ ...parts, colIdx: Int32Array.from([0, 2]) })).toContain('outside the block row: 2 block columns of 4');
    const padded = b.values.slice();
    padded[7] = 9;
    expect(sparseProblem({ ...parts, values: padded })).toContain('non-zero value outside the 1 x 6 matrix');
  });

  it('the constructor refuses inconsistent parts with a RangeError; toSparse checks its arguments', () => {
    expect(() => new SparseTensor({ ...base(), rowPtr: Int32Array.from([0, 3, 2, 5]) })).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_KILN_INVALID_ARG' }));
    expect(() => toSparse(new Tensor('int32', [1, 2], [2]))).toThrow(RangeError);
    expect(() => toSparse(new Tensor('float32', [1], []))).toThrow(RangeError);
    expect(() => toSparse(new Tensor('float32', [1], [1]), 'bcsr-2x2' as SparseFormat)).toThrow(RangeError);
    expect(() => toSparse([1, 2] as unknown as Tensor)).toThrow(TypeError);
    expect(() => toDense({} as SparseTensor)).toThrow(TypeError);
  });
});
