#include "job.h"

#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <string>

#include "args.h"
#include "runner.h"

namespace kiln_addon {
namespace {

// One async call: its promise, the values it keeps alive, and its outcome. Created and destroyed
// on the JS thread; `work` runs on a runner thread.
struct Job {
  Napi::Promise::Deferred deferred;
  std::function<void()> work;
  std::function<Napi::Value(Napi::Env)> result;
  std::vector<Napi::ObjectReference> refs;
  std::string error;
  bool failed = false;

  explicit Job(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

void settle(Napi::Env env, Napi::Function, std::nullptr_t*, Job* job);
using Completion = Napi::TypedThreadSafeFunction<std::nullptr_t, Job, settle>;

// Per environment (main thread or worker_threads Worker): the thread-safe function that brings
// finished jobs back to its JS thread, referenced only while jobs are in flight so that an idle
// addon never keeps the event loop alive.
//
// A Worker that exits tears its environment down without waiting for runner threads: its
// thread-safe functions and the typed arrays a job writes into are freed. So the environment's
// cleanup hook (added after the function, and hooks run last-added first) marks the link dead and
// waits for the jobs still running; jobs not started by then are skipped, and finished ones are
// abandoned with the environment instead of being sent to it.
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
  } else if (job->result) {
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
    // The environment is being torn down: no N-API call may run, so the job (and its references)
    // is left to the environment's own cleanup rather than deleted.
    for (Napi::ObjectReference& r : job->refs) r.SuppressDestruct();
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

Napi::Value run_job_with_result(Napi::Env env, bool async, std::function<void()> work,
                                const std::vector<Napi::Value>& keep_alive,
                                std::function<Napi::Value(Napi::Env)> result) {
  if (!async) {
    try {
      work();
    } catch (const std::exception& e) {
      native_error(env, e.what()).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return result ? result(env) : env.Undefined();
  }
  Job* job = new Job(env);
  job->work = std::move(work);
  job->result = std::move(result);
  for (const Napi::Value& v : keep_alive) {
    if (v.IsObject()) job->refs.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }
  Napi::Promise promise = job->deferred.Promise();
  EnvJobs& jobs = env_jobs(env);
  if (jobs.in_flight++ == 0) jobs.link->completion.Ref(env);
  {
    std::lock_guard<std::mutex> lock(jobs.link->mutex);
    ++jobs.link->running;
  }
  run_on_runner([job, link = jobs.link] {
    bool alive;
    {
      std::lock_guard<std::mutex> lock(link->mutex);
      alive = link->alive;
    }
    if (alive) {
      try {
        job->work();
      } catch (const std::exception& e) {
        job->failed = true;
        job->error = e.what();
      } catch (...) {
        job->failed = true;
        job->error = "unknown native error";
      }
    }
    std::lock_guard<std::mutex> lock(link->mutex);
    if (link->alive) link->completion.NonBlockingCall(job);  // the queue is unbounded
    if (--link->running == 0) link->idle.notify_all();
  });
  return promise;
}

Napi::Value run_job(Napi::Env env, bool async, std::function<void()> work,
                    const std::vector<Napi::Value>& keep_alive) {
  return run_job_with_result(env, async, std::move(work), keep_alive, nullptr);
}

}  // namespace kiln_addon
