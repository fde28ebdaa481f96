#include "kiln/thread-pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln {
namespace {

using SlotFn = std::function<void(size_t task, size_t slot)>;

// How long a thread polls before it sleeps on a condition variable: a worker after finishing a
// loop (the next loop of the same run, or the next run, usually comes within this), the caller
// while the helpers finish. Waking a sleeping thread costs 5-20 us through the kernel, as much as
// a whole small step (SeedCNN at batch 8 runs 6 steps of ~40 us). Between polls the thread
// yields: on a machine with more runnable threads than cores, the thread it waits for may be the
// one that needs this core.
constexpr auto kSpin = std::chrono::microseconds(100);

// Polls `done` until it holds or kSpin has passed; returns whether it holds.
template <typename Done>
bool spin_until(const Done& done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    if (done()) return true;
    std::this_thread::yield();
    if (std::chrono::steady_clock::now() >= deadline) return done();
  }
}

size_t hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

class Pool {
 public:
  Pool() { resize(hardware_threads()); }
  ~Pool() { stop_workers(); }

  // Lock-free: kernels ask for the size from inside parallel tasks, while a loop holds run_mutex_.
  size_t size() const { return size_.load(); }

  void resize(size_t n) {
    if (n == 0) n = hardware_threads();
    std::lock_guard<std::mutex> lock(run_mutex_);
    stop_workers();
    stopping_.store(false);
    // Each worker starts from the generation current now (no loop runs while run_mutex_ is held):
    // reading it later, in the thread, could miss the first loop and wait forever.
    const size_t generation = generation_.load();
    for (size_t i = 0; i + 1 < n; ++i) workers_.emplace_back([this, i, generation] { worker_loop(i, generation); });
    size_.store(workers_.size() + 1);
  }

  // fn(task, slot): slot 0 on the calling thread, worker i runs as slot i + 1.
  void run(size_t tasks, const SlotFn& fn, size_t max_threads) {
    if (tasks == 0) return;
    std::unique_lock<std::mutex> run_lock(run_mutex_, std::try_to_lock);
    size_t helpers = run_lock.owns_lock() ? workers_.size() : 0;
    if (max_threads != 0) helpers = std::min(helpers, max_threads - 1);
    helpers = std::min(helpers, tasks - 1);
    if (helpers == 0) {
      for (size_t t = 0; t < tasks; ++t) fn(t, 0);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn_ = &fn;
      tasks_ = tasks;
      next_.store(0);
      active_helpers_ = helpers;
      pending_.store(helpers);
      generation_.store(generation_.load() + 1);
    }
    cv_.notify_all();
    drain(0);
    if (!spin_until([this] { return pending_.load() == 0; })) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_cv_.wait(lock, [this] { return pending_.load() == 0; });
    }
    // The last helper may still hold mutex_ (it notifies under it): take it so that no helper is
    // inside this loop's bookkeeping when the next one starts.
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = nullptr;
  }

 private:
  void drain(size_t slot) {
    const SlotFn& fn = *fn_;
    for (;;) {
      const size_t t = next_.fetch_add(1);
      if (t >= tasks_) break;
      fn(t, slot);
    }
  }

  void worker_loop(size_t index, size_t seen) {
    for (;;) {
      // Poll without the lock first; the state itself is read under it, where run() wrote it.
      spin_until([&] { return generation_.load(std::memory_order_relaxed) != seen || stopping_.load(std::memory_order_relaxed); });
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stopping_.load() || (generation_.load() != seen && index < active_helpers_); });
        if (stopping_.load()) return;
        seen = generation_.load();
      }
      drain(index + 1);
      std::lock_guard<std::mutex> lock(mutex_);
      if (pending_.fetch_sub(1) == 1) done_cv_.notify_one();
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_.store(true);
    }
    cv_.notify_all();
    for (std::thread& w : workers_) w.join();
    workers_.clear();
  }

  std::mutex run_mutex_;  // one parallel loop at a time
  std::mutex mutex_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const SlotFn* fn_ = nullptr;
  size_t tasks_ = 0;
  std::atomic<size_t> next_{0};
  std::atomic<size_t> size_{1};
  // Atomic so that a spinning thread may poll them without mutex_; written under mutex_.
  std::atomic<size_t> generation_{0}, pending_{0};
  std::atomic<bool> stopping_{false};
  size_t active_helpers_ = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: worker threads must not be joined at exit
  return *p;
}

}  // namespace

size_t num_threads() { return pool().size(); }
void set_num_threads(size_t n) { pool().resize(n); }
void parallel_for(size_t tasks, const std::function<void(size_t)>& fn, size_t max_threads) {
  pool().run(tasks, [&fn](size_t task, size_t) { fn(task); }, max_threads);
}
void parallel_for_slots(size_t tasks, const std::function<void(size_t task, size_t slot)>& fn, size_t max_threads) {
  pool().run(tasks, fn, max_threads);
}

}  // namespace kiln
