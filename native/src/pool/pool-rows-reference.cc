// The scalar kernels of the pool family: the dispatch table's scalar entries (the fallback on
// any CPU) and the oracle the ISA rows are tested against, bit for bit.
#include <limits>

#include "pool/pool-rows.h"

namespace kiln {

void f32_maxpool2d_2x2_row_scalar(const float* top, const float* bottom, size_t n, size_t first, size_t width,
                                  float* out, int32_t* idx) {
  for (size_t ow = 0; ow < n; ++ow) {
    const size_t at = first + 2 * ow;
    float best = top[2 * ow];
    size_t where = at;
    // Selects, not branches: which tap wins is data-dependent and mispredicts often.
    const float v1 = top[2 * ow + 1];
    const bool t1 = max_pool_takes_over(v1, best);
    best = t1 ? v1 : best;
    where = t1 ? at + 1 : where;
    const float v2 = bottom[2 * ow];
    const bool t2 = max_pool_takes_over(v2, best);
    best = t2 ? v2 : best;
    where = t2 ? at + width : where;
    const float v3 = bottom[2 * ow + 1];
    const bool t3 = max_pool_takes_over(v3, best);
    best = t3 ? v3 : best;
    where = t3 ? at + width + 1 : where;
    out[ow] = best;
    if (idx != nullptr) idx[ow] = static_cast<int32_t>(where);
  }
}

void f32_avg_rows_scalar(const float* in, const ptrdiff_t* taps, size_t ntaps, size_t in_step, size_t stride, size_t n,
                         size_t rows, float divisor, float* out, size_t out_step) {
  for (size_t r = 0; r < rows; ++r, in += in_step, out += out_step) {
    for (size_t j = 0; j < n; ++j) {
      float sum = 0.0f;
      for (size_t t = 0; t < ntaps; ++t) sum += in[taps[t] + static_cast<ptrdiff_t>(j * stride)];
      out[j] = sum / divisor;
    }
  }
}

void f32_max_taps_scalar(const float* const* taps, size_t ntaps, size_t n, float* out) {
  for (size_t p = 0; p < n; ++p) {
    float best = -std::numeric_limits<float>::infinity();
    bool nan = false;
    for (size_t t = 0; t < ntaps; ++t) {
      const float v = taps[t][p];
      nan |= v != v;
      best = v > best ? v : best;
    }
    out[p] = nan ? std::numeric_limits<float>::quiet_NaN() : best;
  }
}

}  // namespace kiln
