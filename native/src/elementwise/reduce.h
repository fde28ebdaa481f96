// Sums over float arrays in double that still vectorise at baseline flags: 8 independent double
// lanes instead of one serial chain (which would wait on every add's latency). The order is
// fixed by the length alone, so results never depend on threads.
#pragma once
#include <cstddef>

namespace kiln {

// Sum of term(i) for i in [0, n); term returns float or double.
template <typename Term>
inline double lane_sum(size_t n, Term term) {
  double lanes[8] = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t l = 0; l < 8; ++l) lanes[l] += static_cast<double>(term(i + l));
  }
  double tail = 0;
  for (; i < n; ++i) tail += static_cast<double>(term(i));
  return ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7])) + tail;
}

inline double sum_of(const float* x, size_t n) {
  return lane_sum(n, [x](size_t i) { return x[i]; });
}

}  // namespace kiln
