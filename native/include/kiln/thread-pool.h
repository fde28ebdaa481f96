// A small fixed thread pool for data-parallel loops inside one kernel call.
#pragma once
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

}  // namespace kiln
