// Splitting elementwise work into fixed-size chunks over the thread pool (never by thread count,
// so results do not depend on it; small work stays on the calling thread).
#pragma once
#include <algorithm>
#include <cstddef>

#include "kiln/thread-pool.h"

namespace kiln {
namespace runtime {

// Fewer chunks than this run on the calling thread.
constexpr size_t kMinParallelChunks = 4;

// Calls fn(begin, end) over [0, total) in chunks of about `grain` items.
template <typename Fn>
void for_chunks(size_t total, size_t grain, size_t max_threads, const Fn& fn) {
  if (total == 0) return;
  if (grain == 0) grain = 1;
  const size_t chunks = (total + grain - 1) / grain;
  // Waking a helper costs microseconds: worth it only for several chunks of work.
  if (chunks < kMinParallelChunks || max_threads == 1) {
    fn(size_t{0}, total);
    return;
  }
  parallel_for(
      chunks,
      [&](size_t c) {
        const size_t begin = c * grain;
        fn(begin, std::min(total, begin + grain));
      },
      max_threads);
}

// Elements per chunk of cheap elementwise work (~16K floats: tens of microseconds).
constexpr size_t kElementwiseGrain = 16384;

}  // namespace runtime
}  // namespace kiln
