// AVX-512 depthwise kernels (conv/depthwise.h). Four vectors of outputs per pass share each
// weight broadcast; their four independent FMA chains hide the FMA latency. Lengths round up to
// whole vectors: the phase planes (conv/phase-planes.h) carry kPhaseSlack floats of slack for it.
#include "common/simd.h"

#include "conv/depthwise.h"

namespace kiln {

void f32_depthwise_taps_avx512(const float* const* taps, const float* w, size_t ntaps, float bias, float lo, float hi,
                               size_t n, float* out) {
  const __m512 vb = _mm512_set1_ps(bias), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  size_t p = 0;
  for (; p + 64 <= n; p += 64) {
    __m512 a0 = vb, a1 = vb, a2 = vb, a3 = vb;
    for (size_t t = 0; t < ntaps; ++t) {
      const __m512 wt = _mm512_set1_ps(w[t]);
      const float* x = taps[t] + p;
      a0 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(x), a0);
      a1 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(x + 16), a1);
      a2 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(x + 32), a2);
      a3 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(x + 48), a3);
    }
    // max(bound, v) and min(bound, v) return v when v is NaN.
    _mm512_storeu_ps(out + p, _mm512_min_ps(vhi, _mm512_max_ps(vlo, a0)));
    _mm512_storeu_ps(out + p + 16, _mm512_min_ps(vhi, _mm512_max_ps(vlo, a1)));
    _mm512_storeu_ps(out + p + 32, _mm512_min_ps(vhi, _mm512_max_ps(vlo, a2)));
    _mm512_storeu_ps(out + p + 48, _mm512_min_ps(vhi, _mm512_max_ps(vlo, a3)));
  }
  for (; p < n; p += 16) {
    __m512 a = vb;
    for (size_t t = 0; t < ntaps; ++t) a = _mm512_fmadd_ps(_mm512_set1_ps(w[t]), _mm512_loadu_ps(taps[t] + p), a);
    _mm512_storeu_ps(out + p, _mm512_min_ps(vhi, _mm512_max_ps(vlo, a)));
  }
}

void f32_deinterleave2_avx512(const float* src, size_t pairs, float* even, float* odd) {
  const __m512i even_lanes = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd_lanes = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  size_t j = 0;
  for (; j + 16 <= pairs; j += 16) {
    const __m512 lo = _mm512_loadu_ps(src + 2 * j), hi = _mm512_loadu_ps(src + 2 * j + 16);
    _mm512_storeu_ps(even + j, _mm512_permutex2var_ps(lo, even_lanes, hi));
    _mm512_storeu_ps(odd + j, _mm512_permutex2var_ps(lo, odd_lanes, hi));
  }
  for (; j < pairs; ++j) {
    even[j] = src[2 * j];
    odd[j] = src[2 * j + 1];
  }
}

}  // namespace kiln
