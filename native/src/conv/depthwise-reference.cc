// Scalar depthwise kernels (conv/depthwise.h): the fallback of every ISA and the tests' oracle
// for the vector ones. Exact lengths: the slack the contract allows is not used.
#include "conv/depthwise.h"

namespace kiln {

void f32_depthwise_taps_scalar(const float* const* taps, const float* w, size_t ntaps, float bias, float lo, float hi,
                               size_t n, float* out) {
  for (size_t p = 0; p < n; ++p) out[p] = bias;
  for (size_t t = 0; t < ntaps; ++t) {
    const float* x = taps[t];
    const float wt = w[t];
    for (size_t p = 0; p < n; ++p) out[p] += wt * x[p];
  }
  // Bound first, value second: a NaN sum stays NaN, as the vector kernels' max/min keep it.
  for (size_t p = 0; p < n; ++p) {
    float v = out[p];
    v = lo > v ? lo : v;
    out[p] = hi < v ? hi : v;
  }
}

void f32_deinterleave2_scalar(const float* src, size_t pairs, float* even, float* odd) {
  for (size_t j = 0; j < pairs; ++j) {
    even[j] = src[2 * j];
    odd[j] = src[2 * j + 1];
  }
}

}  // namespace kiln
