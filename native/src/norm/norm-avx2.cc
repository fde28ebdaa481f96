// The normalization row kernels with AVX2 + FMA: four 8-lane accumulators per pass, float within
// chunks of 4096 elements and double across them (the second pass sums squared deviations from
// the mean, so it does not cancel), masked loads and stores for the tail.
#include <algorithm>

#include "common/simd.h"
#include "common/masked-load-avx2.h"

#include "norm/norm-ukernel.h"

namespace kiln {
namespace {

constexpr size_t kChunk = 4096;

inline __m256i first_lanes(size_t count) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), lane);
}

inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// The float sum of x[0..n) (n <= kChunk: few additions per lane, so float does not drift).
float chunk_sum(const float* x, size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  size_t j = 0;
  for (; j + 32 <= n; j += 32) {
    s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + j));
    s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + j + 8));
    s2 = _mm256_add_ps(s2, _mm256_loadu_ps(x + j + 16));
    s3 = _mm256_add_ps(s3, _mm256_loadu_ps(x + j + 24));
  }
  for (; j + 8 <= n; j += 8) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + j));
  if (j < n) s1 = _mm256_add_ps(s1, maskload_ps(x + j, first_lanes(n - j)));
  return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

// The float sum of (x - mean)^2 over x[0..n), n <= kChunk.
float chunk_sq_dev(const float* x, size_t n, float mean) {
  const __m256 vm = _mm256_set1_ps(mean);
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  size_t j = 0;
  for (; j + 32 <= n; j += 32) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + j), vm);
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + j + 8), vm);
    const __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(x + j + 16), vm);
    const __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(x + j + 24), vm);
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
    s2 = _mm256_fmadd_ps(d2, d2, s2);
    s3 = _mm256_fmadd_ps(d3, d3, s3);
  }
  for (; j + 8 <= n; j += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + j), vm);
    s0 = _mm256_fmadd_ps(d, d, s0);
  }
  if (j < n) {
    const __m256i mask = first_lanes(n - j);
    const __m256 d = _mm256_and_ps(_mm256_sub_ps(maskload_ps(x + j, mask), vm), _mm256_castsi256_ps(mask));
    s1 = _mm256_fmadd_ps(d, d, s1);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

}  // namespace

// Float vector sums within chunks of kChunk elements, chunks added in double.
void f32_norm_moments_avx2(const float* x, size_t n, float* mean, float* var) {
  double sum = 0;
  for (size_t at = 0; at < n; at += kChunk) sum += chunk_sum(x + at, std::min(kChunk, n - at));
  const float m = static_cast<float>(sum / static_cast<double>(n));
  double sq = 0;
  for (size_t at = 0; at < n; at += kChunk) sq += chunk_sq_dev(x + at, std::min(kChunk, n - at), m);
  *mean = m;
  *var = static_cast<float>(sq / static_cast<double>(n));
}

void f32_norm_row_avx2(const float* x, size_t n, float mean, float rstd, const float* scale, const float* bias,
                       float* y) {
  const __m256 vm = _mm256_set1_ps(mean), vr = _mm256_set1_ps(rstd);
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j), vm), vr), _mm256_loadu_ps(scale + j));
    _mm256_storeu_ps(y + j, bias ? _mm256_add_ps(v, _mm256_loadu_ps(bias + j)) : v);
  }
  if (j < n) {
    const __m256i mask = first_lanes(n - j);
    const __m256 xs = maskload_ps(x + j, mask);
    const __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(xs, vm), vr), maskload_ps(scale + j, mask));
    _mm256_maskstore_ps(y + j, mask, bias ? _mm256_add_ps(v, maskload_ps(bias + j, mask)) : v);
  }
}

void f32_scale_shift_row_avx2(const float* x, size_t n, float a, float b, float* y) {
  const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
  size_t j = 0;
  for (; j + 16 <= n; j += 16) {
    _mm256_storeu_ps(y + j, _mm256_fmadd_ps(_mm256_loadu_ps(x + j), va, vb));
    _mm256_storeu_ps(y + j + 8, _mm256_fmadd_ps(_mm256_loadu_ps(x + j + 8), va, vb));
  }
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(y + j, _mm256_fmadd_ps(_mm256_loadu_ps(x + j), va, vb));
  if (j < n) {
    const __m256i mask = first_lanes(n - j);
    _mm256_maskstore_ps(y + j, mask, _mm256_fmadd_ps(maskload_ps(x + j, mask), va, vb));
  }
}

}  // namespace kiln
