// The normalization drivers: rows (LayerNorm) or groups of planes (GroupNorm, InstanceNorm) split
// over the thread pool in chunks of whole rows, each row reduced and written by the kernels of
// one dispatch table.
#include "norm/norm.h"

#include <algorithm>
#include <cmath>

#include "elementwise/chunks.h"

namespace kiln {

namespace {
constexpr size_t kRowsPiece = 16384;
// Rows per chunk: about 16K elements of work each, at least one row.
size_t rows_per_chunk(size_t row_elements) {
  return std::max<size_t>(1, kRowsPiece / std::max<size_t>(row_elements, 1));
}
}  // namespace

void layer_norm_forward(const F32NormKernels& k, const float* x, float* y, size_t rows, size_t d,
                        const float* scale, const float* bias, float epsilon, size_t max_threads) {
  if (d == 0) return;
  for_each_piece(rows, rows_per_chunk(d), max_threads, [&](size_t lo, size_t hi) {
    for (size_t r = lo; r < hi; ++r) {
      float mean, var;
      k.moments(x + r * d, d, &mean, &var);
      const float rstd = 1.0f / std::sqrt(var + epsilon);
      k.normalize_row(x + r * d, d, mean, rstd, scale, bias, y + r * d);
    }
  });
}

void group_norm_forward(const F32NormKernels& k, const float* x, float* y, size_t images, size_t channels,
                        size_t groups, size_t spatial, const float* scale, const float* bias, float epsilon,
                        size_t max_threads) {
  if (groups == 0 || spatial == 0) return;
  const size_t per_group = channels / groups;
  const size_t group_elements = per_group * spatial;
  for_each_piece(images * groups, rows_per_chunk(group_elements), max_threads, [&](size_t lo, size_t hi) {
    for (size_t r = lo; r < hi; ++r) {
      const float* xg = x + r * group_elements;
      float* yg = y + r * group_elements;
      float mean, var;
      k.moments(xg, group_elements, &mean, &var);
      const float rstd = 1.0f / std::sqrt(var + epsilon);
      const size_t c0 = (r % groups) * per_group;
      for (size_t c = 0; c < per_group; ++c) {
        const float a = rstd * scale[c0 + c];
        const float b = (bias ? bias[c0 + c] : 0.0f) - mean * a;
        k.scale_shift_row(xg + c * spatial, spatial, a, b, yg + c * spatial);
      }
    }
  });
}

}  // namespace kiln
