// sparseKernels 'auto': which of sparse and dense ran faster for a layer, measured once when a plan
// is built, remembered for the rest of the process. The key holds everything the measurement
// depends on (the op with its geometry and fused epilogue, the ISA table, a hash of the weights),
// so a second session on the same model (another worker, or a re-plan for a new input shape)
// reuses the answer instead of timing again; a different CPU path or different weights time anew.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace kiln {
namespace runtime {

// 64-bit hash of `bytes` bytes (not cryptographic: it tells models apart, nothing more).
uint64_t hash_bytes(const void* data, size_t bytes, uint64_t seed = 0);

// `measure()`'s answer for `key`, timed on the first call and remembered (thread-safe; the
// remembered set is bounded, the oldest answers are dropped first).
bool cached_sparse_choice(const std::string& key, const std::function<bool()>& measure);

// How many times cached_sparse_choice has called `measure` in this process (for tests).
size_t sparse_choice_measurements();

// The probes' bounds: about this long per layer (at least one timed run each, even when a very
// large layer takes longer), at most this many timed runs each.
constexpr double kSparseProbeBudgetSeconds = 0.02;
constexpr int kSparseProbeMaxReps = 7;

// Times dense() and sparse(), run alternately on the calling thread: one warm-up run each (caches
// and pages), then the best of up to kSparseProbeMaxReps runs each within about
// kSparseProbeBudgetSeconds. True when sparse is faster.
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
  const int reps = pair <= 0 ? kSparseProbeMaxReps
                             : static_cast<int>(std::min<double>(kSparseProbeMaxReps, kSparseProbeBudgetSeconds / pair));
  for (int r = 1; r < reps; ++r) {
    d = std::min(d, time(dense));
    s = std::min(s, time(sparse));
  }
  return s < d;
}

// Deterministic synthetic input for the probes: floats in [-1, 1), or uint8 codes.
inline void fill_probe(float* p, size_t n) {
  uint32_t state = 0x9e3779b9u;
  for (size_t i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    p[i] = static_cast<float>(state >> 8) / 8388608.0f - 1.0f;
  }
}
inline void fill_probe(uint8_t* p, size_t n) {
  uint32_t state = 0x9e3779b9u;
  for (size_t i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    p[i] = static_cast<uint8_t>(state >> 24);
  }
}

}  // namespace runtime
}  // namespace kiln
