#include <limits>

#include "common/dispatch.h"
#include "kiln/pool.h"
#include "pool/pool-rows.h"
#include "pool/window.h"

namespace kiln {

namespace {

inline bool takes_over(float v, float best) { return max_pool_takes_over(v, best); }

// 2x2 windows, stride 2, no padding or dilation: the usual downsampling, a row at a time by the
// active table's row kernel (looked up once per call, not per row).
void max_pool_2x2(const Pool2dGeometry& g, const float* in, float* out, int32_t* idx, F32MaxPool2x2RowFn row) {
  const size_t width = g.in_width;
  for (size_t oh = 0; oh < g.out_height; ++oh) {
    const size_t r0 = 2 * oh * width;
    const float* top = in + r0;
    row(top, top + width, g.out_width, r0, width, out + oh * g.out_width,
        idx != nullptr ? idx + oh * g.out_width : nullptr);
  }
}

// Without padding every window lies inside the plane (the output size is the floor formula):
// no bounds to clip.
void max_pool_unpadded(const Pool2dGeometry& g, const float* in, float* out, int32_t* idx) {
  const size_t width = g.in_width;
  for (size_t oh = 0; oh < g.out_height; ++oh) {
    for (size_t ow = 0; ow < g.out_width; ++ow) {
      const size_t start = oh * g.stride_h * width + ow * g.stride_w;
      float best = in[start];
      size_t where = start;
      for (size_t kh = 0; kh < g.kernel_h; ++kh) {
        const size_t row = start + kh * g.dilation_h * width;
        for (size_t kw = 0; kw < g.kernel_w; ++kw) {
          const size_t at = row + kw * g.dilation_w;
          const float v = in[at];
          // Selects, not a branch: which tap wins is data-dependent and mispredicts often.
          const bool t = takes_over(v, best);
          best = t ? v : best;
          where = t ? at : where;
        }
      }
      out[oh * g.out_width + ow] = best;
      if (idx != nullptr) idx[oh * g.out_width + ow] = static_cast<int32_t>(where);
    }
  }
}

}  // namespace

void max_pool2d_forward(const Pool2dGeometry& g, const float* input, float* output, int32_t* indices,
                        size_t max_threads) {
  max_pool2d_forward(dispatch().f32_pool, g, input, output, indices, max_threads);
}

void max_pool2d_forward(const F32PoolKernels& k, const Pool2dGeometry& g, const float* input, float* output,
                        int32_t* indices, size_t max_threads) {
  if (g.pad_top == 0 && g.pad_left == 0 && g.pad_bottom == 0 && g.pad_right == 0) {
    const bool two_by_two = g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 &&
                            g.dilation_h == 1 && g.dilation_w == 1;
    const F32MaxPool2x2RowFn row = k.max_2x2_row;
    for_each_plane(g, max_threads, [&](size_t p) {
      const float* in = input + p * g.in_plane();
      float* out = output + p * g.out_plane();
      int32_t* idx = indices != nullptr ? indices + p * g.out_plane() : nullptr;
      if (two_by_two) {
        max_pool_2x2(g, in, out, idx, row);
      } else {
        max_pool_unpadded(g, in, out, idx);
      }
    });
    return;
  }
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
            if (where < 0 || takes_over(v, best)) {
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
