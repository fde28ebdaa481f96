// Which taps of a pooling window land inside a range, and how planes are shared out.
#pragma once
#include <algorithm>
#include <cstddef>

#include "kiln/pool.h"
#include "kiln/thread-pool.h"

namespace kiln {

// Taps k in [lo, hi) of a window starting at `start` (position start + k * dilation) that fall in
// [begin, end). Taps are evenly spaced, so the ones inside form one contiguous run.
struct TapRange {
  size_t lo, hi;
  size_t count() const { return hi - lo; }
};

inline TapRange taps_within(ptrdiff_t start, size_t kernel, size_t dilation, ptrdiff_t begin, ptrdiff_t end) {
  const ptrdiff_t d = static_cast<ptrdiff_t>(dilation);
  const ptrdiff_t k = static_cast<ptrdiff_t>(kernel);
  const ptrdiff_t lo = start >= begin ? 0 : (begin - start + d - 1) / d;
  const ptrdiff_t hi = end - 1 - start < 0 ? 0 : (end - 1 - start) / d + 1;
  const ptrdiff_t clo = std::min(lo, k);
  const ptrdiff_t chi = std::max(clo, std::min(hi, k));
  return {static_cast<size_t>(clo), static_cast<size_t>(chi)};
}

// Runs fn(plane) for every plane, a fixed number of planes per task.
template <typename Fn>
void for_each_plane(const Pool2dGeometry& g, size_t max_threads, Fn fn) {
  // Enough work per task (outputs x taps) to outweigh the hand-off; planes are independent, so
  // the split never changes results.
  const size_t per_plane = std::max<size_t>(1, g.out_plane() * g.kernel_h * g.kernel_w);
  const size_t planes_per_task = std::max<size_t>(1, (64 * 1024) / per_plane);
  const size_t tasks = (g.planes + planes_per_task - 1) / planes_per_task;
  parallel_for(
      tasks,
      [&](size_t task) {
        const size_t end = std::min(g.planes, (task + 1) * planes_per_task);
        for (size_t p = task * planes_per_task; p < end; ++p) fn(p);
      },
      max_threads);
}

}  // namespace kiln
