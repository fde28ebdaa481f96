// The bool family with AVX2: 32 comparisons per iteration packed into 32 bytes of 0/1; Where
// selects 8 floats per iteration. Tails shorter than a vector take the scalar kernel.
#include "common/simd.h"
#include "compare/compare-ukernel.h"

namespace kiln {
namespace {

constexpr size_t kBlock = 32;

inline __m256 load(const float* p, size_t s) { return s ? _mm256_loadu_ps(p) : _mm256_set1_ps(*p); }

// Four 8-lane all-ones/zero masks, in order, as 32 bytes of 1/0.
inline void store_masks(uint8_t* y, __m256 m0, __m256 m1, __m256 m2, __m256 m3) {
  const __m256i p01 = _mm256_packs_epi32(_mm256_castps_si256(m0), _mm256_castps_si256(m1));
  const __m256i p23 = _mm256_packs_epi32(_mm256_castps_si256(m2), _mm256_castps_si256(m3));
  // The packs work per 128-bit lane: dwords come out as m0 lo, m1 lo, m2 lo, m3 lo | m0 hi, ...
  const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(y), _mm256_and_si256(bytes, _mm256_set1_epi8(1)));
}

template <int Pred>
void compare_row(const float* a, size_t sa, const float* b, size_t sb, uint8_t* y, size_t n, F32CompareKind kind) {
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    __m256 m[4];
    for (size_t k = 0; k < 4; ++k) m[k] = _mm256_cmp_ps(load(a + (i + 8 * k) * sa, sa), load(b + (i + 8 * k) * sb, sb), Pred);
    store_masks(y + i, m[0], m[1], m[2], m[3]);
  }
  if (i < n) f32_compare_row_scalar(kind, a + i * sa, sa, b + i * sb, sb, y + i, n - i);
}

inline __m256 classify(F32ClassifyKind kind, __m256 x) {
  switch (kind) {
    case F32ClassifyKind::kIsNaN: return _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    case F32ClassifyKind::kIsInf:
      return _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x), _mm256_set1_ps(__builtin_inff()), _CMP_EQ_OQ);
    case F32ClassifyKind::kIsPosInf: return _mm256_cmp_ps(x, _mm256_set1_ps(__builtin_inff()), _CMP_EQ_OQ);
    case F32ClassifyKind::kIsNegInf: return _mm256_cmp_ps(x, _mm256_set1_ps(-__builtin_inff()), _CMP_EQ_OQ);
    case F32ClassifyKind::kNonZero: return _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NEQ_UQ);
  }
  return _mm256_setzero_ps();
}

}  // namespace

void f32_compare_row_avx2(F32CompareKind kind, const float* a, size_t sa, const float* b, size_t sb, uint8_t* y, size_t n) {
  switch (kind) {
    case F32CompareKind::kEqual: compare_row<_CMP_EQ_OQ>(a, sa, b, sb, y, n, kind); break;
    case F32CompareKind::kLess: compare_row<_CMP_LT_OQ>(a, sa, b, sb, y, n, kind); break;
    case F32CompareKind::kLessOrEqual: compare_row<_CMP_LE_OQ>(a, sa, b, sb, y, n, kind); break;
    case F32CompareKind::kGreater: compare_row<_CMP_GT_OQ>(a, sa, b, sb, y, n, kind); break;
    case F32CompareKind::kGreaterOrEqual: compare_row<_CMP_GE_OQ>(a, sa, b, sb, y, n, kind); break;
  }
}

void f32_classify_avx2(F32ClassifyKind kind, const float* x, uint8_t* y, size_t n) {
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    store_masks(y + i, classify(kind, _mm256_loadu_ps(x + i)), classify(kind, _mm256_loadu_ps(x + i + 8)),
                classify(kind, _mm256_loadu_ps(x + i + 16)), classify(kind, _mm256_loadu_ps(x + i + 24)));
  }
  if (i < n) f32_classify_scalar(kind, x + i, y + i, n - i);
}

void f32_where_row_avx2(const uint8_t* c, size_t sc, const float* x, size_t sx, const float* z, size_t sz, float* y, size_t n) {
  size_t i = 0;
  const __m256i zero = _mm256_setzero_si256();
  for (; i + 8 <= n; i += 8) {
    const __m128i cb = sc ? _mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + i)) : _mm_set1_epi8(static_cast<char>(*c));
    const __m256 is_false = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_cvtepu8_epi32(cb), zero));
    _mm256_storeu_ps(y + i, _mm256_blendv_ps(load(x + i * sx, sx), load(z + i * sz, sz), is_false));
  }
  if (i < n) f32_where_row_scalar(c + i * sc, sc, x + i * sx, sx, z + i * sz, sz, y + i, n - i);
}

}  // namespace kiln
