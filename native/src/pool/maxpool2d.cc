#include <cmath>
#include <limits>

#include "kiln/pool.h"
#include "pool/window.h"

namespace kiln {

void max_pool2d_forward(const Pool2dGeometry& g, const float* input, float* output, int32_t* indices,
                        size_t max_threads) {
  const ptrdiff_t height = static_cast<ptrdiff_t>(g.in_height);
  const ptrdiff_t width = static_cast<ptrdiff_t>(g.in_width);
  for_each_plane(g, max_threads, [&](size_t p) {
    const float* in = input + p * g.in_plane();
    float* out = output + p * g.out_plane();
    int32_t* idx = indices != nullptr ? indices + p * g.out_plane() : nullptr;
    for (size_t oh = 0; oh < g.out_height; ++oh) {
      const ptrdiff_t hs = static_cast<ptrdiff_t>(oh * g.stride_h) - static_cast<ptrdiff_t>(g.pad_top);
      const TapRange rows = taps_within(hs, g.kernel_h, g.dilation_h, 0, height);
      for (size_t ow = 0; ow < g.out_width; ++ow) {
        const ptrdiff_t ws = static_cast<ptrdiff_t>(ow * g.stride_w) - static_cast<ptrdiff_t>(g.pad_left);
        const TapRange cols = taps_within(ws, g.kernel_w, g.dilation_w, 0, width);
        float best = -std::numeric_limits<float>::infinity();
        ptrdiff_t where = -1;
        for (size_t kh = rows.lo; kh < rows.hi; ++kh) {
          const ptrdiff_t row = (hs + static_cast<ptrdiff_t>(kh * g.dilation_h)) * width;
          for (size_t kw = cols.lo; kw < cols.hi; ++kw) {
            const ptrdiff_t at = row + ws + static_cast<ptrdiff_t>(kw * g.dilation_w);
            const float v = in[at];
            // The first tap always wins (so an all -inf window still has a winner); after that a
            // larger value, or the first NaN, takes over.
            if (where < 0 || v > best || (std::isnan(v) && !std::isnan(best))) {
              best = v;
              where = at;
            }
          }
        }
        out[oh * g.out_width + ow] = best;
        if (idx != nullptr) idx[oh * g.out_width + ow] = static_cast<int32_t>(where);
      }
    }
  });
}

void max_pool2d_backward(const Pool2dGeometry& g, const float* grad_output, const int32_t* indices,
                         float* grad_input, size_t max_threads) {
  const size_t in_plane = g.in_plane();
  const size_t out_plane = g.out_plane();
  for_each_plane(g, max_threads, [&](size_t p) {
    float* gin = grad_input + p * in_plane;
    const float* gout = grad_output + p * out_plane;
    const int32_t* idx = indices + p * out_plane;
    std::fill(gin, gin + in_plane, 0.0f);
    // In output order, so windows that picked the same input add up the same way every time.
    for (size_t o = 0; o < out_plane; ++o) {
      const int32_t at = idx[o];
      if (at >= 0 && static_cast<size_t>(at) < in_plane) gin[at] += gout[o];
    }
  });
}

}  // namespace kiln
