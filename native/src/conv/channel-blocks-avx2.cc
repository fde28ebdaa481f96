// AVX2 channel-block kernels (conv/channel-block-plan.h): 8 channels per block.
#include "common/simd.h"

#include "common/f32-vec.h"
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

struct Ymm : F32Avx2 {
  static unsigned nan_lanes(Vec v) { return static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))); }
  static void transpose(Vec* r) { transpose8(r); }
};

}  // namespace

void f32_depthwise_block_avx2(const F32ChannelBlockArgs& a) { depthwise_channel_block<Ymm>(a); }
bool f32_max_pool_block_avx2(const F32ChannelBlockArgs& a) { return max_pool_channel_block<Ymm>(a); }

}  // namespace kiln
