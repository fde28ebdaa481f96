// What the int8 steps (QLinearConv, QLinearGemm) share for their sparse-or-dense choice (attr
// `sparse`: runtime/ops/sparse-mode.h; timing: runtime/sparse-choice.h): weights at least kFloor
// zeros are packed into 1x4 blocks (kiln/s8-sparse.h). Results are the same bits either way.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>


namespace kiln {
namespace runtime {
namespace s8_sparse_choice {

// Below this fraction of zero weights nothing is packed or timed (the dense int8 kernels win on
// every shape measured in native/bench/s8-sparse-bench.cc).
constexpr double kFloor = 0.5;

inline double zero_fraction(const int8_t* w, size_t n) {
  size_t zeros = 0;
  for (size_t i = 0; i < n; ++i) zeros += w[i] == 0 ? 1 : 0;
  return n == 0 ? 0.0 : static_cast<double>(zeros) / static_cast<double>(n);
}

// Rounded, but never 100% unless every weight is zero.
inline int percent(double fraction) {
  int pct = static_cast<int>(std::lround(fraction * 100.0));
  if (pct == 100 && fraction < 1.0) pct = 99;
  return pct;
}

}  // namespace s8_sparse_choice
}  // namespace runtime
}  // namespace kiln
