#include "runner.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln_addon {
namespace {

// How long an idle runner polls before it sleeps: the next run of a loop over a session comes
// ~30-60 us after the last one ended (promise resolution and the caller's next call) in a quiet
// process, several hundred us when other work shares the event loop; the kernel pool's helpers
// poll as long (common/thread-pool.cc, kSpin).
constexpr auto kPoll = std::chrono::microseconds(1000);

std::atomic<int64_t> g_poll_us{kPoll.count()};  // kPoll unless a test sets another

// Set by the job running on this thread (sleep_after_this_job).
thread_local bool t_sleep_after_job = false;

class Runners {
 public:
  Runners() {
    const unsigned n = std::thread::hardware_concurrency();
    slots_ = std::vector<Slot>(n == 0 ? 1 : n);
    // Started on first use, never joined: the process may exit with a runner asleep.
    for (size_t i = 0; i < slots_.size(); ++i) std::thread([this, i] { loop(i); }).detach();
  }

  bool submit(std::function<void()> job) {
    std::unique_lock<std::mutex> lock(mutex_);
    for (Slot& s : slots_) {
      if (s.busy) continue;
      s.busy = true;
      s.job = std::move(job);
      s.ready.store(true, std::memory_order_release);
      const bool polling = s.polling.load(std::memory_order_acquire);
      lock.unlock();
      s.cv.notify_one();
      return polling;
    }
    backlog_.push_back(std::move(job));  // every runner busy: the first to finish takes it
    return false;
  }

  size_t polling() const {
    size_t n = 0;
    for (const Slot& s : slots_) n += s.polling.load() ? 1 : 0;
    return n;
  }

 private:
  struct Slot {
    bool busy = false;  // under mutex_: a job is assigned or running
    std::function<void()> job;
    std::atomic<bool> ready{false};
    std::atomic<bool> polling{false};  // in the poll loop (a job given now starts at once)
    std::condition_variable cv;
  };

  void loop(size_t i) {
    Slot& s = slots_[i];
    bool poll = true;
    for (;;) {
      if (poll) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(g_poll_us.load(std::memory_order_relaxed));
        s.polling.store(true, std::memory_order_release);
        while (!s.ready.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < deadline) {
          std::this_thread::yield();
        }
        s.polling.store(false, std::memory_order_release);
      }
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        s.cv.wait(lock, [&] { return s.ready.load(); });
        job = std::move(s.job);
        s.ready.store(false);
      }
      for (;;) {
        t_sleep_after_job = false;
        job();
        poll = !t_sleep_after_job;
        std::lock_guard<std::mutex> lock(mutex_);
        if (backlog_.empty()) {
          s.busy = false;
          break;
        }
        job = std::move(backlog_.front());
        backlog_.pop_front();
      }
    }
  }

  std::mutex mutex_;
  std::vector<Slot> slots_;
  std::deque<std::function<void()>> backlog_;
};

Runners& runners() {
  static Runners* r = new Runners();  // never destroyed, like the kernel pool
  return *r;
}

}  // namespace

bool run_on_runner(std::function<void()> job) { return runners().submit(std::move(job)); }
void sleep_after_this_job() { t_sleep_after_job = true; }
void set_runner_poll_window_for_testing(std::chrono::microseconds window) { g_poll_us.store(window.count() > 0 ? window.count() : kPoll.count()); }
size_t polling_runners() { return runners().polling(); }

}  // namespace kiln_addon
