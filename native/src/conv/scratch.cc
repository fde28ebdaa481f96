#include "conv/scratch.h"

#include <algorithm>
#include <mutex>
#include <utility>
#include <vector>

namespace kiln {
namespace {

// At most this many idle buffers are kept: enough for a few calls in flight at once.
constexpr size_t kMaxIdle = 4;

struct FreeList {
  std::mutex mutex;
  std::vector<std::pair<size_t, std::unique_ptr<float[]>>> idle;
};

FreeList& free_list() {
  static FreeList* list = new FreeList();  // never destroyed: buffers may be returned at exit
  return *list;
}

}  // namespace

ScratchBuffer::ScratchBuffer(size_t floats) {
  FreeList& list = free_list();
  {
    std::lock_guard<std::mutex> lock(list.mutex);
    // The smallest idle buffer that is large enough.
    size_t best = list.idle.size();
    for (size_t i = 0; i < list.idle.size(); ++i) {
      if (list.idle[i].first >= floats && (best == list.idle.size() || list.idle[i].first < list.idle[best].first)) best = i;
    }
    if (best != list.idle.size()) {
      capacity_ = list.idle[best].first;
      data_ = std::move(list.idle[best].second);
      list.idle.erase(list.idle.begin() + static_cast<ptrdiff_t>(best));
      return;
    }
  }
  capacity_ = std::max<size_t>(floats, 1);
  data_.reset(new float[capacity_]);
}

ScratchBuffer::~ScratchBuffer() {
  if (!data_) return;
  FreeList& list = free_list();
  std::lock_guard<std::mutex> lock(list.mutex);
  list.idle.emplace_back(capacity_, std::move(data_));
  if (list.idle.size() > kMaxIdle) {
    // Drop the smallest: the large ones are the expensive ones to fault in again.
    auto smallest = std::min_element(list.idle.begin(), list.idle.end(),
                                     [](const auto& a, const auto& b) { return a.first < b.first; });
    list.idle.erase(smallest);
  }
}

}  // namespace kiln
