/**
 * The narrow ONNX formats (src/tensor-formats.ts) against onnx.reference's Cast
 * (test/fixtures/formats/onnx-cast.json, written by make-onnx-cast.py): every code decoded, and
 * 252 numbers (specials, boundaries, random over 24 octaves) encoded, float8 with and without
 * saturation.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { decodeBfloat16, decodeMiniFloat, encodeBfloat16, encodeMiniFloat, encodeNarrowInt, MINI_FLOATS, type MiniFloatType, NARROW_INTS, type NarrowIntType } from '../../src/tensor-formats.js';

interface Fixture {
  inputs: (number | string)[];
  encode: Record<string, number[]>;
  decode: Record<string, { codes: number[]; values: (number | string)[] }>;
}
const fixture = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'formats', 'onnx-cast.json'), 'utf8')) as Fixture;
const num = (v: number | string): number => (typeof v === 'number' ? v : v === 'nan' ? NaN : v === 'inf' ? Infinity : -Infinity);
const inputs = fixture.inputs.map(num);

describe('narrow formats: ONNX Cast rules (onnx.reference)', () => {
  for (const type of Object.keys(MINI_FLOATS) as MiniFloatType[]) {
    it(`${type}: decodes every code and encodes like Cast`, () => {
      const d = fixture.decode[type]!;
      expect(d.codes.length).toBe(type === 'float4e2m1' ? 16 : 256);
      d.codes.forEach((c, i) => expect(decodeMiniFloat(type, c), `${type} code ${c}`).toBe(num(d.values[i]!)));
      for (const saturate of type.startsWith('float8') ? [true, false] : [true]) {
        const want = fixture.encode[`${type}/${saturate ? 1 : 0}`]!;
        expect(want.length).toBe(inputs.length);
        inputs.forEach((x, i) => expect(encodeMiniFloat(type, x, saturate), `${type} saturate=${saturate} of ${x}`).toBe(want[i]));
      }
    });
  }

  it('bfloat16', () => {
    const d = fixture.decode.bfloat16!;
    d.codes.forEach((c, i) => expect(decodeBfloat16(c), `code ${c}`).toBe(num(d.values[i]!)));
    inputs.forEach((x, i) => expect(encodeBfloat16(Math.fround(x)), `of ${x}`).toBe(fixture.encode['bfloat16/1']![i]));
  });

  for (const type of Object.keys(NARROW_INTS) as NarrowIntType[]) {
    it(`${type}: truncates and wraps like Cast`, () => {
      inputs.forEach((x, i) => expect(encodeNarrowInt(type, x), `${type} of ${x}`).toBe(fixture.encode[`${type}/1`]![i]));
    });
  }
});
