// sgemm and measureF32Peak. Every size, stride and array length is checked here, with overflow
// checks, before a pointer reaches the kernel: the kernel trusts its arguments.
#include <napi.h>

#include <cstdint>
#include <string>

#include "args.h"
#include "job.h"
#include "kernel-args.h"
#include "kiln/f32-gemm.h"
#include "registry.h"

namespace kiln_addon {
namespace {

bool overlaps(const float* p, size_t n, const float* q, size_t m) {
  if (n == 0 || m == 0) return false;
  const uintptr_t a0 = reinterpret_cast<uintptr_t>(p), a1 = reinterpret_cast<uintptr_t>(p + n);
  const uintptr_t b0 = reinterpret_cast<uintptr_t>(q), b1 = reinterpret_cast<uintptr_t>(q + m);
  return a0 < b1 && b0 < a1;
}

Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& args, bool async) -> Napi::Value {
    const bool trans_a = get_bool_or(args, "transA", false);
    const bool trans_b = get_bool_or(args, "transB", false);
    const size_t m = static_cast<size_t>(get_int(args, "m", 0, kMaxDim));
    const size_t n = static_cast<size_t>(get_int(args, "n", 0, kMaxDim));
    const size_t k = static_cast<size_t>(get_int(args, "k", 0, kMaxDim));
    const float alpha = static_cast<float>(get_number(args, "alpha"));
    const float beta = static_cast<float>(get_number(args, "beta"));

    // Stored shapes: A is M x K (K x M when transposed), B is K x N (N x K), C is M x N.
    const size_t a_rows = trans_a ? k : m, a_cols = trans_a ? m : k;
    const size_t b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
    const size_t lda = leading_dim(args, "lda", a_cols, trans_a ? "transA: A is k x m" : "A is m x k");
    const size_t ldb = leading_dim(args, "ldb", b_cols, trans_b ? "transB: B is n x k" : "B is k x n");
    const size_t ldc = leading_dim(args, "ldc", n, "C is m x n");
    // A and B are read only when the product is not empty.
    const bool product = m != 0 && n != 0 && k != 0;
    const size_t a_len = product ? matrix_extent(a_rows, a_cols, lda, "lda") : 0;
    const size_t b_len = product ? matrix_extent(b_rows, b_cols, ldb, "ldb") : 0;
    const size_t c_len = matrix_extent(m, n, ldc, "ldc");
    View<float> a = get_f32(args, "a", a_len);
    View<float> b = get_f32(args, "b", b_len);
    View<float> c = get_f32(args, "c", c_len);

    kiln::GemmEpilogue epilogue;
    epilogue.relu = get_bool_or(args, "relu", false);
    View<float> bias = get_f32_opt(args, "bias", 0);
    Napi::Value mode_value = args.Get("biasMode");
    std::string mode = "none";
    if (!mode_value.IsUndefined() && !mode_value.IsNull()) mode = get_string(args, "biasMode");
    if (mode == "row" || mode == "col") {
      const size_t need = mode == "row" ? m : n;
      bias = get_f32(args, "bias", need);
      epilogue.bias = bias.data;
      epilogue.bias_mode = mode == "row" ? kiln::BiasMode::kPerRow : kiln::BiasMode::kPerColumn;
    } else if (mode != "none") {
      throw_range("biasMode", "one of 'row', 'col', 'none'", "\"" + mode + "\"");
    } else if (bias.data != nullptr) {
      throw_range("biasMode", "'row' or 'col' when bias is given", mode_value.IsUndefined() ? "undefined" : "\"none\"");
    }
    if (overlaps(c.data, c_len, a.data, a_len) || overlaps(c.data, c_len, b.data, b_len) ||
        (epilogue.bias && overlaps(c.data, c_len, bias.data, mode == "row" ? m : n))) {
      throw_range("c", "an output that does not share memory with a, b or bias", "an overlapping view");
    }

    // C is read (beta) and has gaps between rows (ldc) that must keep their values: updated.
    JobMemory mem(async);
    const float* pa = mem.read(a, a_len);
    const float* pb = mem.read(b, b_len);
    float* pc = mem.update(c, c_len);
    if (epilogue.bias) epilogue.bias = mem.read(bias, mode == "row" ? m : n);
    return run_job(env, std::move(mem),
                   [=] { kiln::sgemm(trans_a, trans_b, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, epilogue); });
  });
}

// measureF32Peak(milliseconds): the single-thread FMA peak of the active ISA in GFLOP/s, measured
// on the calling thread for that long (the CLI's profile reports fractions of it).
Napi::Value MeasureF32Peak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    return Napi::Number::New(env, kiln::measure_f32_peak_gflops(get_number_arg(info, 0, "milliseconds", 1.0, 1000.0)));
  }
  KILN_ADDON_CATCH(env)
}

}  // namespace

void register_gemm(Napi::Env env, Napi::Object exports) {
  exports.Set("sgemm", Napi::Function::New(env, Sgemm, "sgemm"));
  exports.Set("measureF32Peak", Napi::Function::New(env, MeasureF32Peak, "measureF32Peak"));
}

}  // namespace kiln_addon
