#include "conv/small-conv.h"

#include <algorithm>

namespace kiln {
namespace {

// Index of (Cin, KH, KW) in KILN_SMALL_CONV_SHAPES, or -1.
int shape_index(size_t in_channels, size_t kernel_h, size_t kernel_w) {
  int index = 0;
#define KILN_SHAPE_INDEX(c, h, w)                                          \
  if (in_channels == (c) && kernel_h == (h) && kernel_w == (w)) return index; \
  ++index;
  KILN_SMALL_CONV_SHAPES(KILN_SHAPE_INDEX)
#undef KILN_SHAPE_INDEX
  return -1;
}

}  // namespace

bool small_conv_fits(const Conv2dGeometry& g) {
  if (g.groups != 1 || g.pad_top != 0 || g.pad_left != 0 || g.pad_bottom != 0 || g.pad_right != 0 ||
      g.stride_h != 1 || g.stride_w != 1 || g.dilation_h != 1 || g.dilation_w != 1 || g.out_channels == 0 ||
      g.out_height == 0 || g.out_width == 0) {
    return false;
  }
  // Flat offsets inside one image are int32 in the kernels' index vectors.
  if (g.in_channels * g.in_plane() >= (size_t{1} << 30) || g.out_plane() >= (size_t{1} << 30)) return false;
  return shape_index(g.in_channels, g.kernel_h, g.kernel_w) >= 0;
}

void run_small_conv(const SmallConvKernels* table, const SmallConvArgs& args, const float* input, float* output,
                    bool pooled, int32_t* indices) {
  const int i = shape_index(args.in_channels, args.kernel_h, args.kernel_w);
  if (i < 0) return;
  const SmallConvKernels& k = table[i];
  if (!pooled) {
    k.plain(args, input, output);
  } else if (indices != nullptr) {
    k.pooled_indices(args, input, output, indices);
  } else {
    k.pooled(args, input, output, nullptr);
  }
}

bool small_conv_pool_fits(const Conv2dGeometry& g, const ConvMaxPool& pool) {
  return pool.kernel_h == 2 && pool.kernel_w == 2 && pool.stride_h == 2 && pool.stride_w == 2 &&
         pool.dilation_h == 1 && pool.dilation_w == 1 && pool.pad_top == 0 && pool.pad_left == 0 && pool.out_h >= 1 &&
         pool.out_w >= 1 && pool.out_h == g.out_height / 2 && pool.out_w == g.out_width / 2;
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
