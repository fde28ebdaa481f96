// The sparse-or-dense choice of the int8 steps (QLinearConv, QLinearGemm) with attr `sparse` =
// 'always' | 'auto' (session option sparseKernels; absent = 'never'), as the float Conv / Gemm
// steps make it (runtime/ops/conv.cc): weights at least kS8SparseFloor zeros are packed into 1x4
// blocks (kiln/s8-sparse.h); 'always' keeps them, 'auto' times both paths on synthetic input at
// plan build and keeps the faster. Results are the same bits either way.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

#include "runtime/ops/ops.h"

namespace kiln {
namespace runtime {
namespace s8_sparse_choice {

enum class Mode { kNever, kAlways, kAuto };

// Below this fraction of zero weights nothing is packed or timed (the dense int8 kernels win on
// every shape measured in native/bench/s8-sparse-bench.cc).
constexpr double kFloor = 0.5;
constexpr double kProbeBudgetSeconds = 0.02;
constexpr int kProbeMaxReps = 7;

inline Mode parse(const StepContext& ctx) {
  const std::string text = ctx.choice_or("sparse", {"never", "always", "auto"}, "never");
  return text == "always" ? Mode::kAlways : text == "auto" ? Mode::kAuto : Mode::kNever;
}

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

// Best-of times of dense() and sparse(), run alternately (one warm-up each, then up to
// kProbeMaxReps within about kProbeBudgetSeconds): true when sparse is faster.
template <typename Dense, typename Sparse>
bool sparse_is_faster(Dense&& dense, Sparse&& sparse) {
  using Clock = std::chrono::steady_clock;
  auto time = [](auto& fn) {
    const auto t0 = Clock::now();
    fn();
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  time(dense);
  time(sparse);
  double d = time(dense), s = time(sparse);
  const double pair = d + s;
  const int reps = pair <= 0 ? kProbeMaxReps : static_cast<int>(std::min<double>(kProbeMaxReps, kProbeBudgetSeconds / pair));
  for (int r = 1; r < reps; ++r) {
    d = std::min(d, time(dense));
    s = std::min(s, time(sparse));
  }
  return s < d;
}

// Deterministic synthetic uint8 input for the probes.
inline void fill_probe(uint8_t* p, size_t n) {
  uint32_t state = 0x9e3779b9u;
  for (size_t i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    p[i] = static_cast<uint8_t>(state >> 24);
  }
}

}  // namespace s8_sparse_choice
}  // namespace runtime
}  // namespace kiln
