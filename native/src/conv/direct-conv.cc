#include "conv/direct-conv.h"

#include <algorithm>
#include <vector>

#include "common/dispatch.h"
#include "conv/conv-ukernel.h"
#include "conv/conv2d-tiling.h"
#include "conv/scratch.h"
#include "kiln/thread-pool.h"

namespace kiln {
namespace {

// A 288 x 64 block (SeedCNN conv2) is 72 KiB; past 1024 taps a block (256 KiB) crowds the L2
// and the packed GEMM, which blocks K, is the better path.
constexpr size_t kMaxTaps = 1024;

}  // namespace

bool direct_conv_forward_fits(const Conv2dGeometry& g) {
  return g.groups == 1 && g.pad_top == 0 && g.pad_left == 0 && g.pad_bottom == 0 && g.pad_right == 0 &&
         (g.stride_w == 1 || g.stride_w == 2) && g.kernel_h * g.kernel_w > 1 && g.patch() <= kMaxTaps && g.out_plane() > 0 &&
         g.out_channels > 0 && g.in_plane() < (size_t{1} << 30) / std::max<size_t>(g.in_channels, 1);
}

bool direct_conv_fits(const Conv2dGeometry& g) { return g.stride_w == 1 && direct_conv_forward_fits(g); }

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
  a.stride_w = g_.stride_w;
  a.out_height = g_.out_height;
  a.out_width = g_.out_width;
  return a;
}

bool direct_conv_weight_gradient(const Conv2dGeometry& g, size_t batch, const float* input, const float* grad_output,
                                 float* grad_weight, float* grad_bias, size_t max_threads) {
  const F32DirectConvKernels& d = dispatch().f32_conv.direct;
  if (d.weight_rows == nullptr || !direct_conv_fits(g) || batch == 0) return false;
  // Offsets of the taps, as the forward packs them (the weights themselves are not needed).
  std::vector<int32_t> offsets(g.patch());
  size_t k = 0;
  for (size_t c = 0; c < g.in_channels; ++c) {
    for (size_t kh = 0; kh < g.kernel_h; ++kh) {
      for (size_t kw = 0; kw < g.kernel_w; ++kw) {
        offsets[k++] = static_cast<int32_t>(c * g.in_plane() + kh * g.dilation_h * g.in_width + kw * g.dilation_w);
      }
    }
  }
  const size_t taps = g.patch(), cout = g.out_channels, cp = (cout + 15) / 16 * 16;
  const size_t slots = std::min(batch, kConvMaxSlots);
  const size_t partial_floats = taps * cp, g_floats = g.out_plane() * cp;
  const size_t per_slot = partial_floats + g_floats;
  ScratchBuffer scratch(slots * per_slot);
  std::vector<double> bias_sums(grad_bias != nullptr ? slots * cp : 0, 0.0);
  const size_t in_image = g.in_channels * g.in_plane(), out_image = cout * g.out_plane();
  auto run_slot = [&](size_t s) {
    float* partial = scratch.data() + s * per_slot;
    float* g_nhwc = partial + partial_floats;
    const size_t n0 = batch * s / slots, n1 = batch * (s + 1) / slots;
    for (size_t n = n0; n < n1; ++n) {
      d.nchw_to_nhwc(grad_output + n * out_image, g.out_plane(), cout, cp, g_nhwc);
      if (grad_bias != nullptr) d.column_sums(g_nhwc, g.out_plane(), cp, bias_sums.data() + s * cp);
      for (size_t c0 = 0; c0 < cp; c0 += kDirectConvBlock) {
        const size_t nb = std::min<size_t>(4, (cp - c0) / 16);
        d.weight_rows(input + n * in_image, offsets.data(), 0, taps, g_nhwc, cp, c0, nb, g.out_height,
                                       g.out_width, g.in_width, g.stride_h, n == n0, partial);
      }
    }
  };
  if (slots > 1) {
    parallel_for(slots, run_slot, max_threads);
  } else {
    run_slot(0);
  }
  // grad_weight[o][k] = the slots' partial[k][o], added in slot order.
  for (size_t o = 0; o < cout; ++o) {
    for (size_t t = 0; t < taps; ++t) {
      float sum = scratch.data()[t * cp + o];
      for (size_t s = 1; s < slots; ++s) sum += scratch.data()[s * per_slot + t * cp + o];
      grad_weight[o * taps + t] = sum;
    }
  }
  if (grad_bias != nullptr) {
    for (size_t o = 0; o < cout; ++o) {
      double sum = 0.0;
      for (size_t s = 0; s < slots; ++s) sum += bias_sums[s * cp + o];
      grad_bias[o] = static_cast<float>(sum);
    }
  }
  return true;
}

}  // namespace kiln
