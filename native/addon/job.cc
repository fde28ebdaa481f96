#include "job.h"

#include <exception>
#include <string>

#include "args.h"

namespace kiln_addon {
namespace {

class Job : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, std::function<void()> work, const std::vector<Napi::Value>& keep_alive,
      std::function<Napi::Value(Napi::Env)> result)
      : Napi::AsyncWorker(env, "kiln.job"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        result_(std::move(result)) {
    for (const Napi::Value& v : keep_alive) {
      if (v.IsObject()) refs_.push_back(Napi::Persistent(v.As<Napi::Object>()));
    }
  }

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      work_();
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (result_) {
      try {
        deferred_.Resolve(result_(env));
      } catch (const Napi::Error& e) {
        deferred_.Reject(e.Value());
      }
    } else {
      deferred_.Resolve(env.Undefined());
    }
  }

  void OnError(const Napi::Error& e) override {
    deferred_.Reject(native_error(Env(), e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> result_;
  std::vector<Napi::ObjectReference> refs_;
};

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
  Job* job = new Job(env, std::move(work), keep_alive, std::move(result));
  Napi::Promise p = job->promise();
  job->Queue();
  return p;
}

Napi::Value run_job(Napi::Env env, bool async, std::function<void()> work,
                    const std::vector<Napi::Value>& keep_alive) {
  return run_job_with_result(env, async, std::move(work), keep_alive, nullptr);
}

}  // namespace kiln_addon
