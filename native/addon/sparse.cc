// Sparse fp32 weights (kiln/sparse.h): packSparseF32 / packedSparseF32Info, and spmmF32
// (Y[m x n] = W * X[k x n] + bias, ReLU). Sizes, lengths, the pattern and the weights are checked
// here; the kernels trust their arguments. Packed weights are an External tagged as ours holding
// a shared_ptr, so a foreign object is refused and an async call keeps them alive until it ends.
#include <napi.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

#include "args.h"
#include "handle.h"
#include "job.h"
#include "kernel-args.h"
#include "kiln/sparse.h"
#include "registry.h"

namespace kiln_addon {
namespace {

const napi_type_tag kPackedSparseTag = {0x6b696c6e73707266ULL, 0x9d3e51a7c40b2f68ULL};

using SparseHandle = Handle<kiln::PackedSparseF32>;

SparseHandle* unwrap(const Napi::Value& v, const char* name) {
  return unwrap_handle<kiln::PackedSparseF32>(v, &kPackedSparseTag, name, "sparse weights made by packSparseF32");
}

Napi::Value wrap(Napi::Env env, std::shared_ptr<const kiln::PackedSparseF32> packed) {
  const size_t bytes = packed->bytes();
  return wrap_handle(env, std::move(packed), bytes, &kPackedSparseTag);
}

Napi::Value PackSparseF32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    Napi::Object args = get_object(info, 0, "args");
    const bool async = get_async(info, 1);
    const size_t m = static_cast<size_t>(get_int(args, "m", 0, kMaxDim));
    const size_t k = static_cast<size_t>(get_int(args, "k", 0, kMaxDim));
    const std::string name = get_string(args, "pattern");
    kiln::SparsePattern pattern;
    if (!kiln::parse_sparse_pattern(name, &pattern)) {
      throw_range("pattern", "one of 'unstructured', '1x4', '4x1', '8x1'", "'" + name + "'");
    }
    if (k % kiln::sparse_block_cols(pattern) != 0) {
      throw_range("k", "a multiple of 4 for 1x4 blocks", std::to_string(k));
    }
    const size_t count = checked_mul(m, k, "m * k");
    View<float> weight = get_f32_exact(args, "weight", count);
    for (size_t i = 0; i < count; ++i) {
      if (!std::isfinite(weight.data[i])) {
        throw_range("weight[" + std::to_string(i) + "]", "a finite number", std::to_string(weight.data[i]));
      }
    }
    auto packed = std::make_shared<std::shared_ptr<const kiln::PackedSparseF32>>();
    JobMemory mem(async);
    const float* w = mem.read(weight, count);
    return run_job_with_result(
        env, std::move(mem), [packed, w, m, k, pattern] { *packed = std::make_shared<const kiln::PackedSparseF32>(m, k, w, k, pattern); },
        [packed](Napi::Env e) { return wrap(e, *packed); });
  }
  KILN_ADDON_CATCH(env)
}

Napi::Value PackedSparseF32Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    SparseHandle* h = unwrap(info.Length() ? info[0] : env.Undefined(), "packed");
    const kiln::PackedSparseF32& p = *h->object;
    Napi::Object out = Napi::Object::New(env);
    out.Set("m", Napi::Number::New(env, static_cast<double>(p.rows())));
    out.Set("k", Napi::Number::New(env, static_cast<double>(p.depth())));
    out.Set("pattern", Napi::String::New(env, kiln::sparse_pattern_name(p.pattern())));
    out.Set("blocks", Napi::Number::New(env, static_cast<double>(p.blocks())));
    out.Set("nonzeros", Napi::Number::New(env, static_cast<double>(p.nonzeros())));
    out.Set("bytes", Napi::Number::New(env, static_cast<double>(p.bytes())));
    return out;
  }
  KILN_ADDON_CATCH(env)
}

Napi::Value SpmmF32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    Napi::Object args = get_object(info, 0, "args");
    const bool async = get_async(info, 1);
    SparseHandle* h = unwrap(args.Get("packed"), "packed");
    std::shared_ptr<const kiln::PackedSparseF32> packed = h->object;
    const size_t m = packed->rows(), k = packed->depth();
    const size_t n = static_cast<size_t>(get_int(args, "n", 0, kMaxDim));
    const size_t x_len = checked_mul(k, n, "k * n"), y_len = checked_mul(m, n, "m * n");
    View<float> x = get_f32_exact(args, "x", x_len);
    View<float> y = get_f32_exact(args, "y", y_len);
    View<float> bias = get_f32_exact_opt(args, "bias", m);
    const bool relu = get_bool_or(args, "relu", false);
    expect_apart({region(y, "y")}, {region(x, "x"), region(bias, "bias")});
    JobMemory mem(async);
    const float* xp = mem.read(x, x_len);
    const float* bp = bias.data ? mem.read(bias, m) : nullptr;
    float* yp = mem.write(y, y_len);
    return run_job(env, std::move(mem), [packed, n, xp, bp, yp, relu] {
      kiln::spmm_f32(*packed, n, xp, n, yp, n, bp, relu);
    });
  }
  KILN_ADDON_CATCH(env)
}

}  // namespace

void register_sparse(Napi::Env env, Napi::Object exports) {
  exports.Set("packSparseF32", Napi::Function::New(env, PackSparseF32, "packSparseF32"));
  exports.Set("packedSparseF32Info", Napi::Function::New(env, PackedSparseF32Info, "packedSparseF32Info"));
  exports.Set("spmmF32", Napi::Function::New(env, SpmmF32, "spmmF32"));
}

}  // namespace kiln_addon
