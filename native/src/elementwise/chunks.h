// Splitting elementwise work into fixed-size pieces for the thread pool.
#pragma once
#include <algorithm>
#include <cstddef>

#include "kiln/thread-pool.h"

namespace kiln {

// Runs fn(begin, end) over [0, length) in pieces of `piece` elements (the last may be shorter).
// Each element is handled by one call, so results never depend on the thread count.
template <typename Fn>
void for_each_piece(size_t length, size_t piece, size_t max_threads, Fn fn) {
  if (length == 0) return;
  const size_t tasks = (length + piece - 1) / piece;
  if (tasks == 1) {
    fn(size_t{0}, length);
    return;
  }
  parallel_for(
      tasks, [&](size_t t) { fn(t * piece, std::min(length, (t + 1) * piece)); }, max_threads);
}

// Elements per task for streaming kernels: large enough that the hand-off cost is noise. A helper
// that has gone to sleep takes 10-150 us to join on a small VM, so a piece is ~10 us of work or
// more (SeedCNN's int8 input quantize at batch 64, 50K floats in ~9 us, took 24 us split in two).
constexpr size_t kStreamPiece = 64 * 1024;

}  // namespace kiln
