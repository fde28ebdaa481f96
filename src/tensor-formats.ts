/**
 * The narrow element formats of ONNX (bfloat16, the float8 and float4 kinds, 4- and 2-bit
 * integers): encoding a number into one with ONNX Cast's rules, and decoding it back.
 *
 * Kiln computes in float32, so these formats only ever meet it at a model's edges (a Cast to or
 * from one of them as the first or last node). Their bits travel in plain typed arrays, one element
 * per array slot (see tensor.ts), never packed two to a byte as ONNX stores int4 in a file.
 *
 * The rules are ONNX's (Cast, opset 23; checked against onnx.reference in
 * test/unit/tensor-formats.test.ts): round to nearest even; for the float8 kinds `saturate` (the
 * default) clamps what overflows, infinities included, to the largest finite value, else they
 * become infinity (E5M2) or NaN; the FNUZ kinds have no negative zero (a negative value that rounds
 * to zero is +0) and one NaN, 0x80; 4- and 2-bit integers take the low bits of the value
 * truncated toward zero, as numpy's astype does (NaN and infinities give 0).
 */

/** A float format of at most 8 bits: sign, `exp` exponent bits, `man` mantissa bits. */
interface MiniFloat {
  readonly exp: number;
  readonly man: number;
  readonly bias: number;
  /** 'ieee': all-ones exponent is infinity/NaN; 'fn': only S.1111.111 is NaN; 'fnuz': 0x80 is the NaN; 'none': no specials. */
  readonly specials: 'ieee' | 'fn' | 'fnuz' | 'none';
  /** Code of NaN inputs. */
  readonly nan: number;
}

/** The float formats narrower than float16 Kiln reads and writes. */
export const MINI_FLOATS = {
  float8e4m3fn: { exp: 4, man: 3, bias: 7, specials: 'fn', nan: 0x7f },
  float8e4m3fnuz: { exp: 4, man: 3, bias: 8, specials: 'fnuz', nan: 0x80 },
  float8e5m2: { exp: 5, man: 2, bias: 15, specials: 'ieee', nan: 0x7e },
  float8e5m2fnuz: { exp: 5, man: 2, bias: 16, specials: 'fnuz', nan: 0x80 },
  float4e2m1: { exp: 2, man: 1, bias: 1, specials: 'none', nan: 0x8 },
} as const satisfies Record<string, MiniFloat>;
export type MiniFloatType = keyof typeof MINI_FLOATS;

/** 4- and 2-bit integer formats: bits and signedness. */
export const NARROW_INTS = {
  int4: { bits: 4, signed: true },
  uint4: { bits: 4, signed: false },
  int2: { bits: 2, signed: true },
  uint2: { bits: 2, signed: false },
} as const;
export type NarrowIntType = keyof typeof NARROW_INTS;

/** Largest magnitude code (sign bit clear) and its value. */
function largest(f: MiniFloat): { code: number; value: number } {
  const maxExpField = f.specials === 'ieee' ? (1 << f.exp) - 2 : (1 << f.exp) - 1;
  const maxMan = f.specials === 'fn' ? (1 << f.man) - 2 : (1 << f.man) - 1;
  const code = (maxExpField << f.man) | maxMan;
  return { code, value: decodeMagnitude(f, code) };
}

function decodeMagnitude(f: MiniFloat, code: number): number {
  const e = code >> f.man;
  const m = code & ((1 << f.man) - 1);
  if (e === 0) return m * 2 ** (1 - f.bias - f.man);
  return (1 + m / (1 << f.man)) * 2 ** (e - f.bias);
}

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The code of `x` in format `type` (ONNX Cast rules; `saturate` applies to the float8 kinds). */
export function encodeMiniFloat(type: MiniFloatType, x: number, saturate = true): number {
  const f: MiniFloat = MINI_FLOATS[type];
  const signBit = 1 << (f.exp + f.man);
  const top = largest(f);
  const sign = x < 0 || Object.is(x, -0) ? signBit : 0;
  // float4 has nothing to overflow into: it always saturates.
  const clamp = saturate || f.specials === 'none';
  const overflow = (): number => (clamp ? sign | top.code : f.specials === 'ieee' ? sign | (((1 << f.exp) - 1) << f.man) : f.specials === 'fn' ? sign | 0x7f : f.nan);
  if (Number.isNaN(x)) return f.nan;
  const a = Math.abs(x);
  if (a === Infinity) return overflow();
  const minNormal = 2 ** (1 - f.bias);
  let magnitude: number;
  if (a < minNormal) {
    // Subnormal (or zero): a multiple of the smallest step; rounding up to the first normal is
    // that normal's code, since the codes run on continuously.
    magnitude = roundHalfEven(a / 2 ** (1 - f.bias - f.man));
  } else {
    let e = Math.floor(Math.log2(a));
    if (2 ** e > a) e--;
    else if (2 ** (e + 1) <= a) e++;
    let q = roundHalfEven((a / 2 ** e - 1) * (1 << f.man));
    if (q === 1 << f.man) {
      q = 0;
      e++;
    }
    const field = e + f.bias;
    if (field > (1 << f.exp) - 1) return overflow();
    magnitude = (field << f.man) | q;
    if (decodeMagnitude(f, magnitude) > top.value || (f.specials === 'fn' && magnitude > top.code) || (f.specials === 'ieee' && field === (1 << f.exp) - 1)) return overflow();
  }
  if (magnitude === 0 && f.specials === 'fnuz') return 0;
  return sign | magnitude;
}

/** The value of code `code` in format `type`. */
export function decodeMiniFloat(type: MiniFloatType, code: number): number {
  const f: MiniFloat = MINI_FLOATS[type];
  const signBit = 1 << (f.exp + f.man);
  const magnitude = code & (signBit - 1);
  const negative = (code & signBit) !== 0;
  if (f.specials === 'fnuz' && code === f.nan) return NaN;
  if (f.specials === 'fn' && magnitude === (signBit - 1)) return NaN;
  if (f.specials === 'ieee' && magnitude >> f.man === (1 << f.exp) - 1) return (magnitude & ((1 << f.man) - 1)) !== 0 ? NaN : negative ? -Infinity : Infinity;
  const v = decodeMagnitude(f, magnitude);
  return negative ? -v : v;
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** bfloat16 bits of `x`: float32 rounded to nearest even to its top 16 bits; NaN is 0x7fc0. */
export function encodeBfloat16(x: number): number {
  if (Number.isNaN(x)) return 0x7fc0;
  F32[0] = x;
  const bits = U32[0]!;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function decodeBfloat16(bits: number): number {
  U32[0] = (bits & 0xffff) << 16;
  return F32[0]!;
}

/** `x` truncated toward zero, wrapped to a `type` integer (NaN and infinities: 0). */
export function encodeNarrowInt(type: NarrowIntType, x: number): number {
  const { bits, signed } = NARROW_INTS[type];
  if (!Number.isFinite(x) || Math.abs(x) >= 2 ** 63) return 0;
  const span = 2 ** bits;
  const low = ((Math.trunc(x) % span) + span) % span;
  return signed && low >= span / 2 ? low - span : low;
}
