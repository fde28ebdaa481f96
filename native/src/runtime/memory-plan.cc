#include "runtime/memory-plan.h"

#include <algorithm>
#include <numeric>

namespace kiln {
namespace runtime {

size_t place_buffers(const std::vector<BufferLifetime>& buffers, std::vector<size_t>* offsets) {
  const size_t n = buffers.size();
  offsets->assign(n, 0);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return buffers[a].size > buffers[b].size; });
  std::vector<size_t> placed;
  size_t total = 0;
  for (size_t idx : order) {
    const BufferLifetime& b = buffers[idx];
    // Intervals taken by already placed buffers alive at the same time, sorted by offset.
    std::vector<std::pair<size_t, size_t>> busy;
    for (size_t p : placed) {
      const BufferLifetime& q = buffers[p];
      if (q.last < b.first || b.last < q.first) continue;
      busy.emplace_back((*offsets)[p], (*offsets)[p] + q.size);
    }
    std::sort(busy.begin(), busy.end());
    size_t offset = 0;
    for (const auto& iv : busy) {
      if (iv.first >= offset + b.size) break;  // fits in the gap before this interval
      offset = std::max(offset, iv.second);
    }
    (*offsets)[idx] = offset;
    total = std::max(total, offset + b.size);
    placed.push_back(idx);
  }
  return total;
}

}  // namespace runtime
}  // namespace kiln
