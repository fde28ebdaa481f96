// The scalar kernels of the resize family: the dispatch table's scalar entries (the fallback on
// any CPU) and the oracle the ISA rows are tested against. Sums run in tap order, so every ISA
// path that keeps that order (one multiply-add per tap) agrees to rounding of the FMA.
#include "resize/resize-rows.h"

namespace kiln {

void f32_resize_gather_row_scalar(const float* x, const int32_t* idx, size_t n, float* y) {
  for (size_t j = 0; j < n; ++j) y[j] = x[idx[j]];
}

void f32_resize_double_row_scalar(const float* x, size_t n, float* y) {
  for (size_t j = 0; j < n; ++j) {
    y[2 * j] = x[j];
    y[2 * j + 1] = x[j];
  }
}

void f32_resize_taps_row_scalar(const float* x, const int32_t* idx, const float* w, size_t taps, size_t n, float* y) {
  for (size_t j = 0; j < n; ++j) {
    float s = 0;
    for (size_t t = 0; t < taps; ++t) s += x[idx[j * taps + t]] * w[j * taps + t];
    y[j] = s;
  }
}

void f32_resize_blend_rows_scalar(const float* const* rows, const float* w, size_t taps, size_t n, float* y) {
  for (size_t j = 0; j < n; ++j) {
    float s = 0;
    for (size_t t = 0; t < taps; ++t) s += rows[t][j] * w[t];
    y[j] = s;
  }
}

}  // namespace kiln
