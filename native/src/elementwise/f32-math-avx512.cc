// The fp32 math family with AVX-512: 16 lanes, masked tails (the kernels are f32-math-vec.h's).
#include <cstdint>

#include "common/simd.h"
#include "elementwise/f32-math-vec.h"

// GCC 12 flags the _mm512_undefined_ps pass-through inside the intrinsics as used uninitialized
// once they are inlined into the one-kind loops (GCC bug 105593, fixed in GCC 13): a false positive.
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace kiln {
namespace {

struct MathAvx512 {
  static constexpr size_t kLanes = 16;
  using Vec = __m512;
  using Cmp = __mmask16;
  using Mask = __mmask16;
  static Mask first_lanes(size_t n) {
    return n >= 16 ? static_cast<Mask>(0xFFFF) : static_cast<Mask>((1u << n) - 1);
  }
  static Vec loadu(const float* p) { return _mm512_loadu_ps(p); }
  static Vec load_tail(const float* p, Mask m, float fill) { return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), m, p); }
  static void storeu(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static void store_tail(float* p, Mask m, Vec v) { _mm512_mask_storeu_ps(p, m, v); }
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec set1(float x) { return _mm512_set1_ps(x); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  static Vec div(Vec a, Vec b) { return _mm512_div_ps(a, b); }
  static Vec min(Vec a, Vec b) { return _mm512_min_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  static Vec abs(Vec a) { return _mm512_abs_ps(a); }
  static Vec neg(Vec a) {
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN)));
  }
  static Vec neg_abs(Vec a) {  // -|a| in one operation
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN)));
  }
  static Vec copysign(Vec mag, Vec sign) {
    const __m512i s = _mm512_set1_epi32(INT32_MIN);
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_andnot_si512(s, _mm512_castps_si512(mag)),
                                               _mm512_and_si512(s, _mm512_castps_si512(sign))));
  }
  static Vec sqrt(Vec a) { return _mm512_sqrt_ps(a); }
  static Vec floor(Vec a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static Vec ceil(Vec a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC); }
  static Vec round_even(Vec a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static Vec pow2(Vec n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
  }
  // y 2^n for integral n, overflow and denormal results rounded as by a multiplication.
  static Vec scale2(Vec y, Vec n) { return _mm512_scalef_ps(y, n); }
  // 1 / d within 2 ulp for normal d: the 14-bit estimate and one Newton step, q + q (1 - d q).
  static Vec recip(Vec d) {
    const Vec q = _mm512_rcp14_ps(d);
    return _mm512_fmadd_ps(q, _mm512_fnmadd_ps(d, q, _mm512_set1_ps(1.0f)), q);
  }
  // x = m 2^e with m in [0.5, 1), for positive normal x.
  static Vec frexp(Vec x, Vec* e) {
    const __m512i b = _mm512_castps_si512(x);
    *e = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(b, 23), _mm512_set1_epi32(126)));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(b, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x3f000000)));
  }
  static Cmp eq(Vec a, Vec b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static Cmp lt(Vec a, Vec b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static Cmp le(Vec a, Vec b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
  static Cmp gt(Vec a, Vec b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static Cmp isnan(Vec a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
  static Cmp cmp_or(Cmp a, Cmp b) { return static_cast<Cmp>(a | b); }
  static bool any(Cmp m) { return m != 0; }
  static Vec select(Cmp m, Vec t, Vec f) { return _mm512_mask_blend_ps(m, f, t); }
  static float sum_lanes(Vec v) { return _mm512_reduce_add_ps(v); }
};

}  // namespace

void f32_unary_avx512(const F32UnaryParams& p, const float* x, float* y, size_t n) {
  F32Math<MathAvx512>::unary(p, x, y, n);
}

void f32_reduce_rows_avx512(F32ReduceKind kind, const float* x, size_t rows, size_t cols, float* out) {
  F32Math<MathAvx512>::reduce_rows(kind, x, rows, cols, out);
}

}  // namespace kiln
