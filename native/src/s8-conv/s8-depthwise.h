// Direct int8 depthwise convolution on uint8 NHWC (one input and one output channel per group):
// per output pixel, int32 sums over the taps, vectorised along the channels (contiguous in NHWC),
// then the same per-element epilogue as the GEMM path (requantized, or dequantized for a float
// output), so the results are the GEMM path's bits. Taps in the padding read the zero point,
// which adds exactly 0.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kiln/conv.h"
#include "kiln/f32-gemm.h"  // CacheAlignedAllocator
#include "quant/requantize.h"
#include "s8-conv/s8-conv-ukernel.h"

namespace kiln {

struct S8DepthwiseArgs {
  const int16_t* weight = nullptr;  // [tap][channel], tap = kh * kernel_w + kw
  const int32_t* bias = nullptr;    // per channel, or null
  const float* scale = nullptr;     // per channel multipliers
  uint8_t x_zero_point = 0;
  bool float_output = false;
  uint8_t y_zero_point = 0, y_min = 0, y_max = 255;
  // The pair layout (s8_depthwise_pack_pairs), or null.
  const int16_t* pair_weight = nullptr;
  const int32_t* pair_bias = nullptr;
  const float* pair_scale = nullptr;
  // The quad layout (s8_depthwise_pack_quads), or null.
  const int8_t* quad_weight = nullptr;
  const int32_t* quad_bias = nullptr;
  const float* quad_scale = nullptr;
  // The run kernel of the table the caller read (dispatch()); never null.
  S8DepthwiseRunFn run = nullptr;
};

namespace {

// Channel `ch` of the run's pixel `p` (tap-0 input `x`): its definition, stored. The scalar kernel
// is this for every channel, the AVX2 one for the channels past its last full block. Products are
// exact (|x - zero point| <= 255, |w| <= 128) and the sum wraps modulo 2^32 like every other path.
// Internal linkage: translation units built with different -m flags include this header.
inline void s8_depthwise_run_channel(const S8DepthwiseRun& r, const uint8_t* x, size_t p, size_t ch) {
  uint32_t s = r.bias != nullptr ? static_cast<uint32_t>(r.bias[ch]) : 0u;
  for (size_t t = 0; t < r.taps; ++t) {
    s += static_cast<uint32_t>((static_cast<int32_t>(x[r.offset[t] + static_cast<ptrdiff_t>(ch)]) - r.x_zero_point) *
                               r.weight[t * r.channels + ch]);
  }
  const size_t at = p * r.channels + ch;
  if (r.out_f32 != nullptr) {
    r.out_f32[at] = dequantize_f32(static_cast<int32_t>(s), r.scale[ch], 0.0f);
  } else {
    r.out[at] = requantize_u8(static_cast<int32_t>(s), r.scale[ch], r.y_zero_point, r.lo, r.hi);
  }
}

}  // namespace

// Runs of pixels (S8DepthwiseRun), uint8 or float output: the scalar definition, and per ISA the
// same bits with the channels in registers. s8_depthwise_rows runs every pixel through them: the
// interior straight from the image, the pixels whose taps reach into the padding from a copy of
// their input rows with the padding made real (the zero point, which adds 0).
void s8_depthwise_run_scalar(const S8DepthwiseRun& r);
void s8_depthwise_run_avx2(const S8DepthwiseRun& r);
void s8_depthwise_run_avx512(const S8DepthwiseRun& r);
// AVX-512 VNNI: the full 64-channel blocks of the quad layout through vpdpbusd (four taps per
// instruction), its half and quarter blocks for 2 and 4 pixels at once, the rest of each pixel as
// the AVX-512 kernel does it.
void s8_depthwise_run_avx512vnni(const S8DepthwiseRun& r);

// The packed layouts below start on a cache line, so each block's 64-byte rows load in one piece.
template <typename T>
using S8DepthwisePacked = std::vector<T, CacheAlignedAllocator<T>>;

// Channels per block of the pair layout, and its int16 weights per block and tap pair.
constexpr size_t kS8DepthwisePairBlock = 32;
constexpr size_t kS8DepthwisePairWeights = 2 * kS8DepthwisePairBlock;

// The pair layout of the full 32-channel blocks (S8DepthwiseRun::pair_*): per block and tap pair
// (the last one padded with a zero tap), two halves h of 32 int16: for each group g of 8 channels
// and j < 4, channel 8g + 4h + j's weights of the pair's two taps, side by side, as vpunpck{l,h}wd
// on the widened inputs of the two taps interleaves them. Bias and scale per block in the order
// [h][g][j]; the bias has the zero point folded in: bias - x_zero_point * sum over taps of w, the
// sum wrapping like every other (interior pixels read no padding, so the fold is exact).
void s8_depthwise_pack_pairs(const int16_t* weight, const int32_t* bias, const float* scale, size_t taps,
                             size_t channels, int32_t x_zero_point, S8DepthwisePacked<int16_t>& pair_weight,
                             S8DepthwisePacked<int32_t>& pair_bias, S8DepthwisePacked<float>& pair_scale);

// Channels per block of the quad layout, and its int8 weights per block and tap quad.
constexpr size_t kS8DepthwiseQuadBlock = 64;
constexpr size_t kS8DepthwiseQuadWeights = 4 * kS8DepthwiseQuadBlock;

// The quad layout of the full 64-channel blocks (S8DepthwiseRun::quad_*), for vpdpbusd: per block
// and tap quad (the last one padded with zero taps), four parts k of 64 bytes: for each 128-bit
// lane L and j < 4, channel 16L + 4k + j's weights of the quad's four taps, side by side, as
// vpunpck{l,h}bw then vpunpck{l,h}wd interleave the four taps' input bytes (k = 0: low bytes, low
// words; 1: low, high; 2: high, low; 3: high, high). Bias (folded as for pairs) and scale per
// block in the order [k][L][j]. Where 32 or more channels remain after the full blocks, one more
// block holds the next 32 with lanes 2 and 3 repeating lanes 0 and 1 (channel 16 (L mod 2) + 4k + j
// of that half): the kernel runs them on two pixels at once, one per half of the vector. Where 16
// or more remain after that, a quarter block holds the next 16 in every lane (channel 4k + j), for
// four pixels at once. The weights are int8, so each fits vpdpbusd's signed byte.
// The blocks of the quad layout for `channels`: full ones, then the half and quarter ones.
struct S8DepthwiseQuadBlocks {
  size_t channels, full;
  bool half, quarter;
  explicit S8DepthwiseQuadBlocks(size_t c)
      : channels(c),
        full(c / kS8DepthwiseQuadBlock),
        half(c % kS8DepthwiseQuadBlock >= 32),
        quarter(c % kS8DepthwiseQuadBlock % 32 >= 16) {}
  size_t blocks() const { return full + (half ? 1 : 0) + (quarter ? 1 : 0); }
  size_t half_channel() const { return full * kS8DepthwiseQuadBlock; }  // the half block's first channel
  size_t quarter_channel() const { return half_channel() + (half ? 32 : 0); }
  size_t rest_channel() const { return quarter_channel() + (quarter ? 16 : 0); }  // after every block
};

void s8_depthwise_pack_quads(const int16_t* weight, const int32_t* bias, const float* scale, size_t taps,
                             size_t channels, int32_t x_zero_point, S8DepthwisePacked<int8_t>& quad_weight,
                             S8DepthwisePacked<int32_t>& quad_bias, S8DepthwisePacked<float>& quad_scale);

// Output rows [row_begin, row_end) of the batch (row = image * out_height + oh).
void s8_depthwise_rows(const Conv2dGeometry& g, const S8DepthwiseArgs& a, const uint8_t* in, void* out,
                       size_t row_begin, size_t row_end);

}  // namespace kiln
