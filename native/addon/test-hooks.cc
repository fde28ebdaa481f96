// Test hooks: entry points that exist for the tests and benchmarks, not for users. They are
// registered (as `testHooks` on the exports) only when KILN_TEST_HOOKS=1 is set when the addon
// loads, so the production surface stays what src/binding.ts documents.
#include <napi.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "args.h"
#include "job.h"
#include "kiln/s8-gemm.h"
#include "kiln/thread-pool.h"
#include "registry.h"
#include "runner.h"
#include "runtime/sparse-choice.h"

namespace kiln_addon {
namespace {

// For the tests of parallel_for_slots: runs `tasks` tasks (each spinning ~20 us so that helpers
// take part) over at most maxThreads threads; returns, per task, the slot that ran it and how many
// times it ran.
Napi::Value ThreadPoolSlotsProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    const size_t tasks = static_cast<size_t>(get_int_arg(info, 0, "tasks", 0, 4096));
    const size_t max_threads = static_cast<size_t>(get_int_arg(info, 1, "maxThreads", 0, 1024));
    std::unique_ptr<std::atomic<int32_t>[]> runs(new std::atomic<int32_t>[tasks + 1]);
    std::unique_ptr<std::atomic<int32_t>[]> slots(new std::atomic<int32_t>[tasks + 1]);
    for (size_t t = 0; t < tasks; ++t) {
      runs[t].store(0);
      slots[t].store(-1);
    }
    kiln::parallel_for_slots(
        tasks,
        [&](size_t t, size_t slot) {
          volatile double sink = 0;
          for (int i = 0; i < 20000; ++i) sink = sink + 1.0;
          runs[t].fetch_add(1);
          slots[t].store(static_cast<int32_t>(slot));
        },
        max_threads);
    Napi::Int32Array slot_out = Napi::Int32Array::New(env, tasks);
    Napi::Int32Array run_out = Napi::Int32Array::New(env, tasks);
    for (size_t t = 0; t < tasks; ++t) {
      slot_out[t] = slots[t].load();
      run_out[t] = runs[t].load();
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("slots", slot_out);
    out.Set("runs", run_out);
    return out;
  }
  KILN_ADDON_CATCH(env)
}

Napi::Value SetS8GemmKernel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    if (info.Length() < 1 || !info[0].IsString()) throw_type("kernel", "a string", info.Length() ? info[0] : env.Undefined());
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    if (name != "auto" && name != "avxvnni") throw_range("kernel", "'auto' or 'avxvnni'", "\"" + name + "\"");
    if (!kiln::set_s8_gemm_force_avxvnni(name == "avxvnni")) {
      throw_range("kernel", "a kernel family this CPU supports (it has no AVX-VNNI)", "\"" + name + "\"");
    }
    return env.Undefined();
  }
  KILN_ADDON_CATCH(env)
}

Napi::Value S8GemmKernel(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), kiln::s8_gemm_kernel_name());
}

#if defined(KILN_SANITIZED)
// Only in the sanitized build (CMake KILN_SANITIZE, npm run test:asan): commits the bug `kind` names
// so that test/asan/sanitizer-active.test.ts can watch a child process die of the sanitizer's
// report, proving the suites really run sanitized. The memory is touched through volatile pointers
// so that the compiler keeps the access.
Napi::Value SanitizerProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string kind = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  int sink = 0;
  if (kind == "heap-buffer-overflow") {
    volatile uint8_t* block = new uint8_t[16]();
    sink = block[16];
    delete[] block;
  } else if (kind == "heap-use-after-free") {
    volatile uint8_t* block = new uint8_t[16]();
    delete[] block;
    sink = block[0];
  } else if (kind == "signed-integer-overflow") {
    volatile int big = INT32_MAX;
    sink = big + 1;
  } else {
    Napi::RangeError::New(env, "kind: expected 'heap-buffer-overflow', 'heap-use-after-free' or 'signed-integer-overflow'").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, sink);
}
#endif

}  // namespace

void register_test_hooks(Napi::Env env, Napi::Object exports) {
  const char* enabled = std::getenv("KILN_TEST_HOOKS");
  if (enabled == nullptr || std::strcmp(enabled, "1") != 0) return;
  Napi::Object hooks = Napi::Object::New(env);
  hooks.Set("threadPoolSlotsProbe", Napi::Function::New(env, ThreadPoolSlotsProbe, "threadPoolSlotsProbe"));
  hooks.Set("setS8GemmKernel", Napi::Function::New(env, SetS8GemmKernel, "setS8GemmKernel"));
  hooks.Set("s8GemmKernel", Napi::Function::New(env, S8GemmKernel, "s8GemmKernel"));
  hooks.Set("sparseChoiceMeasurements", Napi::Function::New(
                                            env,
                                            [](const Napi::CallbackInfo& info) -> Napi::Value {
                                              return Napi::Number::New(info.Env(), static_cast<double>(kiln::runtime::sparse_choice_measurements()));
                                            },
                                            "sparseChoiceMeasurements"));
  hooks.Set("inputLoans", Napi::Function::New(
                              env,
                              [](const Napi::CallbackInfo& info) -> Napi::Value {
                                const InputLoanCounts c = input_loan_counts();
                                Napi::Object out = Napi::Object::New(info.Env());
                                out.Set("lent", Napi::Number::New(info.Env(), static_cast<double>(c.lent)));
                                out.Set("copied", Napi::Number::New(info.Env(), static_cast<double>(c.copied)));
                                return out;
                              },
                              "inputLoans"));
  hooks.Set("forceHandoffPatience", Napi::Function::New(
                                       env,
                                       [](const Napi::CallbackInfo& info) -> Napi::Value {
                                         force_handoff_patience(get_int_arg(info, 0, "microseconds", -1, 1000000));
                                         return info.Env().Undefined();
                                       },
                                       "forceHandoffPatience"));
  hooks.Set("setPollWindow", Napi::Function::New(
                                env,
                                [](const Napi::CallbackInfo& info) -> Napi::Value {
                                  const auto window = std::chrono::microseconds(get_int_arg(info, 0, "microseconds", 0, 600000000));
                                  kiln::set_poll_window_for_testing(window);
                                  set_runner_poll_window_for_testing(window);
                                  return info.Env().Undefined();
                                },
                                "setPollWindow"));
  hooks.Set("pollingThreads", Napi::Function::New(
                                 env,
                                 [](const Napi::CallbackInfo& info) -> Napi::Value {
                                   Napi::Object out = Napi::Object::New(info.Env());
                                   out.Set("pollingRunners", Napi::Number::New(info.Env(), static_cast<double>(polling_runners())));
                                   out.Set("sleepingHelpers", Napi::Number::New(info.Env(), static_cast<double>(kiln::sleeping_helpers())));
                                   return out;
                                 },
                                 "pollingThreads"));
#if defined(KILN_SANITIZED)
  hooks.Set("sanitizerProbe", Napi::Function::New(env, SanitizerProbe, "sanitizerProbe"));
#endif
  exports.Set("testHooks", hooks);
}

}  // namespace kiln_addon
