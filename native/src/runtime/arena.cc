#include "runtime/arena.h"

namespace kiln {
namespace runtime {

std::unique_ptr<Arena> ArenaPool::acquire(size_t floats, size_t groups, size_t max_arity) {
  std::unique_ptr<Arena> arena;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Smallest idle arena that fits; when none does, the largest (it grows the least).
    size_t pick = 0;
    for (size_t i = 1; i < free_.size(); ++i) {
      const size_t have = free_[i]->floats.size(), best = free_[pick]->floats.size();
      if (best >= floats ? have >= floats && have < best : have > best) pick = i;
    }
    if (!free_.empty()) {
      arena = std::move(free_[pick]);
      free_[pick] = std::move(free_.back());
      free_.pop_back();
    }
  }
  if (!arena) arena = std::make_unique<Arena>();
  if (arena->floats.size() < floats) {
    const size_t before = arena->floats.size();
    // Content is scratch: drop the old buffer first so peak memory is not old + new.
    AlignedFloats().swap(arena->floats);
    held_bytes_ -= before * sizeof(float);
    arena->floats.resize(floats);
    held_bytes_ += floats * sizeof(float);
  }
  if (arena->storage.size() < groups) arena->storage.resize(groups);
  if (arena->in_ptrs.size() < max_arity) {
    arena->in_ptrs.resize(max_arity);
    arena->out_ptrs.resize(max_arity);
  }
  return arena;
}

void ArenaPool::release(std::unique_ptr<Arena> arena) {
  if (!arena) return;
  std::lock_guard<std::mutex> lock(mutex_);
  free_.push_back(std::move(arena));
}

size_t ArenaPool::held_bytes() const { return held_bytes_.load(std::memory_order_relaxed); }

}  // namespace runtime
}  // namespace kiln
