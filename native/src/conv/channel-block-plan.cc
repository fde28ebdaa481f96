#include "conv/channel-block-plan.h"

#include <algorithm>

namespace kiln {

ChannelBlockPlan::ChannelBlockPlan(const PlanarWindow& w) : w_(w) {
  if (w.out_h == 0 || w.out_w == 0) return;
  padded_w_ = std::max(w.in_w + w.pad_left, (w.out_w - 1) * w.stride_w + (w.kernel_w - 1) * w.dilation_w + 1);
  const size_t reach = (w.kernel_h - 1) * w.dilation_h + 1;  // buffer rows under one output row
  const size_t max_rows = kMaxFloats / (padded_w_ * kMaxLanes);
  band_rows_ = max_rows < reach ? 0 : std::min(w.out_h, (max_rows - reach) / w.stride_h + 1);
  buffer_rows_ = band_rows_ == 0 ? 0 : (band_rows_ - 1) * w.stride_h + reach;
  for (size_t kh = 0; kh < w.kernel_h; ++kh)
    for (size_t kw = 0; kw < w.kernel_w; ++kw) tap_offset_.push_back(kh * w.dilation_h * padded_w_ + kw * w.dilation_w);
}

ChannelBlockPlan::Band ChannelBlockPlan::band(size_t oh0) const {
  Band b;
  b.out_rows = std::min(band_rows_, w_.out_h - oh0);
  b.reads = (b.out_rows - 1) * w_.stride_h + (w_.kernel_h - 1) * w_.dilation_h + 1;
  // Padded row oh0 * stride_h is buffer row 0; the input starts pad_top padded rows down.
  const ptrdiff_t top = static_cast<ptrdiff_t>(oh0 * w_.stride_h) - static_cast<ptrdiff_t>(w_.pad_top);
  b.pad_rows = std::min(b.reads, top < 0 ? static_cast<size_t>(-top) : size_t{0});
  b.first_row = top < 0 ? 0 : static_cast<size_t>(top);
  b.in_rows = b.first_row >= w_.in_h ? 0 : std::min(w_.in_h - b.first_row, b.reads - b.pad_rows);
  return b;
}

void ChannelBlockPlan::fill_border(const Band& b, size_t lanes, float fill, float* buffer) const {
  const size_t row = padded_w_ * lanes;
  std::fill(buffer, buffer + b.pad_rows * row, fill);
  std::fill(buffer + (b.pad_rows + b.in_rows) * row, buffer + b.reads * row, fill);
  const size_t right = std::min(padded_w_, w_.pad_left + w_.in_w);
  for (size_t r = b.pad_rows; r < b.pad_rows + b.in_rows; ++r) {
    float* line = buffer + r * row;
    std::fill(line, line + w_.pad_left * lanes, fill);
    std::fill(line + right * lanes, line + row, fill);
  }
}

}  // namespace kiln
