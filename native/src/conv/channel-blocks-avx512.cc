// AVX-512 channel-block kernels (conv/channel-block-plan.h): 16 channels per block.
#include "common/simd.h"

#include "conv/channel-blocks.h"
#include "conv/transpose-avx512.h"

namespace kiln {

namespace {

struct Zmm {
  using Reg = __m512;
  static constexpr size_t kLanes = 16;
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg set1(float v) { return _mm512_set1_ps(v); }
  static Reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, Reg v) { _mm512_storeu_ps(p, v); }
  static Reg fmadd(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static Reg max(Reg a, Reg b) { return _mm512_max_ps(a, b); }
  static unsigned nan_lanes(Reg v) { return _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q); }
  // max(bound, v) and min(bound, v) return v when v is NaN.
  static Reg clamp(Reg lo, Reg hi, Reg v) { return _mm512_min_ps(hi, _mm512_max_ps(lo, v)); }
  static void transpose(Reg* r) { transpose16(r); }
  static __mmask16 first(size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static Reg load_first(const float* p, size_t n) { return _mm512_maskz_loadu_ps(first(n), p); }
  static void store_first(float* p, Reg v, size_t n) { _mm512_mask_storeu_ps(p, first(n), v); }
};

}  // namespace

void f32_depthwise_block_avx512(const F32ChannelBlockArgs& a) { depthwise_channel_block<Zmm>(a); }
bool f32_max_pool_block_avx512(const F32ChannelBlockArgs& a) { return max_pool_channel_block<Zmm>(a); }

}  // namespace kiln
