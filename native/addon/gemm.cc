#include <napi.h>

#include "registry.h"

namespace kiln_addon {

void register_gemm(Napi::Env env, Napi::Object exports) {
  (void)env;
  (void)exports;
}

}  // namespace kiln_addon
