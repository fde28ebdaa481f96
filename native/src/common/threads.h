// Thread-count helper shared by the kernel drivers.
#pragma once

#include <algorithm>
#include <cstddef>

#include "kiln/thread-pool.h"

namespace kiln {

// The threads a call may use: its `max_threads` argument (0 = no limit) capped at the pool size.
inline size_t resolve_threads(size_t max_threads) {
  return max_threads == 0 ? num_threads() : std::min(max_threads, num_threads());
}

}  // namespace kiln
