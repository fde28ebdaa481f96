#include "conv/direct-conv.h"

#include <algorithm>

namespace kiln {
namespace {

// A 288 x 64 block (SeedCNN conv2) is 72 KiB; past 1024 taps a block (256 KiB) crowds the L2
// and the packed GEMM, which blocks K, is the better path.
constexpr size_t kMaxTaps = 1024;

}  // namespace

bool direct_conv_fits(const Conv2dGeometry& g) {
  return g.groups == 1 && g.pad_top == 0 && g.pad_left == 0 && g.pad_bottom == 0 && g.pad_right == 0 &&
         g.stride_w == 1 && !g.is_pointwise() && g.patch() <= kMaxTaps && g.out_plane() > 0 &&
         g.out_channels > 0 && g.in_plane() < (size_t{1} << 30) / std::max<size_t>(g.in_channels, 1);
}

DirectConvWeights::DirectConvWeights(const Conv2dGeometry& g, const float* weight, const float* bias) : g_(g) {
  const size_t k = g.patch();
  const size_t cout = g.out_channels;
  cout_padded_ = (cout + 15) / 16 * 16;
  image_floats_ = g.out_plane() * cout_padded_;
  weight_.assign(((cout + kDirectConvBlock - 1) / kDirectConvBlock) * k * kDirectConvBlock, 0.0f);
  for (size_t b0 = 0; b0 < cout; b0 += kDirectConvBlock) {
    const size_t width = std::min(kDirectConvBlock, cout_padded_ - b0);
    float* block = weight_.data() + (b0 / kDirectConvBlock) * k * kDirectConvBlock;
    for (size_t c = b0; c < std::min(cout, b0 + kDirectConvBlock); ++c) {
      for (size_t p = 0; p < k; ++p) block[p * width + (c - b0)] = weight[c * k + p];
    }
  }
  bias_.assign(cout_padded_, 0.0f);
  if (bias != nullptr) std::copy(bias, bias + cout, bias_.begin());
  offsets_.resize(k);
  size_t p = 0;
  for (size_t c = 0; c < g.in_channels; ++c) {
    for (size_t kh = 0; kh < g.kernel_h; ++kh) {
      for (size_t kw = 0; kw < g.kernel_w; ++kw) {
        offsets_[p++] = static_cast<int32_t>(c * g.in_plane() + kh * g.dilation_h * g.in_width + kw * g.dilation_w);
      }
    }
  }
}

DirectConvArgs DirectConvWeights::args() const {
  DirectConvArgs a;
  a.weight = weight_.data();
  a.bias = bias_.data();
  a.offsets = offsets_.data();
  a.k = g_.patch();
  a.cout_padded = cout_padded_;
  a.in_width = g_.in_width;
  a.stride_h = g_.stride_h;
  a.out_height = g_.out_height;
  a.out_width = g_.out_width;
  return a;
}

}  // namespace kiln
