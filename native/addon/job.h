// Running a kernel call either inline or on a libuv worker behind a Promise.
// The work function touches only plain C++ data (pointers into typed arrays that the job keeps
// referenced until it settles); no N-API call happens off the JS thread.
#pragma once
#include <napi.h>

#include <functional>
#include <vector>

namespace kiln_addon {

// Runs `work` now (async == false: returns undefined, throws on failure) or on a worker thread
// (async == true: returns a Promise that resolves with undefined or rejects with ERR_KILN_NATIVE).
// `keep_alive` values (typed arrays, external objects) stay referenced until the work ends.
Napi::Value run_job(Napi::Env env, bool async, std::function<void()> work,
                    const std::vector<Napi::Value>& keep_alive);

// Same, resolving with the value `result()` builds on the JS thread after the work.
Napi::Value run_job_with_result(Napi::Env env, bool async, std::function<void()> work,
                                const std::vector<Napi::Value>& keep_alive,
                                std::function<Napi::Value(Napi::Env)> result);

}  // namespace kiln_addon
