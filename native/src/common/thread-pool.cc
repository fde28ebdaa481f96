#include "kiln/thread-pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#ifdef __linux__
#include <sched.h>
#endif

namespace kiln {
namespace {

using SlotFn = std::function<void(size_t task, size_t slot)>;

// How long a thread polls before it sleeps on a condition variable: a worker after finishing a
// loop (the next loop of the same run, or the next run, should come within this), the caller
// while the helpers finish. Waking a sleeping thread costs 5-20 us through the kernel, as much as
// a whole small step (SeedCNN at batch 8 runs 6 steps of ~40 us), and more on a VM whose idle
// vCPU the hypervisor halted. 1 ms covers the JavaScript turn between two awaited runs: at 100 us
// the helpers slept between runs whenever another runtime shared the process, and a batch-1 run
// on 2 threads took 5.7 ms instead of 4.4 (MobileNetV3-Large, interleaved with onnxruntime-node,
// which spins its own pool for ~30 ms after a run). Between polls the thread yields: on a machine
// with more runnable threads than cores, the thread it waits for may be the one that needs this
// core.
constexpr auto kSpin = std::chrono::microseconds(1000);
std::atomic<int64_t> g_spin_us{kSpin.count()};  // kSpin unless a test sets another

// Polls `done` until it holds, kSpin has passed or `give_up` holds; returns whether `done` holds.
template <typename Done, typename GiveUp>
bool spin_until(const Done& done, const GiveUp& give_up) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(g_spin_us.load(std::memory_order_relaxed));
  for (;;) {
    if (done()) return true;
    if (give_up()) return done();
    std::this_thread::yield();
    if (std::chrono::steady_clock::now() >= deadline) return done();
  }
}

template <typename Done>
bool spin_until(const Done& done) {
  return spin_until(done, [] { return false; });
}

int current_cpu() {
#ifdef __linux__
  return sched_getcpu();
#else
  return -1;
#endif
}

// Moves the calling thread to another CPU it may run on, leaving its allowed set as it was. Used
// by a helper that finds itself on the caller's CPU when it joins a loop: on VMs that describe no
// shared cache (this Firecracker guest has none), Linux's wake-up placement looks for an idle CPU
// only within the waker's cache domain, so a woken helper can be queued behind the caller on one
// core while the other idles, until load balancing separates them: SeedCNN b64 on 2 threads ran
// at the 1-thread time for its first ~1.5 s (1.20-1.21 ms, then 0.61-0.63 ms); with this, 0.60-0.64
// ms from the start.
void move_off_cpu(int cpu) {
#ifdef __linux__
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || !CPU_ISSET(cpu, &allowed) || CPU_COUNT(&allowed) < 2) return;
  cpu_set_t others = allowed;
  CPU_CLR(cpu, &others);
  // Restricting migrates the thread at once; restoring does not move it back.
  if (sched_setaffinity(0, sizeof others, &others) == 0) sched_setaffinity(0, sizeof allowed, &allowed);
#else
  (void)cpu;
#endif
}

size_t hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

// A loop's tasks are dealt out in contiguous ranges, one per thread taking part, so that task i
// (image i of a batch) runs on the same thread in every step of a plan: the activations it wrote
// in one step are still in that core's cache for the next. Moving them costs more than it seems:
// the two cores of a cloud VM may sit on different chiplets (a cache-line round trip measured
// ~570 ns here), and handing out tasks from one shared counter made SeedCNN's per-image work 19%
// slower at 2 threads than at 1. A thread that runs out of its own range takes single tasks from
// the back of another's, so a helper that wakes late (or never gets a core) delays nothing: the
// caller takes its range over.
//
// The caller waits only for helpers that joined the loop, not for every helper: joining is a
// compare-exchange on state_ that names the loop and whether it is still open, so a helper that
// wakes after the loop was closed finds another loop id or a closed one and keeps out.
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
    ranges_ = std::vector<Range>(n);
    // Each worker starts from the loop id current now (no loop runs while run_mutex_ is held):
    // reading it later, in the thread, could miss the first loop.
    const uint64_t seen = loop_id_;
    for (size_t i = 0; i + 1 < n; ++i) workers_.emplace_back([this, i, seen] { worker_loop(i + 1, seen); });
    size_.store(workers_.size() + 1);
  }

  // fn(task, slot): slot 0 on the calling thread, worker i runs as slot i + 1.
  void run(size_t tasks, const SlotFn& fn, size_t max_threads) {
    if (tasks == 0) return;
    std::unique_lock<std::mutex> run_lock(run_mutex_, std::try_to_lock);
    size_t helpers = run_lock.owns_lock() ? workers_.size() : 0;
    if (max_threads != 0) helpers = std::min(helpers, max_threads - 1);
    helpers = std::min(helpers, tasks - 1);
    if (helpers == 0 || tasks > kMaxTasks) {
      for (size_t t = 0; t < tasks; ++t) fn(t, 0);
      return;
    }
    const size_t parts = helpers + 1;
    for (size_t s = 0; s < parts; ++s) ranges_[s].next.store(pack(s * tasks / parts, (s + 1) * tasks / parts));
    fn_ = &fn;
    parts_.store(parts, std::memory_order_relaxed);
    loop_id_ = (loop_id_ + 1) & kIdMask;
    // seq_cst, paired with the sleepers_ count (see worker_loop); publishes the ranges and fn_.
    caller_cpu_.store(current_cpu(), std::memory_order_relaxed);
    state_.store(loop_id_ << 32 | kOpen);
    if (sleepers_.load() > 0) {
      { std::lock_guard<std::mutex> lock(mutex_); }
      wake_cv_.notify_all();
    }
    work(0);
    // Every task is taken now. Close the loop to latecomers, then wait for the helpers inside it to
    // finish the tasks they hold.
    const uint64_t joined = state_.fetch_and(~kOpen) & kCountMask;
    const auto all_left = [this] { return (state_.load() & kCountMask) == 0; };
    if (joined != 0 && !spin_until(all_left)) {
      std::unique_lock<std::mutex> lock(mutex_);
      caller_sleeping_ = true;
      left_cv_.wait(lock, all_left);
      caller_sleeping_ = false;
    }
  }

  // Helpers that last saw this loop id stop polling (see park_helpers in the header): the next
  // loop has another id, so it cannot cut short the polling that follows it.
  void park() { parked_id_.store(state_.load() >> 32, std::memory_order_relaxed); }
  size_t sleepers() const { return sleepers_.load(); }

 private:
  // state_: loop id (high 32 bits), open flag, number of helpers inside the loop.
  static constexpr uint64_t kIdMask = 0xffffffffu;
  static constexpr uint64_t kOpen = uint64_t(1) << 31;
  static constexpr uint64_t kCountMask = kOpen - 1;
  // A range is [begin, end) packed into one word (32 bits each).
  static constexpr size_t kMaxTasks = 0xffffffffu;
  static uint64_t pack(uint64_t begin, uint64_t end) { return begin << 32 | end; }

  struct alignas(64) Range {
    std::atomic<uint64_t> next{0};
  };

  // Takes a task from the front of range r (its owner) or the back (a thief); false once empty.
  bool take(Range& r, bool front, size_t& task) {
    uint64_t cur = r.next.load();
    for (;;) {
      const uint64_t begin = cur >> 32, end = cur & kIdMask;
      if (begin >= end) return false;
      const uint64_t next = front ? pack(begin + 1, end) : pack(begin, end - 1);
      if (r.next.compare_exchange_weak(cur, next)) {
        task = front ? begin : end - 1;
        return true;
      }
    }
  }

  // Runs the own range of `slot`, then tasks from the back of the others' until all are empty.
  void work(size_t slot) {
    const SlotFn& fn = *fn_;
    size_t task;
    while (take(ranges_[slot], true, task)) fn(task, slot);
    const size_t parts = parts_.load(std::memory_order_relaxed);
    for (size_t i = 1; i < parts; ++i) {
      Range& victim = ranges_[(slot + i) % parts];
      while (take(victim, false, task)) fn(task, slot);
    }
  }

  void worker_loop(size_t slot, uint64_t seen) {
    const auto has_news = [&] { return (state_.load() >> 32) != seen || stopping_.load(); };
    const auto parked = [&] { return parked_id_.load(std::memory_order_relaxed) == seen; };
    for (;;) {
      if (!spin_until(has_news, parked)) {
        std::unique_lock<std::mutex> lock(mutex_);
        // Counted before the condition is checked under the lock: run() publishes the loop and then
        // reads sleepers_ (both seq_cst), so either it sees this thread and notifies, or this
        // thread's check sees the loop.
        sleepers_.fetch_add(1);
        wake_cv_.wait(lock, has_news);
        sleepers_.fetch_sub(1);
      }
      if (stopping_.load()) return;
      uint64_t cur = state_.load();
      seen = cur >> 32;
      // Join only an open loop (a failed exchange means another helper joined or the loop closed:
      // look again). parts_ is read first only as a hint; once joined, the loop's fields are
      // stable, because the caller waits for every joined helper to leave before the next loop.
      bool joined = false;
      while ((cur >> 32) == seen && (cur & kOpen) != 0 && slot < parts_.load(std::memory_order_relaxed)) {
        if (state_.compare_exchange_weak(cur, cur + 1)) {
          joined = true;
          break;
        }
      }
      if (!joined) continue;
      // Joined, so slot < parts_ (checked above, and stable now).
      const int caller_cpu = caller_cpu_.load(std::memory_order_relaxed);
      if (caller_cpu >= 0 && current_cpu() == caller_cpu) move_off_cpu(caller_cpu);
      work(slot);
      if ((state_.fetch_sub(1) & kCountMask) == 1) {
        // Last one out: the caller may be asleep (after its polling window).
        std::lock_guard<std::mutex> lock(mutex_);
        if (caller_sleeping_) left_cv_.notify_one();
      }
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_.store(true);
    }
    wake_cv_.notify_all();
    for (std::thread& w : workers_) w.join();
    workers_.clear();
  }

  std::mutex run_mutex_;  // one parallel loop at a time
  std::mutex mutex_;      // only for sleeping and waking
  std::condition_variable wake_cv_, left_cv_;
  bool caller_sleeping_ = false;  // under mutex_
  std::vector<std::thread> workers_;
  std::vector<Range> ranges_;
  // Loop parameters, written by the caller before it publishes the loop in state_.
  const SlotFn* fn_ = nullptr;
  std::atomic<size_t> parts_{0};
  uint64_t loop_id_ = 0;
  std::atomic<int> caller_cpu_{-1};
  alignas(64) std::atomic<uint64_t> state_{0};
  alignas(64) std::atomic<size_t> sleepers_{0};
  std::atomic<uint64_t> parked_id_{~uint64_t(0)};  // not a loop id (those fit in 32 bits)
  std::atomic<size_t> size_{1};
  std::atomic<bool> stopping_{false};
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
void park_helpers() { pool().park(); }
void set_poll_window_for_testing(std::chrono::microseconds window) { g_spin_us.store(window.count() > 0 ? window.count() : kSpin.count()); }
size_t sleeping_helpers() { return pool().sleepers(); }

}  // namespace kiln
