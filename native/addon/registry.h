// Each addon file registers its functions on the exports object.
#pragma once
#include <napi.h>

namespace kiln_addon {
void register_system(Napi::Env env, Napi::Object exports);       // system.cc
void register_gemm(Napi::Env env, Napi::Object exports);         // gemm.cc
void register_conv(Napi::Env env, Napi::Object exports);         // conv.cc
void register_pool(Napi::Env env, Napi::Object exports);         // pool.cc
void register_elementwise(Napi::Env env, Napi::Object exports);  // elementwise.cc
void register_plan(Napi::Env env, Napi::Object exports);         // plan.cc
void register_s8gemm(Napi::Env env, Napi::Object exports);       // s8-gemm.cc
void register_s8conv(Napi::Env env, Napi::Object exports);       // s8-conv.cc
void register_sparse(Napi::Env env, Napi::Object exports);       // sparse.cc
void register_lent_memory(Napi::Env env, Napi::Object exports);  // lent-memory.cc
void register_test_hooks(Napi::Env env, Napi::Object exports);  // test-hooks.cc (KILN_TEST_HOOKS=1 only)
}  // namespace kiln_addon
