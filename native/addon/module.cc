#include <napi.h>

#include "registry.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  kiln_addon::register_system(env, exports);
  kiln_addon::register_gemm(env, exports);
  kiln_addon::register_conv(env, exports);
  kiln_addon::register_pool(env, exports);
  kiln_addon::register_elementwise(env, exports);
  kiln_addon::register_plan(env, exports);
  kiln_addon::register_s8gemm(env, exports);
  kiln_addon::register_s8conv(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(kiln, Init)
