// Scratch arenas for plan runs: one per run in flight, kept in a small pool so steady-state runs
// allocate nothing. An arena only grows (a bigger batch than any before). The pool holds at most as
// many arenas as runs were ever in flight at once (bounded by the threads that run them), and a run
// takes the smallest idle arena that fits, so one big batch grows one arena, not whichever was idle.
#pragma once
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "kiln/f32-gemm.h"  // AlignedFloats

namespace kiln {
namespace runtime {

struct Arena {
  AlignedFloats floats;              // value storage, then step scratch
  std::vector<float*> storage;       // per storage group, for the current run
  std::vector<const float*> in_ptrs; // per step, reused
  std::vector<float*> out_ptrs;
};

class ArenaPool {
 public:
  // An arena of at least `floats` floats and `groups` storage slots.
  std::unique_ptr<Arena> acquire(size_t floats, size_t groups, size_t max_arity);
  void release(std::unique_ptr<Arena> arena);
  // Bytes of every arena the pool made that is still alive, idle or leased: memory a plan keeps
  // between runs, which a caller watching its process's memory needs to tell apart from a leak.
  size_t held_bytes() const;

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<Arena>> free_;
  std::atomic<size_t> held_bytes_{0};
};

// Returns the arena to its pool when the run ends, exceptions included.
class ArenaLease {
 public:
  ArenaLease(ArenaPool& pool, size_t floats, size_t groups, size_t max_arity)
      : pool_(pool), arena_(pool.acquire(floats, groups, max_arity)) {}
  ~ArenaLease() { pool_.release(std::move(arena_)); }
  ArenaLease(const ArenaLease&) = delete;
  ArenaLease& operator=(const ArenaLease&) = delete;
  Arena& operator*() const { return *arena_; }
  Arena* operator->() const { return arena_.get(); }

 private:
  ArenaPool& pool_;
  std::unique_ptr<Arena> arena_;
};

}  // namespace runtime
}  // namespace kiln
