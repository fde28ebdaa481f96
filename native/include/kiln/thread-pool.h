// A small fixed thread pool for data-parallel loops inside one kernel call.
#pragma once
#include <chrono>
#include <cstddef>
#include <functional>

namespace kiln {

// Number of threads parallel_for may use (the caller counts as one). Default: hardware cores.
size_t num_threads();
// Resize the pool. 0 means "number of hardware threads". Waits for running loops to finish.
void set_num_threads(size_t n);

// Runs fn(task) for task in [0, tasks), spread over at most max_threads threads (0 = pool size).
// Tasks must write disjoint outputs; each output is then computed by exactly one thread in a
// fixed order, so results do not depend on the thread count.
// When the pool is busy with another caller's loop (several async calls in flight), the loop runs
// on the calling thread instead of waiting: correct, never deadlocks.
void parallel_for(size_t tasks, const std::function<void(size_t task)>& fn, size_t max_threads = 0);

// parallel_for where fn also learns the slot of the thread running the task: 0 for the calling
// thread, 1..n-1 for the helpers, always < max_threads (when not 0) and < num_threads(). Threads
// running at the same time have different slots, so per-slot scratch needs no lock. Each thread
// starts on its own contiguous range of tasks (so consecutive steps over a batch keep each image
// on one core) and then takes single tasks from the others' ranges, so which slot runs a task
// depends on timing. Use it for many small tasks (one image each) that would otherwise be dealt
// out in fixed strides, where the thread with one stride more (or a preempted one) sets the time.
// Each task must still compute its output by itself for results not to depend on the thread count.
void parallel_for_slots(size_t tasks, const std::function<void(size_t task, size_t slot)>& fn, size_t max_threads = 0);

// After a loop the helpers poll for the next one for about a millisecond before they sleep, so the
// steps of a run, and runs one after another, skip the kernel's wake-up. This sends the helpers
// polling after the latest loop to sleep now. For a caller whose next loop is not coming soon and
// whose cores other threads want (a server's event loop), where that polling takes their CPU.
// Only a performance hint: a loop that starts later wakes the helpers as usual.
void park_helpers();

// For tests: the helpers' polling window (0 restores the default), so that a test can tell a
// parked helper from one whose window ran out; and how many helpers sleep now.
void set_poll_window_for_testing(std::chrono::microseconds window);
size_t sleeping_helpers();

}  // namespace kiln
