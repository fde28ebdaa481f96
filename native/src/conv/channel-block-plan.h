// Channel blocks: a sliding window over NCHW planes (a depthwise convolution, a max pool) run with
// channels in vector lanes. A block of `lanes` planes is transposed into a channels-last buffer
// whose border holds the padding value, each output pixel then reads its taps as whole vectors at
// fixed offsets, and the results are transposed back into the planes (conv/channel-blocks.h has
// the kernels). On small planes (14x14, 7x7) and at stride 2 this keeps every lane busy where the
// planar kernels (conv/phase-planes.h), with pixels in lanes, spend their time on short rows.
// Planes too large for the buffer run in bands of output rows.
#pragma once
#include <cstddef>
#include <vector>

#include "conv/phase-planes.h"

namespace kiln {

// Which of a window op's paths runs: planar (pixels in lanes), channel blocks, the depthwise
// convolution's stride-2 rows (conv/depthwise.h; pools take it as kAuto), or the one chosen for
// the geometry (kAuto). Tests force each.
enum class WindowPath { kAuto, kPlanar, kChannelBlocks, kStride2Rows };

// One band of one channel block, for a kernel (conv/channel-blocks.h). The kernel transposes the
// block's input planes into the interior of `buffer`, a channels-last image of padded_w pixels
// per row and `lanes` floats per pixel whose border the caller filled (the kernel never writes
// it), then computes each output pixel q = oh * out_w + ow from its taps
//   buffer[(oh * stride_h * padded_w + ow * stride_w + tap_offset[t]) * lanes + c]
// and transposes the results back into the first `channels` output planes.
//   depthwise: out[c][q] = clamp(bias[c] + sum_t weight[t * lanes + c] * tap_t, lo, hi), the terms
//              added in tap order with one fused multiply-add each (the planar kernels' sum, bit
//              for bit); weight and bias hold `lanes` floats per tap, zero past `channels`.
//   max pool:  out[c][q] = max over taps in tap order, as the planar kernel takes it (ties keep
//              the earlier tap's bits); a block whose input holds a NaN is refused instead
//              (the kernel returns false, having written no output) and runs planar.
struct F32ChannelBlockArgs {
  const float* input = nullptr;  // channel c's plane at input + c * in_stride, in_h x in_w
  size_t in_stride = 0, in_h = 0, in_w = 0;
  float* output = nullptr;  // channel c's plane at output + c * out_stride, out_h x out_w
  size_t out_stride = 0, out_h = 0, out_w = 0;
  size_t channels = 0;  // planes in this block, 1..lanes
  const float* weight = nullptr;
  const float* bias = nullptr;
  const size_t* tap_offset = nullptr;  // per tap (kh, kw), in pixels: kh * d_h * padded_w + kw * d_w
  size_t taps = 0;
  size_t stride_h = 1, stride_w = 1, pad_top = 0, pad_left = 0, padded_w = 0;
  float lo = 0, hi = 0;
  float* buffer = nullptr;
};

// The buffer of one channel block over window `w`: wide enough that every tap of every output
// lies inside it, tall enough for one band of output rows (the whole plane when it fits in
// kMaxFloats at kMaxLanes lanes, else fewer rows).
class ChannelBlockPlan {
 public:
  static constexpr size_t kMaxLanes = 16;                  // the widest kernels (AVX-512)
  static constexpr size_t kMaxTaps = 64;                   // 8x8 windows; larger ones stay planar
  static constexpr size_t kMaxFloats = size_t{1} << 16;    // 256 KiB: stays in L2 beside the planes

  explicit ChannelBlockPlan(const PlanarWindow& w);
  // At least one output row fits, and the window has at most kMaxTaps taps.
  bool fits() const { return band_rows_ > 0 && tap_offset_.size() <= kMaxTaps; }
  size_t taps() const { return tap_offset_.size(); }
  size_t buffer_floats(size_t lanes) const { return buffer_rows_ * padded_w_ * lanes; }
  // The whole plane in one band.
  bool single_band() const { return band_rows_ >= w_.out_h; }

  // Sets a's window fields (taps, strides, padded_w, in/out plane sizes and strides, buffer),
  // then for each band of output rows fills the rows and columns of the buffer the band takes
  // from the padding with `fill`, points a at the band's rows of x and y, and calls kernel(a).
  // Returns false as soon as the kernel does (the rest of the block is then not computed).
  // `border_filled`: this buffer ran a block of this plan with this fill before, and the plan has
  // one band: its border (which kernels never write) is left as it is.
  template <class Kernel>
  bool run_bands(F32ChannelBlockArgs& a, size_t lanes, const float* x, float* y, float fill, float* buffer,
                 Kernel&& kernel, bool border_filled = false) const {
    a.tap_offset = tap_offset_.data();
    a.taps = tap_offset_.size();
    a.stride_h = w_.stride_h;
    a.stride_w = w_.stride_w;
    a.pad_left = w_.pad_left;
    a.padded_w = padded_w_;
    a.in_stride = w_.in_h * w_.in_w;
    a.in_w = w_.in_w;
    a.out_stride = w_.out_h * w_.out_w;
    a.out_w = w_.out_w;
    a.buffer = buffer;
    for (size_t oh0 = 0; oh0 < w_.out_h; oh0 += band_rows_) {
      const Band b = band(oh0);
      if (!border_filled || !single_band()) fill_border(b, lanes, fill, buffer);
      a.input = x + b.first_row * w_.in_w;
      a.in_h = b.in_rows;
      a.pad_top = b.pad_rows;
      a.output = y + oh0 * w_.out_w;
      a.out_h = b.out_rows;
      if (!kernel(a)) return false;
    }
    return true;
  }

 private:
  struct Band {
    size_t out_rows = 0;   // output rows in the band
    size_t reads = 0;      // buffer rows its taps read
    size_t pad_rows = 0;   // of which the first pad_rows are padding above the input
    size_t first_row = 0;  // input row of buffer row pad_rows
    size_t in_rows = 0;    // input rows in the buffer; the rows after them are padding below
  };
  Band band(size_t oh0) const;
  void fill_border(const Band& b, size_t lanes, float fill, float* buffer) const;

  PlanarWindow w_;
  size_t padded_w_ = 0, band_rows_ = 0, buffer_rows_ = 0;
  std::vector<size_t> tap_offset_;
};

// The kernels per ISA (conv/channel-blocks.h; 8 lanes on AVX2, 16 on AVX-512), in the dispatch
// table as f32_conv.depthwise.channel_block and f32_pool.max_channel_block.
void f32_depthwise_block_avx2(const F32ChannelBlockArgs& a);
void f32_depthwise_block_avx512(const F32ChannelBlockArgs& a);
bool f32_max_pool_block_avx2(const F32ChannelBlockArgs& a);
bool f32_max_pool_block_avx512(const F32ChannelBlockArgs& a);

}  // namespace kiln
