// AVX2 depthwise kernels (conv/depthwise.h): the AVX-512 file's loops on 8-lane vectors. Lengths
// round up to whole vectors: the phase planes (conv/phase-planes.h) carry kPhaseSlack floats of slack for it.
#include "common/simd.h"

#include <cstring>

#include "conv/depthwise-blocks.h"
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

namespace {

// r[i] (row i, 8 columns) becomes r[j] = column j.
inline void transpose8(__m256* r) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    const __m256d a = _mm256_castps_pd(t[4 * i]), b = _mm256_castps_pd(t[4 * i + 2]);
    const __m256d c = _mm256_castps_pd(t[4 * i + 1]), d = _mm256_castps_pd(t[4 * i + 3]);
    u[4 * i] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, b));
    u[4 * i + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, b));
    u[4 * i + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(c, d));
    u[4 * i + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(c, d));
  }
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
    r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
  }
}

struct Ymm {
  using Reg = __m256;
  static constexpr size_t kLanes = 8;
  static Reg zero() { return _mm256_setzero_ps(); }
  static Reg set1(float v) { return _mm256_set1_ps(v); }
  static Reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, Reg v) { _mm256_storeu_ps(p, v); }
  static Reg fmadd(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  // max(bound, v) and min(bound, v) return v when v is NaN.
  static Reg clamp(Reg lo, Reg hi, Reg v) { return _mm256_min_ps(hi, _mm256_max_ps(lo, v)); }
  static void transpose(Reg* r) { transpose8(r); }
  // Tails through a stack copy: no masked access (QEMU's vmaskmov touches masked-off bytes).
  static Reg load_first(const float* p, size_t n) {
    if (n == 8) return _mm256_loadu_ps(p);
    alignas(32) float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(lanes, p, n * sizeof(float));
    return _mm256_load_ps(lanes);
  }
  static void store_first(float* p, Reg v, size_t n) {
    if (n == 8) return _mm256_storeu_ps(p, v);
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, v);
    std::memcpy(p, lanes, n * sizeof(float));
  }
};

}  // namespace

void f32_depthwise_block_avx2(const F32DepthwiseBlockArgs& a) { depthwise_channel_block<Ymm>(a); }

}  // namespace kiln
