#include <napi.h>

#ifndef _WIN32
#include <dlfcn.h>
#endif

#include "registry.h"

namespace {

// Keeps this library mapped for the life of the process. Its kernel pool and job runner threads
// outlive any one environment; a worker_threads Worker that loaded the addon unloads it when it
// exits (if no other environment holds it), and those threads would then wake into unmapped
// code. RTLD_NODELETE makes the unload a no-op.
void pin_library() {
#ifndef _WIN32
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&pin_library), &info) != 0 && info.dli_fname != nullptr) {
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  }
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  pin_library();
  kiln_addon::register_system(env, exports);
  kiln_addon::register_gemm(env, exports);
  kiln_addon::register_conv(env, exports);
  kiln_addon::register_pool(env, exports);
  kiln_addon::register_elementwise(env, exports);
  kiln_addon::register_plan(env, exports);
  kiln_addon::register_s8gemm(env, exports);
  kiln_addon::register_s8conv(env, exports);
  kiln_addon::register_sparse(env, exports);
  kiln_addon::register_lent_memory(env, exports);
  kiln_addon::register_test_hooks(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(kiln, Init)
