// AVX2 depthwise kernels (conv/depthwise.h): the AVX-512 file's loops on 8-lane vectors. Lengths
// round up to whole vectors: the phase planes (conv/phase-planes.h) carry kPhaseSlack floats of slack for it.
#include "common/simd.h"

#include "common/f32-vec.h"
#include "conv/depthwise-stride2.h"
#include "conv/depthwise.h"

namespace kiln {

void f32_depthwise_taps_avx2(const float* const* taps, const float* w, size_t ntaps, float bias, float lo, float hi,
                             size_t n, float* out) {
  const __m256 vb = _mm256_set1_ps(bias), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  size_t p = 0;
  for (; p + 32 <= n; p += 32) {
    __m256 a0 = vb, a1 = vb, a2 = vb, a3 = vb;
    for (size_t t = 0; t < ntaps; ++t) {
      const __m256 wt = _mm256_set1_ps(w[t]);
      const float* x = taps[t] + p;
      a0 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(x), a0);
      a1 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(x + 8), a1);
      a2 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(x + 16), a2);
      a3 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(x + 24), a3);
    }
    // max(bound, v) and min(bound, v) return v when v is NaN.
    _mm256_storeu_ps(out + p, _mm256_min_ps(vhi, _mm256_max_ps(vlo, a0)));
    _mm256_storeu_ps(out + p + 8, _mm256_min_ps(vhi, _mm256_max_ps(vlo, a1)));
    _mm256_storeu_ps(out + p + 16, _mm256_min_ps(vhi, _mm256_max_ps(vlo, a2)));
    _mm256_storeu_ps(out + p + 24, _mm256_min_ps(vhi, _mm256_max_ps(vlo, a3)));
  }
  for (; p < n; p += 8) {
    __m256 a = vb;
    for (size_t t = 0; t < ntaps; ++t) a = _mm256_fmadd_ps(_mm256_set1_ps(w[t]), _mm256_loadu_ps(taps[t] + p), a);
    _mm256_storeu_ps(out + p, _mm256_min_ps(vhi, _mm256_max_ps(vlo, a)));
  }
}

void f32_depthwise_stride2_rows_avx2(const float* const* rows, size_t odd_offset, size_t kh, size_t kw,
                                     size_t out_rows, const float* w, float bias, float lo, float hi, size_t n,
                                     float* out, size_t out_ld) {
  depthwise_stride2_rows<F32Avx2>(rows, odd_offset, kh, kw, out_rows, w, bias, lo, hi, n, out, out_ld);
}

void f32_deinterleave2_avx2(const float* src, size_t pairs, float* even, float* odd) {
  size_t j = 0;
  for (; j + 8 <= pairs; j += 8) {
    const __m256 lo = _mm256_loadu_ps(src + 2 * j), hi = _mm256_loadu_ps(src + 2 * j + 8);
    // Within each 128-bit half: evens of lo and hi side by side, then the halves put in order.
    const __m256 e = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 o = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
    _mm256_storeu_ps(even + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0))));
    _mm256_storeu_ps(odd + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0))));
  }
  for (; j < pairs; ++j) {
    even[j] = src[2 * j];
    odd[j] = src[2 * j + 1];
  }
}

}  // namespace kiln
