// Quantize / dequantize rows with AVX-512, 16 floats per step; the tail uses masked loads and
// stores instead of a scalar loop. Same operation sequence as the AVX2 rows.
// GCC 12 warns inside its own headers about _mm512_undefined_*(); the value is never used.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "common/simd.h"

#include "quant/requantize-avx512.h"
#include "s8-conv/quantize-rows.h"

namespace kiln {
namespace {

inline __mmask16 first_lanes(size_t count) {
  return count >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << count) - 1u);
}

constexpr size_t kPrefetchFloats = 1024;

}  // namespace

void quantize_u8_row_avx512(const float* in, uint8_t* out, size_t n, const QuantizeParams& p) {
  const __m512 scale = _mm512_set1_ps(p.scale), lo = _mm512_set1_ps(p.lo), hi = _mm512_set1_ps(p.hi);
  const __m512i zp = _mm512_set1_epi32(p.zero_point);
  for (size_t i = 0; i < n; i += 16) {
    // A graph's input comes from memory, a few channel rows at a time (quantize-layout.cc's
    // tiles): the hardware prefetcher loses those short streams at each switch. A line 4 KiB
    // ahead (prefetches never fault): a batch of 16 RGB 224x224 images, cold, 0.46 -> 0.20 ms.
    _mm_prefetch(reinterpret_cast<const char*>(in + i + kPrefetchFloats), _MM_HINT_T0);
    const __mmask16 m = first_lanes(n - i);
    // Masked-off lanes load 1.0f (no fault, no division by zero surprises).
    __m512 v = _mm512_div_ps(_mm512_mask_loadu_ps(_mm512_set1_ps(1.0f), m, in + i), scale);
    v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), zp);
    _mm512_mask_cvtusepi32_storeu_epi8(out + i, m, q);
  }
}

void dequantize_u8_row_avx512(const uint8_t* in, float* out, size_t n, float scale, int32_t zero_point) {
  const __m512 s = _mm512_set1_ps(scale);
  const __m512i zp = _mm512_set1_epi32(zero_point);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = first_lanes(n - i);
    const __m512i q = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, in + i));
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(q, zp)), s));
  }
}

void mul_u8_row_avx512(const uint8_t* a, const float* tb, bool one_tb, uint8_t* y, size_t n, const U8MulParams& p) {
  const __m512 as = _mm512_set1_ps(p.a_scale), ys = _mm512_set1_ps(p.y_scale);
  const __m512i az = _mm512_set1_epi32(p.a_zero_point);
  const __m512 yz = _mm512_set1_ps(p.y_zero_point), lo = _mm512_setzero_ps(), hi = _mm512_set1_ps(255.0f);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = first_lanes(n - i);
    const __m512i qa = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, a + i));
    const __m512 ta = _mm512_mul_ps(as, _mm512_cvtepi32_ps(_mm512_sub_epi32(qa, az)));
    // Masked-off lanes multiply by 1.0f: nothing to fault on, nothing stored.
    const __m512 b = one_tb ? _mm512_set1_ps(tb[0]) : _mm512_mask_loadu_ps(_mm512_set1_ps(1.0f), m, tb + i);
    const __m512 r = _mm512_roundscale_ps(_mm512_div_ps(_mm512_mul_ps(ta, b), ys), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 q = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(r, yz), lo), hi);
    _mm512_mask_cvtusepi32_storeu_epi8(y + i, m, _mm512_cvtps_epi32(q));
  }
}

void affine_u8_row_avx512(const uint8_t* x, const float* a, const float* b, uint8_t* y, size_t n, const U8AffineParams& p) {
  const __m512 xs = _mm512_set1_ps(p.x_scale), ys = _mm512_set1_ps(p.y.scale);
  const __m512 lo = _mm512_set1_ps(p.y.lo), hi = _mm512_set1_ps(p.y.hi), zero = _mm512_setzero_ps();
  const __m512i xz = _mm512_set1_epi32(p.x_zero_point), yz = _mm512_set1_epi32(p.y.zero_point);
  const bool relu = p.relu;  // read once: the byte stores below may alias p as far as GCC knows
  const auto codes16 = [&](__m512i q, __m512 av, __m512 bv) {
    __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(q, xz)), xs), av);
    // The product rounded before the sum: GCC would otherwise contract mul + add into an FMA.
    __asm__("" : "+v"(v));
    v = _mm512_add_ps(v, bv);
    if (relu) v = _mm512_max_ps(zero, v);  // the second operand for NaN and for -0
    v = _mm512_div_ps(v, ys);
    v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    return _mm512_cvtusepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(v), yz));
  };
  // Whole vectors unmasked (a fifth faster on Zen 5 than masking every one), the tail masked.
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), codes16(q, _mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
  }
  if (i < n) {
    const __mmask16 m = first_lanes(n - i);
    const __m512i q = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, x + i));
    _mm_mask_storeu_epi8(y + i, m, codes16(q, _mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
  }
}

void lookup_u8_row_avx512(const uint8_t* table, const uint8_t* x, uint8_t* y, size_t n) {
  __m512i rows[16];
  for (int r = 0; r < 16; ++r) rows[r] = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 16 * r)));
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  for (size_t i = 0; i < n; i += 64) {
    const __mmask64 m = n - i >= 64 ? ~__mmask64{0} : (__mmask64{1} << (n - i)) - 1;
    const __m512i v = _mm512_maskz_loadu_epi8(m, x + i);
    const __m512i lo = _mm512_and_si512(v, nibble);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
    __m512i out = _mm512_setzero_si512();
    for (int r = 0; r < 16; ++r) {
      out = _mm512_mask_shuffle_epi8(out, _mm512_cmpeq_epi8_mask(hi, _mm512_set1_epi8(static_cast<char>(r))), rows[r], lo);
    }
    _mm512_mask_storeu_epi8(y + i, m, out);
  }
}

void add_u8_row_avx512(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n, const U8AddParams& p) {
  const __m512 as = _mm512_set1_ps(p.a_ratio), bs = _mm512_set1_ps(p.b_ratio);
  const __m512i az = _mm512_set1_epi32(p.a_zero_point), bz = _mm512_set1_epi32(p.b_zero_point);
  const __m512 yz = _mm512_set1_ps(p.y_zero_point), lo = _mm512_set1_ps(p.y_min), hi = _mm512_set1_ps(255.0f);
  // a_ratio * (a - a_zp) + b_ratio * (b - b_zp) for 16 elements from `at`, unrounded.
  const auto sum16 = [&](size_t at) {
    const __m512i qa = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + at)));
    const __m512i qb = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + at)));
    // Two products and a sum, not an FMA: the specification rounds each.
    __m512 ra = _mm512_mul_ps(as, _mm512_cvtepi32_ps(_mm512_sub_epi32(qa, az)));
    __m512 rb = _mm512_mul_ps(bs, _mm512_cvtepi32_ps(_mm512_sub_epi32(qb, bz)));
    // The products rounded before the sum: GCC would otherwise contract mul + add into an FMA.
    __asm__("" : "+v"(ra), "+v"(rb));
    return _mm512_add_ps(ra, rb);
  };
  size_t i = 0;
  // 64 at a time, the lower bound taken after rounding: cvtps2dq of the sum clamped only from
  // above (by 255 - y_zp; clamping to an integer before rounding equals after), then saturating
  // packs to int16 (+ y_zp) and uint8 and a byte max with y_min. Fewer instructions than the
  // clamp-round-clamp of the 16-wide loop below, which takes the rest: 0.176 against 0.207 ns per
  // element when the sum was still divided by y_scale (all 65,536 code pairs of 2,000 random
  // parameter sets gave the same bits).
  const __m512 q_hi = _mm512_set1_ps(255.0f - p.y_zero_point);
  const __m512i zp16 = _mm512_set1_epi16(static_cast<int16_t>(p.y_zero_point));
  const __m512i y_min8 = _mm512_set1_epi8(static_cast<char>(static_cast<int>(p.y_min)));
  for (; i + 64 <= n; i += 64) {
    __m512i q[4];
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) q[v] = _mm512_cvtps_epi32(_mm512_min_ps(q_hi, sum16(i + 16 * v)));
    _mm512_storeu_si512(y + i, avx512_epilogue::pack_u8x64(q, zp16, y_min8));
  }
  for (; i + 16 <= n; i += 16) {
    const __m512 r = _mm512_roundscale_ps(sum16(i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 q = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(r, yz), lo), hi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm512_cvtusepi32_epi8(_mm512_cvtps_epi32(q)));
  }
  for (; i < n; ++i) y[i] = add_u8_one(a[i], b[i], p);
}

}  // namespace kiln
