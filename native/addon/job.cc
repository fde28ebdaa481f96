#include "job.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>

#include "args.h"
#include "lent-memory.h"
#include "runner.h"

namespace kiln_addon {

namespace {

constexpr std::align_val_t kJobAlignment{64};  // a cache line: kernels see the alignment malloc would not give

// Inputs from this size are copied by the runner that reads them (JobMemory::has_pending). Made on
// the JS thread, the copy sits in that core's cache and the runner, on the other core, reads it
// across: int8 SeedCNN CIFAR at batch 64 (786 KiB in) took 1.78 ms a run with the input copied
// there, 1.59 ms with no copy at all (a lent input). Smaller copies cost less than the hand-off.
constexpr size_t kDeferFromBytes = size_t{64} << 10;
// How long the JS thread waits for a polling runner to start on those copies before making them
// itself (a runner that must be woken first, tens of microseconds, is not waited for).
constexpr auto kHandoffPatience = std::chrono::microseconds(50);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Jobs whose inputs were lent (read in place) or copied after all (InputHandoff::take), and the
// JS thread's patience when a test sets it (-1: kHandoffPatience for a polling runner, else 0).
std::atomic<uint64_t> loans_lent{0}, loans_copied{0};
std::atomic<int64_t> forced_patience_us{-1};

// Who makes a job's pending input copies: the runner when it starts on the job in time, otherwise
// the JS thread. Whichever claims them first makes them; run_job returns only once they are made.
// A job that borrows its inputs instead (InputLender) claims them to read them in place, and the
// JS thread then waits until it gives them back.
class InputHandoff final : public InputLender {
 public:
  explicit InputHandoff(JobMemory& memory) : memory_(memory) {}

  // Makes the copies unless the other side has claimed them; returns once they are made (or
  // given back).
  void complete() {
    int expected = kUnclaimed;
    if (state_.compare_exchange_strong(expected, kCopying, std::memory_order_acq_rel)) {
      memory_.copy_pending();
      state_.store(kDone, std::memory_order_release);
      return;
    }
    while (state_.load(std::memory_order_acquire) != kDone) cpu_relax();
  }
  // JS thread: gives a runner `patience` to claim the copies, then completes them.
  void await_from_js(std::chrono::microseconds patience) {
    const auto deadline = std::chrono::steady_clock::now() + patience;
    while (state_.load(std::memory_order_acquire) == kUnclaimed && std::chrono::steady_clock::now() < deadline) cpu_relax();
    complete();
  }

  // Runner: borrows the caller's arrays unless the JS thread has claimed them (then waits for its
  // copies).
  bool take() override {
    int expected = kUnclaimed;
    lent_ = state_.compare_exchange_strong(expected, kLent, std::memory_order_acq_rel);
    if (!lent_) complete();
    (lent_ ? loans_lent : loans_copied).fetch_add(1, std::memory_order_relaxed);
    taken_ = true;
    return lent_;
  }
  void give_back() override {
    if (!taken_) complete();  // never taken (the work failed or did not run): unblock the JS thread
    if (lent_) state_.store(kDone, std::memory_order_release);
    lent_ = false;
    taken_ = true;
  }

 private:
  static constexpr int kUnclaimed = 0, kCopying = 1, kLent = 2, kDone = 3;
  JobMemory& memory_;
  std::atomic<int> state_{kUnclaimed};
  bool lent_ = false, taken_ = false;  // the runner's side only
};

// Copies of finished jobs, kept for the next job of the same rounded size. A fresh allocation
// this large is new pages, and each faults in on first touch: in a VM a batch of 16 224x224
// images (9.6 MB) cost ~17 ms of page faults per run against ~1 ms of copying. The pages stay
// with the process, up to kMaxBytes in at most kMaxBlocks blocks (the oldest freed first).
class BlockCache {
 public:
  static constexpr size_t kGranule = size_t{64} << 10;
  static size_t rounded(size_t bytes) { return (bytes + kGranule - 1) / kGranule * kGranule; }

  uint8_t* take(size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = blocks_.size(); i-- > 0;) {
      if (blocks_[i].second != size) continue;
      uint8_t* p = blocks_[i].first;
      blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(i));
      held_ -= size;
      return p;
    }
    return nullptr;
  }
  void give(uint8_t* p, size_t size) {
    if (size > kMaxBytes) {
      ::operator delete(p, kJobAlignment);
      return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    blocks_.emplace_back(p, size);
    held_ += size;
    while (held_ > kMaxBytes || blocks_.size() > kMaxBlocks) {
      ::operator delete(blocks_.front().first, kJobAlignment);
      held_ -= blocks_.front().second;
      blocks_.erase(blocks_.begin());
    }
  }
  ~BlockCache() {
    for (auto& b : blocks_) ::operator delete(b.first, kJobAlignment);
  }

 private:
  static constexpr size_t kMaxBytes = size_t{128} << 20, kMaxBlocks = 8;
  std::mutex mutex_;
  std::vector<std::pair<uint8_t*, size_t>> blocks_;  // oldest first
  size_t held_ = 0;
};

BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache();  // never destroyed: jobs may end during exit
  return *cache;
}

// Hands a copy back to the cache (`size`: its rounded size), or frees it when `size` is 0.
struct CachedDelete {
  size_t size = 0;
  void operator()(uint8_t* p) const {
    if (size == 0) {
      ::operator delete(p, kJobAlignment);
    } else {
      block_cache().give(p, size);
    }
  }
};

}  // namespace

struct JobMemory::Block {
  const void* js = nullptr;  // where the caller's elements were when the call was made
  size_t bytes = 0;
  std::unique_ptr<uint8_t, CachedDelete> copy;
  bool filled = false;      // holds the caller's elements (read or update)
  bool write_back = false;  // copied into the caller's array when the job succeeds
  std::string name;
  Napi::ObjectReference array;  // the caller's array, for write_back
};

void* JobMemory::stage(void* js, size_t bytes, const Napi::Value& array, const char* name, Use use) {
  if (!async_ || js == nullptr || bytes == 0) return js;
  if (std::shared_ptr<const void> lent = find_lent(js, bytes)) {
    lent_.push_back(std::move(lent));
    return js;
  }
  Block* block = nullptr;
  for (auto& b : blocks_) {
    // The same array passed twice: an in-place kernel (input == output) must see one buffer.
    if (b->js == js && b->bytes == bytes) block = b.get();
  }
  if (block == nullptr) {
    auto b = std::make_unique<Block>();
    b->js = js;
    b->bytes = bytes;
    const size_t size = BlockCache::rounded(bytes);
    uint8_t* p = block_cache().take(size);
    if (p == nullptr) p = static_cast<uint8_t*>(::operator new(size, kJobAlignment));
    b->copy = std::unique_ptr<uint8_t, CachedDelete>(p, CachedDelete{size});
    b->name = name != nullptr ? name : "";
    block = b.get();
    blocks_.push_back(std::move(b));
  }
  if (use != Use::kWrite && !block->filled) {
    if (bytes >= kDeferFromBytes) {
      pending_.push_back({block->copy.get(), js, bytes});
    } else {
      std::memcpy(block->copy.get(), js, bytes);
    }
    block->filled = true;
  }
  if (use != Use::kRead && !block->write_back) {
    if (!array.IsObject()) throw_type(block->name, "a typed array", array);
    block->write_back = true;
    block->array = Napi::Persistent(array.As<Napi::Object>());
  }
  return block->copy.get();
}

void JobMemory::copy_pending() {
  for (const PendingCopy& c : pending_) std::memcpy(c.to, c.from, c.bytes);
  pending_.clear();
}

InputLoanCounts input_loan_counts() { return {loans_lent.load(), loans_copied.load()}; }
void force_handoff_patience(int64_t microseconds) { forced_patience_us.store(microseconds < 0 ? -1 : microseconds); }

const void* JobMemory::source(const void* staged) const {
  for (const PendingCopy& c : pending_) {
    if (c.to == staged) return c.from;
  }
  return staged;
}

void JobMemory::deliver() {
  const Block* lost = nullptr;
  size_t lost_bytes = 0;
  for (auto& b : blocks_) {
    if (!b->write_back) continue;
    napi_env env = b->array.Env();
    napi_value array = b->array.Value();
    napi_typedarray_type type;
    size_t length = 0, offset = 0;
    void* data = nullptr;
    napi_value buffer;
    size_t have = 0;
    if (napi_get_typedarray_info(env, array, &type, &length, &data, &buffer, &offset) == napi_ok && data != nullptr) {
      have = length * Napi::TypedArray(env, array).ElementSize();
    }
    if (have < b->bytes) {
      if (lost == nullptr) {
        lost = b.get();
        lost_bytes = have;
      }
      continue;
    }
    std::memcpy(data, b->copy.get(), b->bytes);
  }
  if (lost != nullptr) {
    throw ArgError{ArgError::kType, "Expected " + lost->name + " to keep its " + std::to_string(lost->bytes) +
                                        " bytes until the call settled but received an array whose buffer was "
                                        "detached, transferred or shrunk while the call ran (" +
                                        std::to_string(lost_bytes) + " bytes left)"};
  }
}

void JobMemory::abandon() {
  for (auto& b : blocks_) {
    if (b->write_back) b->array.SuppressDestruct();
    b->copy.get_deleter().size = 0;  // plain memory: free it now rather than with the environment
    b->copy.reset();
  }
}

JobMemory::JobMemory(bool async) : async_(async) {}
JobMemory::JobMemory(JobMemory&&) noexcept = default;
JobMemory& JobMemory::operator=(JobMemory&&) noexcept = default;
JobMemory::~JobMemory() = default;

namespace {

// One async call: its promise, the memory it owns, and its outcome. Created and destroyed on the
// JS thread; `work` runs on a runner thread.
struct Job {
  Napi::Promise::Deferred deferred;
  JobMemory memory;
  std::function<void()> work;
  std::function<Napi::Value(Napi::Env)> result;
  std::string error;
  bool failed = false;

  Job(Napi::Env env, JobMemory m) : deferred(Napi::Promise::Deferred::New(env)), memory(std::move(m)) {}
};

void settle(Napi::Env env, Napi::Function, std::nullptr_t*, Job* job);

// A job whose environment is gone or going: nothing of it may reach N-API (its promise and array
// references belong to the environment, which frees them), but its memory copies and whatever its
// work holds (a plan and its weights) are plain C++ and freed here, on any thread. Without this,
// every job in flight when a Worker exits would leak them.
void discard(Job* job) {
  job->memory.abandon();
  try {
    delete job;
  } catch (...) {
  }
}

using Completion = Napi::TypedThreadSafeFunction<std::nullptr_t, Job, settle>;

// Per environment (main thread or worker_threads Worker): the thread-safe function that brings
// finished jobs back to its JS thread, referenced only while jobs are in flight so that an idle
// addon never keeps the event loop alive.
//
// A Worker that exits tears its environment down without waiting for runner threads: its
// thread-safe functions and the typed arrays a job writes into are freed. So the environment's
// cleanup hook (added after the function, and hooks run last-added first) marks the link dead and
// waits for the jobs still running; jobs not started by then are skipped, and finished ones are
// discarded (their memory freed, their N-API references left to the environment) instead of being
// sent to it.
struct EnvLink {
  std::mutex mutex;
  std::condition_variable idle;
  bool alive = true;
  size_t running = 0;  // submitted jobs whose work has not ended
  Completion completion;
};

struct EnvJobs {
  std::shared_ptr<EnvLink> link;
  size_t in_flight = 0;
};

void env_closing(void* arg) {
  auto* link = static_cast<std::shared_ptr<EnvLink>*>(arg);
  {
    std::unique_lock<std::mutex> lock((*link)->mutex);
    (*link)->alive = false;
    (*link)->idle.wait(lock, [&] { return (*link)->running == 0; });
  }
  delete link;
}

EnvJobs& env_jobs(Napi::Env env) {
  EnvJobs* jobs = env.GetInstanceData<EnvJobs>();
  if (jobs == nullptr) {
    jobs = new EnvJobs();
    jobs->link = std::make_shared<EnvLink>();
    jobs->link->completion = Completion::New(env, "kiln.job", 0, 1);
    jobs->link->completion.Unref(env);
    napi_add_env_cleanup_hook(env, env_closing, new std::shared_ptr<EnvLink>(jobs->link));
    env.SetInstanceData(jobs);  // deleted with the environment
  }
  return *jobs;
}

void settle_now(Napi::Env env, Job* job) {
  EnvJobs& jobs = env_jobs(env);
  if (--jobs.in_flight == 0) jobs.link->completion.Unref(env);
  if (job->failed) {
    job->deferred.Reject(native_error(env, job->error).Value());
    return;
  }
  try {
    job->memory.deliver();
  } catch (const ArgError& e) {
    job->deferred.Reject(to_js_error(env, e).Value());
    return;
  }
  if (job->result) {
    try {
      job->deferred.Resolve(job->result(env));
    } catch (const Napi::Error& e) {
      job->deferred.Reject(e.Value());
    }
  } else {
    job->deferred.Resolve(env.Undefined());
  }
}

void settle(Napi::Env env, Napi::Function, std::nullptr_t*, Job* job) {
  if (env == nullptr) {
    // The environment is being torn down: no N-API call may run, so the job's references are left
    // to the environment's own cleanup; its copies and the objects its work holds (a plan) go now.
    discard(job);
    return;
  }
  try {
    settle_now(env, job);
  } catch (...) {
    // A Worker that is exiting still delivers finished jobs, but its N-API calls fail (and throw,
    // with NAPI_CPP_EXCEPTIONS); an exception escaping here would abort the whole process.
  }
  try {
    delete job;
  } catch (...) {
  }
}

}  // namespace

namespace {

// Submits an async job. Its work is job->work, which finds the pending inputs copied when it
// starts, or, when `lent_work` is given and there are pending inputs, lent_work, which borrows
// them through the handoff.
Napi::Value submit(Napi::Env env, Job* job, std::function<void(InputLender&)> lent_work) {
  Napi::Promise promise = job->deferred.Promise();
  EnvJobs& jobs = env_jobs(env);
  if (jobs.in_flight++ == 0) jobs.link->completion.Ref(env);
  {
    std::lock_guard<std::mutex> lock(jobs.link->mutex);
    ++jobs.link->running;
  }
  // Large inputs are copied by the runner (JobMemory::has_pending) or lent to its work; this
  // thread waits for the copies or the end of the loan, so JavaScript cannot touch the arrays
  // while a runner reads them.
  std::shared_ptr<InputHandoff> handoff = job->memory.has_pending() ? std::make_shared<InputHandoff>(job->memory) : nullptr;
  const bool lending = handoff && lent_work;
  const bool polling = run_on_runner([job, link = jobs.link, handoff, lending, lent_work = std::move(lent_work)] {
    if (handoff && !lending) handoff->complete();
    bool alive;
    {
      std::lock_guard<std::mutex> lock(link->mutex);
      alive = link->alive;
    }
    if (alive) {
      try {
        if (lending) {
          lent_work(*handoff);
        } else {
          job->work();
        }
      } catch (const std::exception& e) {
        job->failed = true;
        job->error = e.what();
      } catch (...) {
        job->failed = true;
        job->error = "unknown native error";
      }
    }
    if (lending) handoff->give_back();  // no-op when the work gave them back
    Job* dropped = job;
    {
      std::lock_guard<std::mutex> lock(link->mutex);
      // The queue is unbounded; a call refused (the function is closing) leaves the job to us.
      if (link->alive && link->completion.NonBlockingCall(job) == napi_ok) dropped = nullptr;
      if (--link->running == 0) link->idle.notify_all();
    }
    if (dropped != nullptr) discard(dropped);
  });
  if (handoff) {
    const int64_t forced = forced_patience_us.load(std::memory_order_relaxed);
    handoff->await_from_js(forced >= 0 ? std::chrono::microseconds(forced) : polling ? kHandoffPatience : std::chrono::microseconds(0));
  }
  return promise;
}

}  // namespace

Napi::Value run_job_with_result(Napi::Env env, JobMemory memory, std::function<void()> work,
                                std::function<Napi::Value(Napi::Env)> result) {
  if (!memory.async()) {
    try {
      work();
    } catch (const std::exception& e) {
      native_error(env, e.what()).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return result ? result(env) : env.Undefined();
  }
  Job* job = new Job(env, std::move(memory));
  job->work = std::move(work);
  job->result = std::move(result);
  return submit(env, job, nullptr);
}

Napi::Value run_job_lending_inputs(Napi::Env env, JobMemory memory, std::function<void(InputLender&)> work) {
  if (!memory.async() || !memory.has_pending()) {
    // Nothing to lend: the inputs are the caller's (inline) or already copied.
    struct Owned final : InputLender {
      bool take() override { return false; }
      void give_back() override {}
    };
    return run_job(env, std::move(memory), [work = std::move(work)] {
      Owned owned;
      work(owned);
    });
  }
  Job* job = new Job(env, std::move(memory));
  return submit(env, job, std::move(work));
}

Napi::Value run_job(Napi::Env env, JobMemory memory, std::function<void()> work) {
  return run_job_with_result(env, std::move(memory), std::move(work), nullptr);
}

}  // namespace kiln_addon
