// 2x2/2 max pool rows with AVX-512: 16 outputs per step, even and odd columns split by permutes,
// winners chosen by compare masks (no data-dependent branches).
#include "common/simd.h"

#include <limits>

#include "pool/pool-rows.h"

namespace kiln {
namespace {

inline __mmask16 first_lanes(size_t count) {
  return count >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << count) - 1u);
}

// Takes `v` where it beats `best`: larger, or NaN over a number.
inline void challenge(__m512 v, __m512i at, __m512& best, __m512i& where) {
  const __mmask16 larger = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
  const __mmask16 nan_over_number = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q);
  const __mmask16 take = larger | nan_over_number;
  best = _mm512_mask_mov_ps(best, take, v);
  where = _mm512_mask_mov_epi32(where, take, at);
}

}  // namespace

void f32_maxpool2d_2x2_row_avx512(const float* top, const float* bottom, size_t n, size_t first, size_t width,
                             float* out, int32_t* idx) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i w = _mm512_set1_epi32(static_cast<int>(width));
  const __m512i one = _mm512_set1_epi32(1);
  for (size_t j = 0; j < n; j += 16) {
    const size_t count = n - j < 16 ? n - j : 16;
    const __mmask16 lo = first_lanes(2 * count);
    const __mmask16 hi = first_lanes(2 * count > 16 ? 2 * count - 16 : 0);
    const __m512 t0 = _mm512_maskz_loadu_ps(lo, top + 2 * j);
    const __m512 t1 = _mm512_maskz_loadu_ps(hi, top + 2 * j + 16);
    const __m512 b0 = _mm512_maskz_loadu_ps(lo, bottom + 2 * j);
    const __m512 b1 = _mm512_maskz_loadu_ps(hi, bottom + 2 * j + 16);
    // Plane offset of each window's top-left tap: first + 2 * (j + lane).
    const __m512i top_left = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(first + 2 * j)), even);
    __m512 best = _mm512_permutex2var_ps(t0, even, t1);
    __m512i where = top_left;
    challenge(_mm512_permutex2var_ps(t0, odd, t1), _mm512_add_epi32(top_left, one), best, where);
    challenge(_mm512_permutex2var_ps(b0, even, b1), _mm512_add_epi32(top_left, w), best, where);
    challenge(_mm512_permutex2var_ps(b0, odd, b1), _mm512_add_epi32(_mm512_add_epi32(top_left, w), one), best, where);
    const __mmask16 store = first_lanes(count);
    _mm512_mask_storeu_ps(out + j, store, best);
    if (idx != nullptr) _mm512_mask_storeu_epi32(idx + j, store, where);
  }
}

void f32_avg_rows_avx512(const float* in, const ptrdiff_t* taps, size_t ntaps, size_t in_step, size_t stride, size_t n,
                         size_t rows, float divisor, float* out, size_t out_step) {
  if (stride > 2) {
    for (size_t r = 0; r < rows; ++r, in += in_step, out += out_step) {
      for (size_t j = 0; j < n; ++j) {
        float sum = 0.0f;
        for (size_t t = 0; t < ntaps; ++t) sum += in[taps[t] + static_cast<ptrdiff_t>(j * stride)];
        out[j] = sum / divisor;
      }
    }
    return;
  }
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512 d = _mm512_set1_ps(divisor);
  for (size_t r = 0; r < rows; ++r, in += in_step, out += out_step) {
    for (size_t j = 0; j < n; j += 16) {
      const size_t count = n - j < 16 ? n - j : 16;
      const __mmask16 m = first_lanes(count);
      __m512 sum = _mm512_setzero_ps();
      if (stride == 1) {
        for (size_t t = 0; t < ntaps; ++t) sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(m, in + taps[t] + j));
      } else {
        // Columns 2j .. 2j + 2 count - 2: the odd column after the last tap is not read.
        const size_t span = 2 * count - 1;
        const __mmask16 lo = first_lanes(span), hi = first_lanes(span > 16 ? span - 16 : 0);
        for (size_t t = 0; t < ntaps; ++t) {
          const float* p = in + taps[t] + 2 * j;
          sum = _mm512_add_ps(sum, _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(lo, p), even, _mm512_maskz_loadu_ps(hi, p + 16)));
        }
      }
      _mm512_mask_storeu_ps(out + j, m, _mm512_div_ps(sum, d));
    }
  }
}

void f32_max_taps_avx512(const float* const* taps, size_t ntaps, size_t n, float* out) {
  const __m512 lowest = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const __m512 nan = _mm512_set1_ps(std::numeric_limits<float>::quiet_NaN());
  for (size_t p = 0; p < n; p += 32) {
    // Two vectors per pass: independent max chains. max(v, best) keeps best when v is NaN, so
    // NaNs are counted aside and win at the end.
    __m512 b0 = lowest, b1 = lowest;
    __mmask16 n0 = 0, n1 = 0;
    for (size_t t = 0; t < ntaps; ++t) {
      const __m512 v0 = _mm512_loadu_ps(taps[t] + p), v1 = _mm512_loadu_ps(taps[t] + p + 16);
      n0 |= _mm512_cmp_ps_mask(v0, v0, _CMP_UNORD_Q);
      n1 |= _mm512_cmp_ps_mask(v1, v1, _CMP_UNORD_Q);
      b0 = _mm512_max_ps(v0, b0);
      b1 = _mm512_max_ps(v1, b1);
    }
    _mm512_storeu_ps(out + p, _mm512_mask_mov_ps(b0, n0, nan));
    _mm512_storeu_ps(out + p + 16, _mm512_mask_mov_ps(b1, n1, nan));
  }
}

}  // namespace kiln
