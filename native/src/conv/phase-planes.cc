#include "conv/phase-planes.h"

#include <algorithm>

namespace kiln {
namespace {

// Rows here are short (7 to 230 floats) and many: inline moves of fixed size instead of a libc
// call per row, which cost as much as the kernel on 14x14 planes.
inline void copy_floats(float* dst, const float* src, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) __builtin_memcpy(dst + i, src + i, 16 * sizeof(float));
  for (; i + 4 <= n; i += 4) __builtin_memcpy(dst + i, src + i, 4 * sizeof(float));
  for (; i < n; ++i) __builtin_memcpy(dst + i, src + i, sizeof(float));
}

inline void fill_floats(float* dst, size_t n, float value) {
  const float block[4] = {value, value, value, value};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) __builtin_memcpy(dst + i, block, sizeof(block));
  for (; i < n; ++i) dst[i] = value;
}

}  // namespace

PlanarWindow planar_window(const Conv2dGeometry& g) {
  PlanarWindow w;
  w.in_h = g.in_height;
  w.in_w = g.in_width;
  w.out_h = g.out_height;
  w.out_w = g.out_width;
  w.kernel_h = g.kernel_h;
  w.kernel_w = g.kernel_w;
  w.stride_h = g.stride_h;
  w.stride_w = g.stride_w;
  w.dilation_h = g.dilation_h;
  w.dilation_w = g.dilation_w;
  w.pad_top = g.pad_top;
  w.pad_left = g.pad_left;
  return w;
}

PhasePlanes::PhasePlanes(const PlanarWindow& w, size_t slack)
    : w_(w),
      slack_(slack),
      phases_(w.stride_h * w.stride_w),
      rows_(w.out_h + (w.kernel_h - 1) * w.dilation_h / w.stride_h),
      pitch_(w.out_w + (w.kernel_w - 1) * w.dilation_w / w.stride_w),
      phase_floats_(rows_ * pitch_ + slack),
      out_floats_(w.out_h * pitch_ + kPhaseSlack),
      row_floats_(pitch_ * w.stride_w + kPhaseSlack) {
  for (size_t kh = 0; kh < w.kernel_h; ++kh) {
    for (size_t kw = 0; kw < w.kernel_w; ++kw) {
      const size_t dh = kh * w.dilation_h, dw = kw * w.dilation_w;
      tap_phase_.push_back((dh % w.stride_h) * w.stride_w + dw % w.stride_w);
      tap_offset_.push_back(dh / w.stride_h * pitch_ + dw / w.stride_w);
    }
  }
}

// Padded input row ih (all fill when it lies in the padding) as `columns` columns from padded
// column 0.
void PhasePlanes::padded_row(const float* x, ptrdiff_t ih, size_t columns, float fill, float* row) const {
  if (ih < 0 || ih >= static_cast<ptrdiff_t>(w_.in_h) || w_.pad_left >= columns) {
    fill_floats(row, columns, fill);
    return;
  }
  const size_t n = std::min(w_.in_w, columns - w_.pad_left);
  fill_floats(row, w_.pad_left, fill);
  copy_floats(row + w_.pad_left, x + static_cast<size_t>(ih) * w_.in_w, n);
  fill_floats(row + w_.pad_left + n, columns - w_.pad_left - n, fill);
}

void PhasePlanes::split(const F32DepthwiseKernels& k, const float* x, float fill, float* slot,
                        const float** taps) const {
  split_planes(k, x, fill, slot, flat(slot) + out_floats_);
  for (size_t t = 0; t < tap_offset_.size(); ++t) taps[t] = slot + tap_phase_[t] * phase_floats_ + tap_offset_[t];
}

void PhasePlanes::split_planes(const F32DepthwiseKernels& k, const float* x, float fill, float* slot,
                               float* row) const {
  const size_t sw = w_.stride_w, columns = pitch_ * sw;
  for (size_t a = 0; a < w_.stride_h; ++a) {
    for (size_t i = 0; i < rows_; ++i) {
      const ptrdiff_t ih = static_cast<ptrdiff_t>(i * w_.stride_h + a) - static_cast<ptrdiff_t>(w_.pad_top);
      float* dst = slot + a * sw * phase_floats_ + i * pitch_;
      if (sw == 1) {
        padded_row(x, ih, columns, fill, dst);
        continue;
      }
      padded_row(x, ih, columns, fill, row);
      if (sw == 2) {
        k.deinterleave2(row, pitch_, dst, dst + phase_floats_);
        continue;
      }
      for (size_t b = 0; b < sw; ++b) {
        float* phase_row = dst + b * phase_floats_;
        for (size_t j = 0; j < pitch_; ++j) phase_row[j] = row[j * sw + b];
      }
    }
  }
  for (size_t p = 0; p < phases_; ++p) {
    float* slack = slot + p * phase_floats_ + rows_ * pitch_;
    fill_floats(slack, slack_, fill);
  }
}

void PhasePlanes::copy_out(const float* flat, float* y) const {
  for (size_t oh = 0; oh < w_.out_h; ++oh) copy_floats(y + oh * w_.out_w, flat + oh * pitch_, w_.out_w);
}

}  // namespace kiln
