// AVX2 channel-block kernels (conv/channel-block-plan.h): 8 channels per block.
#include "common/simd.h"

#include <cstring>

#include "conv/channel-blocks.h"

namespace kiln {

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
  static Reg max(Reg a, Reg b) { return _mm256_max_ps(a, b); }
  static unsigned nan_lanes(Reg v) { return static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))); }
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

void f32_depthwise_block_avx2(const F32ChannelBlockArgs& a) { depthwise_channel_block<Ymm>(a); }
bool f32_max_pool_block_avx2(const F32ChannelBlockArgs& a) { return max_pool_channel_block<Ymm>(a); }

}  // namespace kiln
