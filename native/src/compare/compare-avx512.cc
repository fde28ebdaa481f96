// The bool family with AVX-512 (F + BW + VL): 16 lanes per iteration straight into mask
// registers; tails run masked, so nothing falls back to scalar.
#include "common/simd.h"
#include "compare/compare-ukernel.h"

namespace kiln {
namespace {

inline __m512 load(const float* p, size_t s, __mmask16 m) { return s ? _mm512_maskz_loadu_ps(m, p) : _mm512_set1_ps(*p); }

inline void store_mask(uint8_t* y, __mmask16 k, __mmask16 valid) {
  _mm_mask_storeu_epi8(y, valid, _mm_maskz_set1_epi8(k, 1));
}

inline __mmask16 first(size_t n) { return n >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << n) - 1); }

template <int Pred>
void compare_row(const float* a, size_t sa, const float* b, size_t sb, uint8_t* y, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 valid = first(n - i);
    store_mask(y + i, _mm512_cmp_ps_mask(load(a + i * sa, sa, valid), load(b + i * sb, sb, valid), Pred), valid);
  }
}

inline __mmask16 classify(F32ClassifyKind kind, __m512 x) {
  switch (kind) {
    case F32ClassifyKind::kIsNaN: return _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    case F32ClassifyKind::kIsInf: return _mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(__builtin_inff()), _CMP_EQ_OQ);
    case F32ClassifyKind::kIsPosInf: return _mm512_cmp_ps_mask(x, _mm512_set1_ps(__builtin_inff()), _CMP_EQ_OQ);
    case F32ClassifyKind::kIsNegInf: return _mm512_cmp_ps_mask(x, _mm512_set1_ps(-__builtin_inff()), _CMP_EQ_OQ);
    case F32ClassifyKind::kNonZero: return _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NEQ_UQ);
  }
  return 0;
}

}  // namespace

void f32_compare_row_avx512(F32CompareKind kind, const float* a, size_t sa, const float* b, size_t sb, uint8_t* y, size_t n) {
  switch (kind) {
    case F32CompareKind::kEqual: compare_row<_CMP_EQ_OQ>(a, sa, b, sb, y, n); break;
    case F32CompareKind::kLess: compare_row<_CMP_LT_OQ>(a, sa, b, sb, y, n); break;
    case F32CompareKind::kLessOrEqual: compare_row<_CMP_LE_OQ>(a, sa, b, sb, y, n); break;
    case F32CompareKind::kGreater: compare_row<_CMP_GT_OQ>(a, sa, b, sb, y, n); break;
    case F32CompareKind::kGreaterOrEqual: compare_row<_CMP_GE_OQ>(a, sa, b, sb, y, n); break;
  }
}

void f32_classify_avx512(F32ClassifyKind kind, const float* x, uint8_t* y, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 valid = first(n - i);
    store_mask(y + i, classify(kind, _mm512_maskz_loadu_ps(valid, x + i)), valid);
  }
}

void f32_where_row_avx512(const uint8_t* c, size_t sc, const float* x, size_t sx, const float* z, size_t sz, float* y, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 valid = first(n - i);
    const __m128i cb = sc ? _mm_maskz_loadu_epi8(valid, c + i) : _mm_set1_epi8(static_cast<char>(*c));
    const __mmask16 pick_x = _mm_test_epi8_mask(cb, cb);
    _mm512_mask_storeu_ps(y + i, valid, _mm512_mask_blend_ps(pick_x, load(z + i * sz, sz, valid), load(x + i * sx, sx, valid)));
  }
}

}  // namespace kiln
