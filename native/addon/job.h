// Running a kernel call either inline or on a runner thread behind a Promise.
//
// An async job reads and writes only memory it owns. A reference to a typed array keeps the
// array object alive but not its elements: JavaScript can detach the buffer (structuredClone or
// postMessage with `transfer`, ArrayBuffer.prototype.transfer) or shrink a resizable one while a
// runner thread is inside a kernel, and the memory is then freed or decommitted under it. So
// JobMemory copies every array an async job reads into the job when the call is made (on the JS
// thread, where nothing can change it; a large one is copied by the runner that will read it,
// while the JS thread waits), gives the job its own memory for every array it writes,
// and copies the results into the caller's arrays when the job settles, on the JS thread again,
// after checking that each array still has the elements it had (the copies' memory is recycled
// between jobs: job.cc's BlockCache). Arrays over memory the addon lent
// (lent-memory.h: the tensors Kiln allocates) are used in place: the job holds a reference to
// their block instead. Work that reads its large inputs only in a cheap first pass may borrow them
// rather than have them copied (run_job_lending_inputs): the JS thread waits until it gives them
// back. An inline call runs before any JavaScript can run and uses the arrays in place.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "args.h"

namespace kiln_addon {

class JobMemory {
 public:
  explicit JobMemory(bool async);
  JobMemory(JobMemory&&) noexcept;
  JobMemory& operator=(JobMemory&&) noexcept;

  bool async() const { return async_; }

  // Each takes the first `count` elements of the array (all of them by default).
  static constexpr size_t kAll = ~size_t{0};

  // An array the job only reads.
  template <typename T>
  const T* read(const View<T>& v, size_t count = kAll) {
    return static_cast<const T*>(stage(v, count, Use::kRead));
  }
  // An array the job overwrites, every element of it.
  template <typename T>
  T* write(const View<T>& v, size_t count = kAll) {
    return static_cast<T*>(stage(v, count, Use::kWrite));
  }
  // An array the job reads and writes (in-place updates, outputs with gaps it must keep).
  template <typename T>
  T* update(const View<T>& v, size_t count = kAll) {
    return static_cast<T*>(stage(v, count, Use::kUpdate));
  }

  // Copies of large arrays the job reads are left to make until the job is submitted, so that the
  // runner that will read them makes them (run_job: the JS thread waits meanwhile, so the arrays
  // cannot change). Whether any are pending, and making them (any thread, once).
  bool has_pending() const { return !pending_.empty(); }
  void copy_pending();
  // The caller's array behind `staged` (what read() returned) when its copy is pending, else
  // `staged`: what a job reads in place when its inputs are lent (run_job_lending_inputs).
  const void* source(const void* staged) const;

  // On the JS thread after the job succeeded: copies what it wrote into the caller's arrays.
  // Throws ArgError (TypeError) naming an array that no longer holds its elements.
  void deliver();

  // For a Worker's teardown, when no N-API call may run: the references are left to the
  // environment instead of being released.
  void abandon();

  ~JobMemory();

 private:
  enum class Use { kRead, kWrite, kUpdate };
  struct Block;

  template <typename T>
  void* stage(const View<T>& v, size_t count, Use use) {
    const size_t n = count == kAll ? v.length : count;
    return stage(const_cast<void*>(static_cast<const void*>(v.data)), n * sizeof(T), v.value, v.name, use);
  }
  void* stage(void* js, size_t bytes, const Napi::Value& array, const char* name, Use use);

  struct PendingCopy {
    void* to;
    const void* from;
    size_t bytes;
  };

  bool async_;
  std::vector<std::unique_ptr<Block>> blocks_;
  std::vector<PendingCopy> pending_;
  std::vector<std::shared_ptr<const void>> lent_;  // lent blocks used in place
};

// Runs `work` now (memory.async() false: returns undefined, throws on failure) or on a runner
// thread (true: returns a Promise that resolves with undefined or rejects with ERR_KILN_NATIVE).
// `work` may use only pointers that `memory` handed out.
Napi::Value run_job(Napi::Env env, JobMemory memory, std::function<void()> work);

// The large inputs of an async job (JobMemory::has_pending) lent to its work rather than copied,
// for work that reads them only at its start (a plan whose inputs_read_first()). The work calls
// take() once it is ready to read: true when the runner got there while the JS thread was still
// waiting for the copies, and then the work reads the caller's arrays in place (JobMemory::source)
// until it calls give_back(), the JS thread waiting on; false when the JS thread made the copies
// (the runner came late), which the work then reads, as it does when there is nothing to lend (an
// inline call, or no input large enough to be left pending). give_back() is called once, after
// take(), also when the work fails; run_job_lending_inputs calls it when the work did not.
class InputLender {
 public:
  virtual bool take() = 0;
  virtual void give_back() = 0;

 protected:
  ~InputLender() = default;
};
Napi::Value run_job_lending_inputs(Napi::Env env, JobMemory memory, std::function<void(InputLender&)> work);
// Loans so far in this process: lent (read in place) and not (the JS thread copied them first).
struct InputLoanCounts {
  uint64_t lent = 0, copied = 0;
};
InputLoanCounts input_loan_counts();
// Tests: how long the JS thread waits for a runner to take a job's large inputs (whether or not
// one is polling), so that a test can make either side win; negative restores the default.
void force_handoff_patience(int64_t microseconds);

// Same, resolving with the value `result()` builds on the JS thread after the work.
Napi::Value run_job_with_result(Napi::Env env, JobMemory memory, std::function<void()> work,
                                std::function<Napi::Value(Napi::Env)> result);

}  // namespace kiln_addon
