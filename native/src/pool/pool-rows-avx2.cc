// 2x2/2 max pool rows with AVX2: 8 outputs per step, even and odd columns split by shuffles,
// winners chosen by compare masks and blends (no data-dependent branches).
#include "common/simd.h"
#include "common/masked-load-avx2.h"

#include <limits>

#include "pool/pool-rows.h"

namespace kiln {
namespace {

// All-ones in the first `count` of 8 lanes.
inline __m256i first_lanes(size_t count) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), lane);
}

// Evens (or odds) of the 16 floats in a:b, in order.
inline __m256 evens(__m256 a, __m256 b) {
  const __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
}
inline __m256 odds(__m256 a, __m256 b) {
  const __m256 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}

inline void challenge(__m256 v, __m256i at, __m256& best, __m256i& where) {
  const __m256 larger = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
  const __m256 nan_over_number = _mm256_and_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q), _mm256_cmp_ps(best, best, _CMP_ORD_Q));
  const __m256 take = _mm256_or_ps(larger, nan_over_number);
  best = _mm256_blendv_ps(best, v, take);
  where = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(where), _mm256_castsi256_ps(at), take));
}

inline __m256 load(const float* p, size_t count) {
  return count >= 8 ? _mm256_loadu_ps(p) : maskload_ps(p, first_lanes(count));
}

}  // namespace

void f32_maxpool2d_2x2_row_avx2(const float* top, const float* bottom, size_t n, size_t first, size_t width,
                           float* out, int32_t* idx) {
  const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256i w = _mm256_set1_epi32(static_cast<int>(width));
  const __m256i one = _mm256_set1_epi32(1);
  for (size_t j = 0; j < n; j += 8) {
    const size_t count = n - j < 8 ? n - j : 8;
    const size_t lo = 2 * count < 8 ? 2 * count : 8;
    const size_t hi = 2 * count > 8 ? 2 * count - 8 : 0;
    const __m256 t0 = load(top + 2 * j, lo);
    const __m256 t1 = load(top + 2 * j + 8, hi);
    const __m256 b0 = load(bottom + 2 * j, lo);
    const __m256 b1 = load(bottom + 2 * j + 8, hi);
    const __m256i top_left = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(first + 2 * j)), even);
    __m256 best = evens(t0, t1);
    __m256i where = top_left;
    challenge(odds(t0, t1), _mm256_add_epi32(top_left, one), best, where);
    challenge(evens(b0, b1), _mm256_add_epi32(top_left, w), best, where);
    challenge(odds(b0, b1), _mm256_add_epi32(_mm256_add_epi32(top_left, w), one), best, where);
    if (count == 8) {
      _mm256_storeu_ps(out + j, best);
      if (idx != nullptr) _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + j), where);
    } else {
      const __m256i m = first_lanes(count);
      _mm256_maskstore_ps(out + j, m, best);
      if (idx != nullptr) _mm256_maskstore_epi32(idx + j, m, where);
    }
  }
}

void f32_avg_rows_avx2(const float* in, const ptrdiff_t* taps, size_t ntaps, size_t in_step, size_t stride, size_t n,
                       size_t rows, float divisor, float* out, size_t out_step) {
  const __m256 d = _mm256_set1_ps(divisor);
  for (size_t r = 0; r < rows; ++r, in += in_step, out += out_step) {
    size_t j = 0;
    if (stride == 1) {
      for (; j + 8 <= n; j += 8) {
        __m256 sum = _mm256_setzero_ps();
        for (size_t t = 0; t < ntaps; ++t) sum = _mm256_add_ps(sum, _mm256_loadu_ps(in + taps[t] + j));
        _mm256_storeu_ps(out + j, _mm256_div_ps(sum, d));
      }
    } else if (stride == 2) {
      // Two loads cover 16 columns; the last one read, 2j + 15, must be a tap (j + 8 < n).
      for (; j + 8 < n; j += 8) {
        __m256 sum = _mm256_setzero_ps();
        for (size_t t = 0; t < ntaps; ++t) {
          const float* p = in + taps[t] + 2 * j;
          sum = _mm256_add_ps(sum, evens(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)));
        }
        _mm256_storeu_ps(out + j, _mm256_div_ps(sum, d));
      }
    }
    for (; j < n; ++j) {
      float sum = 0.0f;
      for (size_t t = 0; t < ntaps; ++t) sum += in[taps[t] + static_cast<ptrdiff_t>(j * stride)];
      out[j] = sum / divisor;
    }
  }
}

void f32_max_taps_avx2(const float* const* taps, size_t ntaps, size_t n, float* out) {
  const __m256 lowest = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  const __m256 nan = _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN());
  for (size_t p = 0; p < n; p += 16) {
    // Two vectors per pass: independent max chains. max(v, best) keeps best when v is NaN, so
    // NaNs are marked aside and win at the end.
    __m256 b0 = lowest, b1 = lowest, n0 = _mm256_setzero_ps(), n1 = _mm256_setzero_ps();
    for (size_t t = 0; t < ntaps; ++t) {
      const __m256 v0 = _mm256_loadu_ps(taps[t] + p), v1 = _mm256_loadu_ps(taps[t] + p + 8);
      n0 = _mm256_or_ps(n0, _mm256_cmp_ps(v0, v0, _CMP_UNORD_Q));
      n1 = _mm256_or_ps(n1, _mm256_cmp_ps(v1, v1, _CMP_UNORD_Q));
      b0 = _mm256_max_ps(v0, b0);
      b1 = _mm256_max_ps(v1, b1);
    }
    _mm256_storeu_ps(out + p, _mm256_blendv_ps(b0, nan, n0));
    _mm256_storeu_ps(out + p + 8, _mm256_blendv_ps(b1, nan, n1));
  }
}

}  // namespace kiln
