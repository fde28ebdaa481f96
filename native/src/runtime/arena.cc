#include "runtime/arena.h"

namespace kiln {
namespace runtime {

std::unique_ptr<Arena> ArenaPool::acquire(size_t floats, size_t groups, size_t max_arity) {
  std::unique_ptr<Arena> arena;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!free_.empty()) {
      arena = std::move(free_.back());
      free_.pop_back();
    }
  }
  if (!arena) arena = std::make_unique<Arena>();
  if (arena->floats.size() < floats) {
    // Content is scratch: drop the old buffer first so peak memory is not old + new.
    AlignedFloats().swap(arena->floats);
    arena->floats.resize(floats);
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

}  // namespace runtime
}  // namespace kiln
