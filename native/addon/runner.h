// The threads that run the addon's async jobs, in place of libuv's pool.
//
// Why not libuv's: its four threads take turns, so each run of a plan started on a different
// thread, and the scheduler often woke that thread on the core where the kernel pool's helper
// was already running while the other core idled (this VM describes no shared cache, so wake-up
// placement does not look for an idle core). SeedCNN at batch 64 on 2 threads took the 1-thread
// time (1.25-1.3 ms) through libuv and 0.67-0.69 ms with UV_THREADPOOL_SIZE=1.
//
// Here a job goes to the lowest-numbered idle runner, so runs one after another all land on
// runner 0 and keep their core; runs in flight at the same time spread over the others (one per
// hardware thread), as they did over libuv's. A runner polls for its next job for a short while
// after each one, so back-to-back runs skip the kernel wake-up.
#pragma once
#include <chrono>
#include <cstddef>
#include <functional>

namespace kiln_addon {

// Runs `job` on a runner thread. `job` must not throw and must not call N-API. Returns true when a
// runner still polling after its last job took it (it starts within microseconds), false when one
// must be woken first or every runner is busy (the job then waits for the first to finish).
bool run_on_runner(std::function<void()> job);

// Called from inside a job: the runner sleeps as soon as this job ends instead of polling for the
// next one. For jobs whose caller shares the cores with busy threads (a server's event loop) and
// would rather give them the CPU than save the next job the wake-up.
void sleep_after_this_job();

// For tests: an idle runner's polling window (0 restores the default), so that a test can tell a
// runner sent to sleep from one whose window ran out; and how many runners poll now.
void set_runner_poll_window_for_testing(std::chrono::microseconds window);
size_t polling_runners();

}  // namespace kiln_addon
