// The scalar whole-plane im2col and col2im: the dispatch table's scalar entries (the fallback on
// any CPU) and the oracle the AVX2 and AVX-512 rows are tested against, bit for bit. The column
// walk is the shared one (im2col-plane.h); only the stride-1 row operations are scalar here.
#include "conv/im2col-plane.h"
#include "conv/im2col.h"

namespace kiln {
namespace {

struct RowScalar {
  static void zero(float* dst, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] = 0.0f;
  }
  static void copy(float* dst, size_t n, const float* row, ptrdiff_t offset, size_t lo, size_t hi) {
    for (size_t i = 0; i < lo; ++i) dst[i] = 0.0f;
    for (size_t i = lo; i < hi; ++i) dst[i] = row[offset + static_cast<ptrdiff_t>(i)];
    for (size_t i = hi; i < n; ++i) dst[i] = 0.0f;
  }
  static void gather_even(const float* src, size_t n, float* dst) { f32_gather_even_scalar(src, n, dst); }
  static void add(float* row, ptrdiff_t offset, const float* src, size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) row[offset + static_cast<ptrdiff_t>(i)] += src[i];
  }
};

}  // namespace

void f32_gather_even_scalar(const float* src, size_t n, float* dst) {
  for (size_t i = 0; i < n; ++i) dst[i] = src[2 * i];
}

void f32_im2col_plane_scalar(const Conv2dGeometry& g, size_t channels, const float* input, float* col, size_t ld) {
  im2col_plane_with<RowScalar>(g, channels, input, col, ld);
}

void f32_col2im_plane_add_scalar(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld,
                                 float* grad_input) {
  col2im_plane_add_with<RowScalar>(g, channels, col, ld, grad_input);
}

}  // namespace kiln
