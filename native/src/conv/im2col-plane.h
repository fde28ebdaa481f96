// The whole-plane column walk, shared by the per-ISA im2col files. Each including translation
// unit gets its own copy (anonymous namespace), compiled with that file's flags, and supplies a
// `Row` with these row operations:
//   Row::zero(dst, n)                      dst[0, n) = 0
//   Row::copy(dst, n, row, offset, lo, hi) dst[i] = row[offset + i] for i in [lo, hi), else 0
//   Row::gather_even(src, n, dst)          dst[i] = src[2i] for i < n (the table's gather_even)
//   Row::add(row, offset, src, lo, hi)     row[offset + i] += src[i] for i in [lo, hi)
// `row + offset + i` is only dereferenced for i in [lo, hi); outside it the address may lie
// before or after the row, so implementations compute it without forming such a pointer.
// Only plain loops and intrinsics here: an inline std:: template instantiated under AVX-512
// flags could be picked by the linker for the baseline code too.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kiln/conv.h"

namespace kiln {
namespace {

// Output columns [lo, hi) whose input column ow * stride + offset lies inside [0, width).
struct ColumnSpan {
  size_t lo, hi;
};

inline ColumnSpan valid_columns(ptrdiff_t offset, size_t stride, size_t width, size_t out_width) {
  const ptrdiff_t s = static_cast<ptrdiff_t>(stride);
  const ptrdiff_t lo = offset >= 0 ? 0 : (-offset + s - 1) / s;
  const ptrdiff_t last = static_cast<ptrdiff_t>(width) - 1 - offset;
  const ptrdiff_t hi = last < 0 ? 0 : last / s + 1;
  size_t ulo = static_cast<size_t>(lo) < out_width ? static_cast<size_t>(lo) : out_width;
  size_t uhi = static_cast<size_t>(hi) < out_width ? static_cast<size_t>(hi) : out_width;
  if (uhi < ulo) uhi = ulo;
  return {ulo, uhi};
}

// `ptr + offset` as an address computation, for offsets that may leave the array (never read).
inline const float* offset_address(const float* ptr, ptrdiff_t offset) {
  return reinterpret_cast<const float*>(reinterpret_cast<uintptr_t>(ptr) + static_cast<uintptr_t>(offset) * sizeof(float));
}
inline float* offset_address(float* ptr, ptrdiff_t offset) {
  return reinterpret_cast<float*>(reinterpret_cast<uintptr_t>(ptr) + static_cast<uintptr_t>(offset) * sizeof(float));
}

// Calls visit(r, oh, tap_row_dst_offset, input_row_or_null, dw, span) for every tap row r and
// output row oh; input_row is null when the tap row lies in vertical padding.
template <typename Visit>
inline void for_each_plane_row(const Conv2dGeometry& g, size_t channels, Visit visit) {
  for (size_t c = 0; c < channels; ++c) {
    for (size_t kh = 0; kh < g.kernel_h; ++kh) {
      const ptrdiff_t dh = static_cast<ptrdiff_t>(kh * g.dilation_h) - static_cast<ptrdiff_t>(g.pad_top);
      for (size_t kw = 0; kw < g.kernel_w; ++kw) {
        const size_t r = (c * g.kernel_h + kh) * g.kernel_w + kw;
        const ptrdiff_t dw = static_cast<ptrdiff_t>(kw * g.dilation_w) - static_cast<ptrdiff_t>(g.pad_left);
        const ColumnSpan span = valid_columns(dw, g.stride_w, g.in_width, g.out_width);
        for (size_t oh = 0; oh < g.out_height; ++oh) {
          const ptrdiff_t ih = static_cast<ptrdiff_t>(oh * g.stride_h) + dh;
          const bool inside = ih >= 0 && ih < static_cast<ptrdiff_t>(g.in_height);
          const size_t row = inside ? (c * g.in_height + static_cast<size_t>(ih)) * g.in_width : 0;
          visit(r, oh, inside, row, dw, span);
        }
      }
    }
  }
}

template <class Row>
void im2col_plane_with(const Conv2dGeometry& g, size_t channels, const float* input, float* col, size_t ld) {
  const size_t n = g.out_width;
  const size_t sw = g.stride_w;
  for_each_plane_row(g, channels, [&](size_t r, size_t oh, bool inside, size_t row, ptrdiff_t dw, ColumnSpan span) {
    float* dst = col + r * ld + oh * n;
    if (!inside) {
      Row::zero(dst, n);
    } else if (sw == 1) {
      Row::copy(dst, n, input + row, dw, span.lo, span.hi);
    } else if (sw == 2) {
      Row::zero(dst, span.lo);
      if (span.hi > span.lo) Row::gather_even(input + (static_cast<ptrdiff_t>(row) + dw + 2 * static_cast<ptrdiff_t>(span.lo)), span.hi - span.lo, dst + span.lo);
      Row::zero(dst + span.hi, n - span.hi);
    } else {
      for (size_t i = 0; i < span.lo; ++i) dst[i] = 0.0f;
      const ptrdiff_t base = static_cast<ptrdiff_t>(row) + dw;
      for (size_t i = span.lo; i < span.hi; ++i) dst[i] = input[base + static_cast<ptrdiff_t>(i * sw)];
      for (size_t i = span.hi; i < n; ++i) dst[i] = 0.0f;
    }
  });
}

template <class Row>
void col2im_plane_add_with(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld, float* grad_input) {
  const size_t n = g.out_width;
  const size_t sw = g.stride_w;
  for_each_plane_row(g, channels, [&](size_t r, size_t oh, bool inside, size_t row, ptrdiff_t dw, ColumnSpan span) {
    if (!inside) return;
    const float* src = col + r * ld + oh * n;
    if (sw == 1) {
      Row::add(grad_input + row, dw, src, span.lo, span.hi);
    } else {
      const ptrdiff_t base = static_cast<ptrdiff_t>(row) + dw;
      for (size_t i = span.lo; i < span.hi; ++i) grad_input[base + static_cast<ptrdiff_t>(i * sw)] += src[i];
    }
  });
}

}  // namespace
}  // namespace kiln
