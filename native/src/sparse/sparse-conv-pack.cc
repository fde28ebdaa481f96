// SparseConvF32's packing: the geometry check and, per group of br output channels, the taps any
// of its weights uses, as (offset into the padded input image, br values).
#include <stdexcept>

#include "kiln/sparse-conv.h"

namespace kiln {

namespace {
// Offsets are int32: the padded planes of one image must index in 31 bits.
constexpr size_t kMaxImageFloats = 0x7fffffff;
}  // namespace

bool SparseConvF32::supports(const Conv2dGeometry& g) {
  if (!conv2d_geometry_valid(g) || g.groups != 1 || g.stride_h != 1 || g.stride_w != 1) return false;
  if (g.out_plane() == 0 || g.out_channels == 0) return false;
  const size_t hp = g.in_height + g.pad_top + g.pad_bottom, wp = g.in_width + g.pad_left + g.pad_right;
  if (hp == 0 || wp == 0 || g.in_channels > kMaxImageFloats / hp / wp) return false;
  return g.out_channels <= kSparseMaxDim && g.patch() <= kSparseMaxDim;
}

SparseConvF32::SparseConvF32(const Conv2dGeometry& g, const float* weight, const float* bias, bool relu,
                             SparsePattern pattern)
    : g_(g), pattern_(pattern), relu_(relu) {
  if (!supports(g)) throw std::invalid_argument("SparseConvF32: needs a valid, ungrouped, stride-1 geometry");
  if (weight == nullptr) throw std::invalid_argument("SparseConvF32: null weights");
  switch (pattern) {
    case SparsePattern::kUnstructured:
    case SparsePattern::kBlock1x4:
      pattern_ = SparsePattern::kUnstructured;
      br_ = 1;
      break;
    case SparsePattern::kBlock4x1:
      br_ = 4;
      break;
    case SparsePattern::kBlock8x1:
      br_ = 8;
      break;
    default:
      throw std::invalid_argument("SparseConvF32: unknown sparse pattern");
  }
  hp_ = g.in_height + g.pad_top + g.pad_bottom;
  wp_ = g.in_width + g.pad_left + g.pad_right;
  padded_ = hp_ != g.in_height || wp_ != g.in_width;
  const size_t m = g.out_channels, k = g.patch(), groups = (m + br_ - 1) / br_;
  bias_.assign(groups * br_, 0.0f);
  if (bias) std::copy(bias, bias + m, bias_.begin());
  group_ptr_.assign(1, 0);
  for (size_t r = 0; r < groups; ++r) {
    const size_t rows = std::min(br_, m - r * br_);
    for (size_t tap = 0; tap < k; ++tap) {
      bool stored = false;
      for (size_t i = 0; i < rows; ++i) {
        const float w = weight[(r * br_ + i) * k + tap];
        if (!(w == 0.0f)) {  // NaN counts as non-zero
          stored = true;
          ++nonzeros_;
        }
      }
      if (!stored) continue;
      const size_t ic = tap / (g.kernel_h * g.kernel_w), kh = tap / g.kernel_w % g.kernel_h, kw = tap % g.kernel_w;
      offset_.push_back(static_cast<int32_t>(ic * hp_ * wp_ + kh * g.dilation_h * wp_ + kw * g.dilation_w));
      for (size_t i = 0; i < br_; ++i) values_.push_back(i < rows ? weight[(r * br_ + i) * k + tap] : 0.0f);
    }
    group_ptr_.push_back(static_cast<uint32_t>(offset_.size()));
  }
}

size_t SparseConvF32::bytes() const {
  return group_ptr_.size() * sizeof(uint32_t) + offset_.size() * sizeof(int32_t) + values_.size() * sizeof(float) +
         bias_.size() * sizeof(float);
}

}  // namespace kiln
