// AVX-512 channel-block kernels (conv/channel-block-plan.h): 16 channels per block.
#include "common/simd.h"

#include "common/f32-vec.h"
#include "conv/channel-blocks.h"
#include "conv/transpose-avx512.h"

namespace kiln {

namespace {

struct Zmm : F32Avx512 {
  static unsigned nan_lanes(Vec v) { return _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q); }
  static void transpose(Vec* r) { transpose16(r); }
};

}  // namespace

void f32_depthwise_block_avx512(const F32ChannelBlockArgs& a) { depthwise_channel_block<Zmm>(a); }
bool f32_max_pool_block_avx512(const F32ChannelBlockArgs& a) { return max_pool_channel_block<Zmm>(a); }

}  // namespace kiln
