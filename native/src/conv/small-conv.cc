#include "conv/small-conv.h"

#include <algorithm>

namespace kiln {

bool small_conv_fits(const Conv2dGeometry& g) {
  if (g.groups != 1 || g.pad_top != 0 || g.pad_left != 0 || g.pad_bottom != 0 || g.pad_right != 0 ||
      g.stride_h != 1 || g.stride_w != 1 || g.dilation_h != 1 || g.dilation_w != 1 || g.out_channels == 0 ||
      g.out_height == 0 || g.out_width == 0) {
    return false;
  }
  // Flat offsets inside one image are int32 in the kernels' index vectors.
  if (g.in_channels * g.in_plane() >= (size_t{1} << 30) || g.out_plane() >= (size_t{1} << 30)) return false;
  // Past a few input channels the channels-in-lanes kernel (direct-conv.h) is as fast, and the
  // input vectors of a segment no longer fit in registers.
  if (g.kernel_h == 3 && g.kernel_w == 3) return g.in_channels >= 1 && g.in_channels <= 4;
  if (g.kernel_h == 5 && g.kernel_w == 5) return g.in_channels == 1;
  return false;
}

bool small_conv_pool_fits(const Conv2dGeometry& g, const ConvMaxPool& pool) {
  return pool.kernel_h == 2 && pool.kernel_w == 2 && pool.stride_h == 2 && pool.stride_w == 2 &&
         pool.dilation_h == 1 && pool.dilation_w == 1 && pool.out_h >= 1 && pool.out_w >= 1 &&
         pool.out_h == g.out_height / 2 && pool.out_w == g.out_width / 2;
}

SmallConvWeights::SmallConvWeights(const Conv2dGeometry& g, const float* weight, const float* bias)
    : g_(g), weight_(weight, weight + g.weight_size()), bias_(g.out_channels, 0.0f) {
  if (bias != nullptr) std::copy(bias, bias + g.out_channels, bias_.begin());
}

SmallConvArgs SmallConvWeights::args() const {
  SmallConvArgs a;
  a.weight = weight_.data();
  a.bias = bias_.data();
  a.in_channels = g_.in_channels;
  a.in_height = g_.in_height;
  a.in_width = g_.in_width;
  a.out_channels = g_.out_channels;
  a.out_height = g_.out_height;
  a.out_width = g_.out_width;
  a.kernel_h = g_.kernel_h;
  a.kernel_w = g_.kernel_w;
  return a;
}

}  // namespace kiln
