#include "s8-conv/s8-depthwise.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace kiln {

namespace {

// The blocked layouts of s8_depthwise_pack_pairs and _quads: `blocks` blocks of `block` slots,
// slot s of block b holding channel channel_of(b, s): the weights of each group of `per` taps
// (the last one padded with zero taps) with the slot's `per` taps side by side; bias (the zero
// point folded in, wrapping like every sum) and scale in slot order.
template <typename W, typename ChannelOf>
void pack_tap_groups(const int16_t* weight, const int32_t* bias, const float* scale, size_t taps, size_t channels,
                     int32_t x_zero_point, size_t blocks, size_t block, size_t per, ChannelOf channel_of,
                     S8DepthwisePacked<W>& packed_weight, S8DepthwisePacked<int32_t>& packed_bias,
                     S8DepthwisePacked<float>& packed_scale) {
  const size_t groups = (taps + per - 1) / per;
  packed_weight.assign(blocks * groups * block * per, 0);
  packed_bias.assign(blocks * block, 0);
  packed_scale.assign(blocks * block, 0.0f);
  for (size_t b = 0; b < blocks; ++b) {
    for (size_t slot = 0; slot < block; ++slot) {
      const size_t ch = channel_of(b, slot);
      uint32_t sum = 0;
      for (size_t t = 0; t < taps; ++t) {
        const int16_t w = weight[t * channels + ch];
        sum += static_cast<uint32_t>(static_cast<int32_t>(w));
        packed_weight[(b * groups + t / per) * block * per + per * slot + t % per] = static_cast<W>(w);
      }
      const uint32_t b0 = bias != nullptr ? static_cast<uint32_t>(bias[ch]) : 0u;
      packed_bias[b * block + slot] = static_cast<int32_t>(b0 - static_cast<uint32_t>(x_zero_point) * sum);
      packed_scale[b * block + slot] = scale[ch];
    }
  }
}

}  // namespace

void s8_depthwise_pack_pairs(const int16_t* weight, const int32_t* bias, const float* scale, size_t taps,
                             size_t channels, int32_t x_zero_point, S8DepthwisePacked<int16_t>& pair_weight,
                             S8DepthwisePacked<int32_t>& pair_bias, S8DepthwisePacked<float>& pair_scale) {
  constexpr size_t kBlock = kS8DepthwisePairBlock;
  // Slot [h][g][j] holds channel 8g + 4h + j.
  pack_tap_groups(weight, bias, scale, taps, channels, x_zero_point, channels / kBlock, kBlock, 2,
                  [](size_t b, size_t s) { return b * kBlock + 8 * (s / 4 % 4) + 4 * (s / 16) + s % 4; }, pair_weight,
                  pair_bias, pair_scale);
}

void s8_depthwise_pack_quads(const int16_t* weight, const int32_t* bias, const float* scale, size_t taps,
                             size_t channels, int32_t x_zero_point, S8DepthwisePacked<int8_t>& quad_weight,
                             S8DepthwisePacked<int32_t>& quad_bias, S8DepthwisePacked<float>& quad_scale) {
  constexpr size_t kBlock = kS8DepthwiseQuadBlock;
  const S8DepthwiseQuadBlocks q(channels);
  // Slot [k][L][j] holds channel 16L + 4k + j of a full block; in the half block lanes 2 and 3
  // repeat lanes 0 and 1, in the quarter block every lane holds the same 16 channels.
  pack_tap_groups(weight, bias, scale, taps, channels, x_zero_point, q.blocks(), kBlock, 4,
                  [q](size_t b, size_t s) {
                    const size_t lane = s / 4 % 4, inner = 4 * (s / 16) + s % 4;
                    if (b < q.full) return b * kBlock + 16 * lane + inner;
                    if (q.half && b == q.full) return q.half_channel() + 16 * (lane % 2) + inner;
                    return q.quarter_channel() + inner;
                  },
                  quad_weight, quad_bias, quad_scale);
}

namespace {

// Per tap (kh, kw): bytes from a pixel's tap-0 input to the tap's, in an NHWC image whose rows
// are `row_pixels` pixels apart and whose kernel rows are `row_step` rows apart.
void tap_offsets(const Conv2dGeometry& g, size_t row_pixels, size_t row_step, std::vector<ptrdiff_t>& offset) {
  offset.resize(g.kernel_h * g.kernel_w);
  for (size_t kh = 0; kh < g.kernel_h; ++kh) {
    for (size_t kw = 0; kw < g.kernel_w; ++kw) {
      offset[kh * g.kernel_w + kw] = static_cast<ptrdiff_t>((kh * row_step * row_pixels + kw * g.dilation_w) * g.in_channels);
    }
  }
}

// The input rows one output row reads, with its padding made real: kernel_h rows (one per kernel
// row, so dilated rows are packed together) of the padded width, pad columns and rows outside
// the image holding the zero point. Pixels whose taps reach into the padding run through the same
// run kernel as the interior ones, from here: a padded tap reads the zero point, which adds
// exactly 0 (also to the sums with the zero point folded into the bias).
class PaddedRows {
 public:
  // `rows` and `offset` are the caller's (thread_local: a run allocates nothing once warm).
  PaddedRows(const Conv2dGeometry& g, uint8_t zero_point, std::vector<uint8_t>& rows, std::vector<ptrdiff_t>& offset)
      : g_(g),
        c_(g.in_channels),
        width_(g.in_width + g.pad_left + g.pad_right),
        zero_point_(zero_point),
        rows_(rows),
        offset_(offset) {
    rows_.resize(g.kernel_h * width_ * c_);
    tap_offsets(g, width_, 1, offset_);  // the copy holds only the kernel rows, one after another
  }

  const ptrdiff_t* offset() const { return offset_.data(); }

  // Fills the padded columns that output pixels [ow_begin, ow_end) of output row `oh` read, from
  // `image`; returns the first pixel's tap-0 input in the copy.
  const uint8_t* fill(const uint8_t* image, size_t oh, size_t ow_begin, size_t ow_end) {
    const size_t col_begin = ow_begin * g_.stride_w;
    const size_t col_end = (ow_end - 1) * g_.stride_w + (g_.kernel_w - 1) * g_.dilation_w + 1;
    // Image columns [image_begin, image_end) of those padded columns.
    const size_t image_begin = std::clamp(col_begin, g_.pad_left, g_.pad_left + g_.in_width);
    const size_t image_end = std::clamp(col_end, image_begin, g_.pad_left + g_.in_width);
    for (size_t kh = 0; kh < g_.kernel_h; ++kh) {
      uint8_t* row = rows_.data() + kh * width_ * c_;
      const ptrdiff_t ih = static_cast<ptrdiff_t>(oh * g_.stride_h + kh * g_.dilation_h) - static_cast<ptrdiff_t>(g_.pad_top);
      if (ih < 0 || ih >= static_cast<ptrdiff_t>(g_.in_height) || image_begin == image_end) {
        std::memset(row + col_begin * c_, zero_point_, (col_end - col_begin) * c_);
        continue;
      }
      std::memset(row + col_begin * c_, zero_point_, (image_begin - col_begin) * c_);
      std::memcpy(row + image_begin * c_, image + (static_cast<size_t>(ih) * g_.in_width + image_begin - g_.pad_left) * c_,
                  (image_end - image_begin) * c_);
      std::memset(row + image_end * c_, zero_point_, (col_end - image_end) * c_);
    }
    return rows_.data() + col_begin * c_;
  }

 private:
  const Conv2dGeometry& g_;
  size_t c_, width_;
  uint8_t zero_point_;
  std::vector<uint8_t>& rows_;
  std::vector<ptrdiff_t>& offset_;
};

}  // namespace

void s8_depthwise_rows(const Conv2dGeometry& g, const S8DepthwiseArgs& a, const uint8_t* in, void* out,
                       size_t row_begin, size_t row_end) {
  const size_t c = g.in_channels, taps = g.kernel_h * g.kernel_w;
  thread_local std::vector<ptrdiff_t> offset, padded_offset;
  thread_local std::vector<uint8_t> padded_rows;
  tap_offsets(g, g.in_width, g.dilation_h, offset);
  PaddedRows padded(g, a.x_zero_point, padded_rows, padded_offset);
  const int32_t zy = a.y_zero_point;
  const ptrdiff_t span_w = static_cast<ptrdiff_t>((g.kernel_w - 1) * g.dilation_w);
  // Columns [inner_begin, inner_end) have every tap inside the input row.
  const size_t inner_begin = std::min(g.out_width, (g.pad_left + g.stride_w - 1) / g.stride_w);
  const ptrdiff_t last_start = static_cast<ptrdiff_t>(g.in_width) - 1 - span_w + static_cast<ptrdiff_t>(g.pad_left);
  const size_t inner_end =
      last_start < 0 ? 0 : std::min(g.out_width, static_cast<size_t>(last_start) / g.stride_w + 1);
  S8DepthwiseRun run;
  run.taps = taps;
  run.channels = c;
  run.pixel_step = g.stride_w * c;
  run.weight = a.weight;
  run.bias = a.bias;
  run.scale = a.scale;
  run.x_zero_point = a.x_zero_point;
  run.y_zero_point = zy;
  run.lo = static_cast<float>(static_cast<int32_t>(a.y_min) - zy);
  run.hi = static_cast<float>(static_cast<int32_t>(a.y_max) - zy);
  run.pair_weight = a.pair_weight;
  run.pair_bias = a.pair_bias;
  run.pair_scale = a.pair_scale;
  run.quad_weight = a.quad_weight;
  run.quad_bias = a.quad_bias;
  run.quad_scale = a.quad_scale;
  // Output pixel `at` (row * out_width + column) as the run's first.
  const auto output_from = [&](size_t at) {
    if (a.float_output) {
      run.out_f32 = static_cast<float*>(out) + at * c;
    } else {
      run.out = static_cast<uint8_t*>(out) + at * c;
    }
  };
  // Output pixels [ow_begin, ow_end) of `row` from the padded copy of their input.
  const auto run_padded = [&](const uint8_t* image, size_t row, size_t oh, size_t ow_begin, size_t ow_end) {
    if (ow_begin >= ow_end) return;
    run.x = padded.fill(image, oh, ow_begin, ow_end);
    run.offset = padded.offset();
    run.pixels = ow_end - ow_begin;
    output_from(row * g.out_width + ow_begin);
    a.run(run);
  };
  for (size_t row = row_begin; row < row_end; ++row) {
    const size_t b = row / g.out_height, oh = row % g.out_height;
    const uint8_t* image = in + b * g.in_plane() * c;
    const ptrdiff_t ih0 = static_cast<ptrdiff_t>(oh * g.stride_h) - static_cast<ptrdiff_t>(g.pad_top);
    const bool rows_inside =
        ih0 >= 0 && ih0 + static_cast<ptrdiff_t>((g.kernel_h - 1) * g.dilation_h) < static_cast<ptrdiff_t>(g.in_height);
    if (!rows_inside || inner_begin >= inner_end) {
      run_padded(image, row, oh, 0, g.out_width);
      continue;
    }
    run_padded(image, row, oh, 0, inner_begin);
    // The interior straight from the image: every tap is a fixed offset from the pixel's corner.
    const ptrdiff_t iw0 = static_cast<ptrdiff_t>(inner_begin * g.stride_w) - static_cast<ptrdiff_t>(g.pad_left);
    run.x = image + (static_cast<size_t>(ih0) * g.in_width + static_cast<size_t>(iw0)) * c;
    run.offset = offset.data();
    run.pixels = inner_end - inner_begin;
    output_from(row * g.out_width + inner_begin);
    a.run(run);
    run_padded(image, row, oh, inner_end, g.out_width);
  }
}

}  // namespace kiln
