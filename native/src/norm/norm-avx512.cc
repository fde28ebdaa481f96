// The normalization row kernels with AVX-512: four 16-lane accumulators per pass (float within
// chunks of 4096 elements, double across them), masked loads and stores for the tail (see
// norm-avx2.cc).
#include <algorithm>

#include "common/simd.h"

#include "norm/norm-ukernel.h"

namespace kiln {
namespace {

constexpr size_t kChunk = 4096;

inline __mmask16 first_lanes(size_t count) { return static_cast<__mmask16>((1u << count) - 1u); }

// The lane sum through memory (once per chunk; GCC 12's _mm512_reduce_add_ps warns, see simd.h).
inline float hsum(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  for (int w = 8; w > 0; w /= 2) {
    for (int i = 0; i < w; ++i) t[i] += t[i + w];
  }
  return t[0];
}

// The float sum of x[0..n) (n <= kChunk: few additions per lane, so float does not drift).
float chunk_sum(const float* x, size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  size_t j = 0;
  for (; j + 64 <= n; j += 64) {
    s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + j));
    s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + j + 16));
    s2 = _mm512_add_ps(s2, _mm512_loadu_ps(x + j + 32));
    s3 = _mm512_add_ps(s3, _mm512_loadu_ps(x + j + 48));
  }
  for (; j + 16 <= n; j += 16) s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + j));
  if (j < n) s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(first_lanes(n - j), x + j));
  return hsum(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

// The float sum of (x - mean)^2 over x[0..n), n <= kChunk.
float chunk_sq_dev(const float* x, size_t n, float mean) {
  const __m512 vm = _mm512_set1_ps(mean);
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  size_t j = 0;
  for (; j + 64 <= n; j += 64) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + j), vm);
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + j + 16), vm);
    const __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(x + j + 32), vm);
    const __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(x + j + 48), vm);
    s0 = _mm512_fmadd_ps(d0, d0, s0);
    s1 = _mm512_fmadd_ps(d1, d1, s1);
    s2 = _mm512_fmadd_ps(d2, d2, s2);
    s3 = _mm512_fmadd_ps(d3, d3, s3);
  }
  for (; j + 16 <= n; j += 16) {
    const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + j), vm);
    s0 = _mm512_fmadd_ps(d, d, s0);
  }
  if (j < n) {
    const __mmask16 mask = first_lanes(n - j);
    const __m512 d = _mm512_maskz_sub_ps(mask, _mm512_maskz_loadu_ps(mask, x + j), vm);
    s1 = _mm512_fmadd_ps(d, d, s1);
  }
  return hsum(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

}  // namespace

// Float vector sums within chunks of kChunk elements, chunks added in double.
void f32_norm_moments_avx512(const float* x, size_t n, float* mean, float* var) {
  double sum = 0;
  for (size_t at = 0; at < n; at += kChunk) sum += chunk_sum(x + at, std::min(kChunk, n - at));
  const float m = static_cast<float>(sum / static_cast<double>(n));
  double sq = 0;
  for (size_t at = 0; at < n; at += kChunk) sq += chunk_sq_dev(x + at, std::min(kChunk, n - at), m);
  *mean = m;
  *var = static_cast<float>(sq / static_cast<double>(n));
}

void f32_norm_row_avx512(const float* x, size_t n, float mean, float rstd, const float* scale, const float* bias,
                         float* y) {
  const __m512 vm = _mm512_set1_ps(mean), vr = _mm512_set1_ps(rstd);
  size_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + j), vm), vr), _mm512_loadu_ps(scale + j));
    _mm512_storeu_ps(y + j, bias ? _mm512_add_ps(v, _mm512_loadu_ps(bias + j)) : v);
  }
  if (j < n) {
    const __mmask16 mask = first_lanes(n - j);
    const __m512 xs = _mm512_maskz_loadu_ps(mask, x + j);
    const __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(xs, vm), vr), _mm512_maskz_loadu_ps(mask, scale + j));
    _mm512_mask_storeu_ps(y + j, mask, bias ? _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, bias + j)) : v);
  }
}

void f32_scale_shift_row_avx512(const float* x, size_t n, float a, float b, float* y) {
  const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
  size_t j = 0;
  for (; j + 32 <= n; j += 32) {
    _mm512_storeu_ps(y + j, _mm512_fmadd_ps(_mm512_loadu_ps(x + j), va, vb));
    _mm512_storeu_ps(y + j + 16, _mm512_fmadd_ps(_mm512_loadu_ps(x + j + 16), va, vb));
  }
  for (; j + 16 <= n; j += 16) _mm512_storeu_ps(y + j, _mm512_fmadd_ps(_mm512_loadu_ps(x + j), va, vb));
  if (j < n) {
    const __mmask16 mask = first_lanes(n - j);
    _mm512_mask_storeu_ps(y + j, mask, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, x + j), va, vb));
  }
}

}  // namespace kiln
