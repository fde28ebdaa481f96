// The scalar normalization row kernels: the fallback and the oracle of the vector ones. Sums run
// in double.
#include <cmath>

#include "norm/norm-ukernel.h"

namespace kiln {

void f32_norm_moments_scalar(const float* x, size_t n, float* mean, float* var) {
  double sum = 0;
  for (size_t j = 0; j < n; ++j) sum += x[j];
  const double m = sum / static_cast<double>(n);
  double sq = 0;
  for (size_t j = 0; j < n; ++j) {
    const double dev = static_cast<double>(x[j]) - m;
    sq += dev * dev;
  }
  *mean = static_cast<float>(m);
  *var = static_cast<float>(sq / static_cast<double>(n));
}

void f32_norm_row_scalar(const float* x, size_t n, float mean, float rstd, const float* scale, const float* bias,
                         float* y) {
  for (size_t j = 0; j < n; ++j) {
    const float v = (x[j] - mean) * rstd * scale[j];
    y[j] = bias ? v + bias[j] : v;
  }
}

void f32_scale_shift_row_scalar(const float* x, size_t n, float a, float b, float* y) {
  for (size_t j = 0; j < n; ++j) y[j] = x[j] * a + b;
}

}  // namespace kiln
