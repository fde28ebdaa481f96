// ArgMax / ArgMin over one axis of a [outer][count][inner] block: the scalar kernel (ArgMax ends a
// classification head once per image; it is not a hot path, so there is no per-ISA variant).
// Comparisons follow onnxruntime (Eigen's visitor and its select_last_index loop): a candidate
// replaces the best only when it compares strictly better (or equal, for the last index), so a
// NaN is never chosen unless it stands first, and a NaN first is never replaced.
#pragma once
#include <cstddef>

namespace kiln {

// out[o * inner + i] = index r < count of the best x[(o * count + r) * inner + i], as float (the
// caller keeps count below 2^24 so every index is exact).
inline void arg_reduce_ref(const float* x, size_t outer, size_t count, size_t inner, bool max, bool last, float* out) {
  for (size_t o = 0; o < outer; ++o) {
    const float* block = x + o * count * inner;
    for (size_t i = 0; i < inner; ++i) {
      float best = block[i];
      size_t at = 0;
      for (size_t r = 1; r < count; ++r) {
        const float v = block[r * inner + i];
        const bool better = max ? (last ? v >= best : v > best) : (last ? v <= best : v < best);
        if (better) {
          best = v;
          at = r;
        }
      }
      out[o * inner + i] = static_cast<float>(at);
    }
  }
}

}  // namespace kiln
