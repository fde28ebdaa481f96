// Resize rows with AVX2: the 2x duplication by unpack + lane permute (16 outputs per step), the
// nearest gather and the horizontal taps by vgatherdps, the vertical blend by FMA, 8 columns at
// a time; the tails run the scalar code.
#include "common/simd.h"

#include "resize/resize-rows.h"

namespace kiln {

void f32_resize_gather_row_avx2(const float* x, const int32_t* idx, size_t n, float* y) {
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256i i = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + j));
    _mm256_storeu_ps(y + j, _mm256_i32gather_ps(x, i, 4));
  }
  for (; j < n; ++j) y[j] = x[idx[j]];
}

void f32_resize_double_row_avx2(const float* x, size_t n, float* y) {
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_loadu_ps(x + j);             // a b c d | e f g h
    const __m256 lo = _mm256_unpacklo_ps(v, v);          // a a b b | e e f f
    const __m256 hi = _mm256_unpackhi_ps(v, v);          // c c d d | g g h h
    _mm256_storeu_ps(y + 2 * j, _mm256_permute2f128_ps(lo, hi, 0x20));      // a a b b c c d d
    _mm256_storeu_ps(y + 2 * j + 8, _mm256_permute2f128_ps(lo, hi, 0x31));  // e e f f g g h h
  }
  for (; j < n; ++j) {
    y[2 * j] = x[j];
    y[2 * j + 1] = x[j];
  }
}

void f32_resize_taps_row_avx2(const float* x, const int32_t* idx, const float* w, size_t taps, size_t n, float* y) {
  size_t j = 0;
  const __m256i lane = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(taps)));
  for (; j + 8 <= n; j += 8) {
    const int32_t* ij = idx + j * taps;
    const float* wj = w + j * taps;
    __m256 s = _mm256_setzero_ps();
    for (size_t t = 0; t < taps; ++t) {
      const __m256i at = _mm256_add_epi32(lane, _mm256_set1_epi32(static_cast<int>(t)));
      const __m256i i = _mm256_i32gather_epi32(ij, at, 4);
      const __m256 wt = _mm256_i32gather_ps(wj, at, 4);
      s = _mm256_fmadd_ps(_mm256_i32gather_ps(x, i, 4), wt, s);
    }
    _mm256_storeu_ps(y + j, s);
  }
  for (; j < n; ++j) {
    float s = 0;
    for (size_t t = 0; t < taps; ++t) s += x[idx[j * taps + t]] * w[j * taps + t];
    y[j] = s;
  }
}

void f32_resize_blend_rows_avx2(const float* const* rows, const float* w, size_t taps, size_t n, float* y) {
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 s = _mm256_setzero_ps();
    for (size_t t = 0; t < taps; ++t) s = _mm256_fmadd_ps(_mm256_loadu_ps(rows[t] + j), _mm256_set1_ps(w[t]), s);
    _mm256_storeu_ps(y + j, s);
  }
  for (; j < n; ++j) {
    float s = 0;
    for (size_t t = 0; t < taps; ++t) s += rows[t][j] * w[t];
    y[j] = s;
  }
}

}  // namespace kiln
