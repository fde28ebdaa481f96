// kiln::parallel_for without Node: every task runs exactly once, and its writes are visible to the
// caller when the loop returns, across back-to-back loops (the helpers still polling from the last
// one), loops after a pause long enough for them to sleep, varying task and thread counts, resizes,
// loops whose caller is held up in its first task (the helpers must take over its range), and
// loops started from two threads at once (one of them runs its loop alone), and park_helpers
// (helpers polling after a loop sleep at once; the next loop wakes them and they poll again).
// Prints "N passed, N failed"; exit code 1 on failure.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "kiln/thread-pool.h"

#include "check.h"

namespace {

using kiln_test::check;

// Runs `loops` loops of `tasks` tasks; each task writes its loop number into its own slot (plain
// stores: the caller reads them after the join). Returns whether every slot held the loop number.
bool run_loops(size_t loops, size_t tasks, size_t max_threads, std::chrono::microseconds pause) {
  std::vector<size_t> slots(tasks, 0);
  std::vector<std::atomic<int>> runs(tasks);
  bool ok = true;
  for (size_t loop = 1; loop <= loops; ++loop) {
    for (auto& r : runs) r.store(0);
    kiln::parallel_for(tasks, [&](size_t t) { slots[t] = loop; runs[t].fetch_add(1); }, max_threads);
    for (size_t t = 0; t < tasks; ++t) ok = ok && slots[t] == loop && runs[t].load() == 1;
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
  }
  return ok;
}

}  // namespace

int main() {
  using std::chrono::microseconds;
  for (size_t threads : {2, 3, 1, 4}) {
    kiln::set_num_threads(threads);
    check(kiln::num_threads() == threads, "num_threads after set_num_threads(" + std::to_string(threads) + ")");
    for (size_t tasks : {1, 2, 3, 7, 64}) {
      for (size_t max_threads : {0, 1, 2}) {
        const std::string what = "threads " + std::to_string(threads) + " tasks " + std::to_string(tasks) +
                                 " max_threads " + std::to_string(max_threads);
        check(run_loops(2000, tasks, max_threads, microseconds(0)), what + ", back to back");
        // Past the polling window: the helpers sleep and must be woken.
        check(run_loops(20, tasks, max_threads, microseconds(400)), what + ", helpers asleep");
      }
    }
  }
  // Stealing: the caller's first task waits until every other task has run, so the helper must
  // take the rest of the caller's range (from its back) as well as its own.
  for (size_t threads : {2, 3}) {
    kiln::set_num_threads(threads);
    for (int round = 0; round < 50; ++round) {
      constexpr size_t kTasks = 9;
      std::vector<std::atomic<int>> runs(kTasks);
      std::atomic<size_t> others{0};
      bool stolen = true;
      kiln::parallel_for(kTasks, [&](size_t t) {
        if (t == 0) {
          const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
          while (others.load() < kTasks - 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
          stolen = others.load() == kTasks - 1;
        } else {
          others.fetch_add(1);
        }
        runs[t].fetch_add(1);
      });
      bool once = true;
      for (auto& r : runs) once = once && r.load() == 1;
      check(stolen && once, "threads " + std::to_string(threads) + ": helpers take the tasks of a busy caller's range");
    }
  }

  // Two callers at once: whoever finds the pool busy runs its loop alone; both must complete.
  kiln::set_num_threads(2);
  bool a = false, b = false;
  std::thread other([&] { a = run_loops(3000, 5, 0, microseconds(0)); });
  b = run_loops(3000, 5, 0, microseconds(0));
  other.join();
  check(a && b, "two callers at once");

  // park_helpers, with a polling window long enough (60 s) that only parking can put a helper to
  // sleep within the test's bounded waits.
  const auto wait_for = [](const auto& cond) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!cond() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return cond();
  };
  kiln::set_num_threads(3);
  kiln::set_poll_window_for_testing(std::chrono::seconds(60));
  // A loop wakes the helpers (they were asleep since the resize or the last window).
  check(run_loops(3, 64, 0, microseconds(0)), "loops before parking");
  check(wait_for([] { return kiln::sleeping_helpers() == 0; }), "helpers poll after a loop (long window)");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  check(kiln::sleeping_helpers() == 0, "helpers still poll 20 ms after a loop (long window)");
  kiln::park_helpers();
  check(wait_for([] { return kiln::sleeping_helpers() == 2; }), "park_helpers sends both polling helpers to sleep");
  check(run_loops(200, 64, 0, microseconds(0)), "loops after parking");
  check(wait_for([] { return kiln::sleeping_helpers() == 0; }), "after a new loop the helpers poll again");
  for (int round = 0; round < 200; ++round) {
    check(run_loops(1, 7, 0, microseconds(0)), "loop then park, round " + std::to_string(round));
    kiln::park_helpers();
  }
  check(wait_for([] { return kiln::sleeping_helpers() == 2; }), "parked after each of 200 loops: all asleep");
  kiln::set_poll_window_for_testing(microseconds(0));
  return kiln_test::finish();
}
