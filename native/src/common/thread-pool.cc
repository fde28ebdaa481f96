#include "kiln/thread-pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln {
namespace {

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
    stopping_ = false;
    // Each worker starts from the generation current now (no loop runs while run_mutex_ is held):
    // reading it later, in the thread, could miss the first loop and wait forever.
    const size_t generation = generation_;
    for (size_t i = 0; i + 1 < n; ++i) workers_.emplace_back([this, i, generation] { worker_loop(i, generation); });
    size_.store(workers_.size() + 1);
  }

  void run(size_t tasks, const std::function<void(size_t)>& fn, size_t max_threads) {
    if (tasks == 0) return;
    std::unique_lock<std::mutex> run_lock(run_mutex_, std::try_to_lock);
    size_t helpers = run_lock.owns_lock() ? workers_.size() : 0;
    if (max_threads != 0) helpers = std::min(helpers, max_threads - 1);
    helpers = std::min(helpers, tasks - 1);
    if (helpers == 0) {
      for (size_t t = 0; t < tasks; ++t) fn(t);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn_ = &fn;
      tasks_ = tasks;
      next_.store(0);
      active_helpers_ = helpers;
      pending_ = helpers;
      ++generation_;
    }
    cv_.notify_all();
    drain();
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [this] { return pending_ == 0; });
    fn_ = nullptr;
  }

 private:
  void drain() {
    const std::function<void(size_t)>& fn = *fn_;
    for (;;) {
      const size_t t = next_.fetch_add(1);
      if (t >= tasks_) break;
      fn(t);
    }
  }

  void worker_loop(size_t index, size_t seen) {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stopping_ || (generation_ != seen && index < active_helpers_); });
        if (stopping_) return;
        seen = generation_;
      }
      drain();
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& w : workers_) w.join();
    workers_.clear();
  }

  std::mutex run_mutex_;  // one parallel loop at a time
  std::mutex mutex_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(size_t)>* fn_ = nullptr;
  size_t tasks_ = 0;
  std::atomic<size_t> next_{0};
  std::atomic<size_t> size_{1};
  size_t generation_ = 0, active_helpers_ = 0, pending_ = 0;
  bool stopping_ = false;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: worker threads must not be joined at exit
  return *p;
}

}  // namespace

size_t num_threads() { return pool().size(); }
void set_num_threads(size_t n) { pool().resize(n); }
void parallel_for(size_t tasks, const std::function<void(size_t)>& fn, size_t max_threads) {
  pool().run(tasks, fn, max_threads);
}

}  // namespace kiln
