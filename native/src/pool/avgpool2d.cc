#include "kiln/pool.h"
#include "pool/window.h"

namespace kiln {
namespace {

// Calls fn(output index, rows, cols, hs, ws, 1 / divisor or 0) for each output of one plane.
template <typename Fn>
void for_each_window(const Pool2dGeometry& g, bool count_include_pad, Fn fn) {
  const ptrdiff_t height = static_cast<ptrdiff_t>(g.in_height);
  const ptrdiff_t width = static_cast<ptrdiff_t>(g.in_width);
  for (size_t oh = 0; oh < g.out_height; ++oh) {
    const ptrdiff_t hs = static_cast<ptrdiff_t>(oh * g.stride_h) - static_cast<ptrdiff_t>(g.pad_top);
    const TapRange rows = taps_within(hs, g.kernel_h, g.dilation_h, 0, height);
    const TapRange padded_rows =
        taps_within(hs, g.kernel_h, g.dilation_h, -static_cast<ptrdiff_t>(g.pad_top), height + static_cast<ptrdiff_t>(g.pad_bottom));
    for (size_t ow = 0; ow < g.out_width; ++ow) {
      const ptrdiff_t ws = static_cast<ptrdiff_t>(ow * g.stride_w) - static_cast<ptrdiff_t>(g.pad_left);
      const TapRange cols = taps_within(ws, g.kernel_w, g.dilation_w, 0, width);
      size_t divisor = rows.count() * cols.count();
      if (count_include_pad) {
        const TapRange padded_cols =
            taps_within(ws, g.kernel_w, g.dilation_w, -static_cast<ptrdiff_t>(g.pad_left), width + static_cast<ptrdiff_t>(g.pad_right));
        divisor = padded_rows.count() * padded_cols.count();
      }
      const float scale = divisor == 0 ? 0.0f : 1.0f / static_cast<float>(divisor);
      fn(oh * g.out_width + ow, rows, cols, hs, ws, scale);
    }
  }
}

}  // namespace

void avg_pool2d_forward(const Pool2dGeometry& g, const float* input, float* output,
                        bool count_include_pad, size_t max_threads) {
  const ptrdiff_t width = static_cast<ptrdiff_t>(g.in_width);
  for_each_plane(g, max_threads, [&](size_t p) {
    const float* in = input + p * g.in_plane();
    float* out = output + p * g.out_plane();
    for_each_window(g, count_include_pad, [&](size_t o, TapRange rows, TapRange cols, ptrdiff_t hs, ptrdiff_t ws, float scale) {
      float sum = 0.0f;
      for (size_t kh = rows.lo; kh < rows.hi; ++kh) {
        const ptrdiff_t row = (hs + static_cast<ptrdiff_t>(kh * g.dilation_h)) * width + ws;
        for (size_t kw = cols.lo; kw < cols.hi; ++kw) sum += in[row + static_cast<ptrdiff_t>(kw * g.dilation_w)];
      }
      out[o] = sum * scale;
    });
  });
}

void avg_pool2d_backward(const Pool2dGeometry& g, const float* grad_output, float* grad_input,
                         bool count_include_pad, size_t max_threads) {
  const ptrdiff_t width = static_cast<ptrdiff_t>(g.in_width);
  for_each_plane(g, max_threads, [&](size_t p) {
    float* gin = grad_input + p * g.in_plane();
    const float* gout = grad_output + p * g.out_plane();
    std::fill(gin, gin + g.in_plane(), 0.0f);
    for_each_window(g, count_include_pad, [&](size_t o, TapRange rows, TapRange cols, ptrdiff_t hs, ptrdiff_t ws, float scale) {
      const float share = gout[o] * scale;
      for (size_t kh = rows.lo; kh < rows.hi; ++kh) {
        const ptrdiff_t row = (hs + static_cast<ptrdiff_t>(kh * g.dilation_h)) * width + ws;
        for (size_t kw = cols.lo; kw < cols.hi; ++kw) gin[row + static_cast<ptrdiff_t>(kw * g.dilation_w)] += share;
      }
    });
  });
}

}  // namespace kiln
