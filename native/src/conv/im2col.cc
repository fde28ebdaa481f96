#include "conv/im2col.h"

#include "conv/im2col-plane.h"
#include "common/dispatch.h"

#include <algorithm>
#include <cstring>

namespace kiln {
namespace {

// For every tap row r and every piece [ow0, ow1) of one output row inside [j0, j0 + n), calls
// visit(r, column offset from j0, ow0, a, b, ow1, base): columns [a, b) read input[base + ow*stride_w],
// the rest of [ow0, ow1) lies in padding. Shared by im2col and its adjoint so both walk the same taps.
template <typename Visit>
void for_each_segment(const Conv2dGeometry& g, size_t channels, size_t j0, size_t n, Visit visit) {
  const size_t ow_count = g.out_width;
  for (size_t c = 0; c < channels; ++c) {
    for (size_t kh = 0; kh < g.kernel_h; ++kh) {
      const ptrdiff_t dh = static_cast<ptrdiff_t>(kh * g.dilation_h) - static_cast<ptrdiff_t>(g.pad_top);
      for (size_t kw = 0; kw < g.kernel_w; ++kw) {
        const size_t r = (c * g.kernel_h + kh) * g.kernel_w + kw;
        const ptrdiff_t dw = static_cast<ptrdiff_t>(kw * g.dilation_w) - static_cast<ptrdiff_t>(g.pad_left);
        const ColumnSpan span = valid_columns(dw, g.stride_w, g.in_width, ow_count);
        size_t j = j0;
        const size_t end = j0 + n;
        while (j < end) {
          const size_t oh = j / ow_count;
          const size_t ow0 = j - oh * ow_count;
          const size_t ow1 = std::min(ow_count, ow0 + (end - j));
          const ptrdiff_t ih = static_cast<ptrdiff_t>(oh * g.stride_h) + dh;
          const bool inside = ih >= 0 && ih < static_cast<ptrdiff_t>(g.in_height);
          const size_t a = inside ? std::clamp(span.lo, ow0, ow1) : ow1;
          const size_t b = inside ? std::clamp(span.hi, a, ow1) : ow1;
          // Index of the input element under output column ow: base + ow * stride_w.
          const ptrdiff_t base =
              inside ? (static_cast<ptrdiff_t>(c * g.in_height) + ih) * static_cast<ptrdiff_t>(g.in_width) + dw : 0;
          visit(r, j - j0, ow0, a, b, ow1, base);
          j += ow1 - ow0;
        }
      }
    }
  }
}

}  // namespace

void im2col(const Conv2dGeometry& g, size_t channels, const float* input, size_t j0, size_t n,
            float* col, size_t ld) {
  im2col(dispatch().f32_conv, g, channels, input, j0, n, col, ld);
}

void im2col(const F32ConvKernels& k, const Conv2dGeometry& g, size_t channels, const float* input, size_t j0,
            size_t n, float* col, size_t ld) {
  if (j0 == 0 && n == g.out_plane()) {
    k.im2col_plane(g, channels, input, col, ld);
    return;
  }
  const size_t sw = g.stride_w;
  for_each_segment(g, channels, j0, n,
                   [&](size_t r, size_t p, size_t ow0, size_t a, size_t b, size_t ow1, ptrdiff_t base) {
                     float* dst = col + r * ld + p;  // dst[ow - ow0] for ow in [ow0, ow1)
                     std::fill(dst, dst + (a - ow0), 0.0f);
                     if (sw == 1) {
                       if (b > a) std::memcpy(dst + (a - ow0), input + (base + static_cast<ptrdiff_t>(a)), (b - a) * sizeof(float));
                     } else if (sw == 2) {
                       if (b > a) k.gather_even(input + (base + 2 * static_cast<ptrdiff_t>(a)), b - a, dst + (a - ow0));
                     } else {
                       for (size_t ow = a; ow < b; ++ow) dst[ow - ow0] = input[base + static_cast<ptrdiff_t>(ow * sw)];
                     }
                     std::fill(dst + (b - ow0), dst + (ow1 - ow0), 0.0f);
                   });
}

void col2im_add(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld, size_t j0,
                size_t n, float* grad_input) {
  col2im_add(dispatch().f32_conv, g, channels, col, ld, j0, n, grad_input);
}

void col2im_add(const F32ConvKernels& k, const Conv2dGeometry& g, size_t channels, const float* col, size_t ld,
                size_t j0, size_t n, float* grad_input) {
  if (j0 == 0 && n == g.out_plane()) {
    k.col2im_plane_add(g, channels, col, ld, grad_input);
    return;
  }
  const size_t sw = g.stride_w;
  for_each_segment(g, channels, j0, n,
                   [&](size_t r, size_t p, size_t ow0, size_t a, size_t b, size_t, ptrdiff_t base) {
                     const float* src = col + r * ld + p;  // src[ow - ow0]
                     for (size_t ow = a; ow < b; ++ow) grad_input[base + static_cast<ptrdiff_t>(ow * sw)] += src[ow - ow0];
                   });
}

}  // namespace kiln
