// The fp32 math family with AVX2 + FMA: 8 lanes (the kernels are f32-math-vec.h's).
#include "common/simd.h"
#include "common/masked-load-avx2.h"
#include "elementwise/f32-math-vec.h"

namespace kiln {
namespace {

struct MathAvx2 {
  static constexpr size_t kLanes = 8;
  using Vec = __m256;
  using Cmp = __m256;
  using Mask = __m256i;
  static Mask first_lanes(size_t n) {
    const int valid = n >= 8 ? 8 : static_cast<int>(n);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Vec loadu(const float* p) { return _mm256_loadu_ps(p); }
  static Vec load_tail(const float* p, Mask m, float fill) {
    return _mm256_blendv_ps(_mm256_set1_ps(fill), maskload_ps(p, m), _mm256_castsi256_ps(m));
  }
  static void storeu(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static void store_tail(float* p, Mask m, Vec v) { _mm256_maskstore_ps(p, m, v); }
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec set1(float x) { return _mm256_set1_ps(x); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  static Vec div(Vec a, Vec b) { return _mm256_div_ps(a, b); }
  static Vec min(Vec a, Vec b) { return _mm256_min_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  static Vec abs(Vec a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static Vec neg(Vec a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }
  static Vec neg_abs(Vec a) { return _mm256_or_ps(a, _mm256_set1_ps(-0.0f)); }  // -|a| in one operation
  static Vec copysign(Vec mag, Vec sign) {
    const Vec s = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(s, mag), _mm256_and_ps(s, sign));
  }
  static Vec sqrt(Vec a) { return _mm256_sqrt_ps(a); }
  static Vec floor(Vec a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static Vec ceil(Vec a) { return _mm256_round_ps(a, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC); }
  static Vec round_even(Vec a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // 2^n for integral n in [-126, 127].
  static Vec pow2(Vec n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  }
  // y 2^n for integral n in [-252, 254], in two halves so denormal results stay right.
  static Vec scale2(Vec y, Vec n) {
    const Vec h = floor(_mm256_mul_ps(n, _mm256_set1_ps(0.5f)));
    return _mm256_mul_ps(_mm256_mul_ps(y, pow2(h)), pow2(_mm256_sub_ps(n, h)));
  }
  // 1 / d within a few ulp for normal d: the 12-bit estimate and one Newton step, q + q (1 - d q).
  static Vec recip(Vec d) {
    const Vec q = _mm256_rcp_ps(d);
    return _mm256_fmadd_ps(q, _mm256_fnmadd_ps(d, q, _mm256_set1_ps(1.0f)), q);
  }
  // x = m 2^e with m in [0.5, 1), for positive normal x.
  static Vec frexp(Vec x, Vec* e) {
    const __m256i b = _mm256_castps_si256(x);
    *e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(b, 23), _mm256_set1_epi32(126)));
    return _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(b, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f000000)));
  }
  static Cmp eq(Vec a, Vec b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static Cmp lt(Vec a, Vec b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static Cmp le(Vec a, Vec b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
  static Cmp gt(Vec a, Vec b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static Cmp isnan(Vec a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  static Cmp cmp_or(Cmp a, Cmp b) { return _mm256_or_ps(a, b); }
  static bool any(Cmp m) { return _mm256_movemask_ps(m) != 0; }
  static Vec select(Cmp m, Vec t, Vec f) { return _mm256_blendv_ps(f, t, m); }
  static float sum_lanes(Vec v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 h = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
  }
};

}  // namespace

void f32_unary_avx2(const F32UnaryParams& p, const float* x, float* y, size_t n) {
  F32Math<MathAvx2>::unary(p, x, y, n);
}

void f32_reduce_rows_avx2(F32ReduceKind kind, const float* x, size_t rows, size_t cols, float* out) {
  F32Math<MathAvx2>::reduce_rows(kind, x, rows, cols, out);
}

}  // namespace kiln
