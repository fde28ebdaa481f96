// The int8 GEMM (kiln/s8-gemm.h): packS8B / packedS8BInfo, s8gemm (int32 out), s8gemmRequantize
// (uint8 out), s8gemmDequantize (float out), measureS8Peak, and the kernel-family switch used by
// tests. Every size, stride, zero point and array length is checked here, with overflow checks,
// before a pointer reaches the kernel: the kernel trusts its arguments.
// Packed weights are an External tagged as ours (napi_type_tag_object) holding a shared_ptr, so a
// foreign object is refused and an async call keeps the weights alive until it ends.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "handle.h"
#include "job.h"
#include "kernel-args.h"
#include "kiln/s8-gemm.h"
#include "registry.h"

namespace kiln_addon {
namespace {

const napi_type_tag kPackedS8BTag = {0x6b696c6e73386270ULL, 0x4c2f8e1d09a7b365ULL};

using PackedHandle = Handle<kiln::PackedS8B>;

// Byte ranges of the buffers a call reads, to refuse an output that shares memory with them.
class Ranges {
 public:
  template <typename T>
  void add(const T* p, size_t count) {
    if (p && count) ranges_.push_back({reinterpret_cast<uintptr_t>(p), reinterpret_cast<uintptr_t>(p + count)});
  }
  template <typename T>
  void refuse_overlap(const T* p, size_t count) const {
    if (!p || !count) return;
    const uintptr_t b = reinterpret_cast<uintptr_t>(p), e = reinterpret_cast<uintptr_t>(p + count);
    for (const auto& r : ranges_) {
      if (b < r.second && r.first < e) throw_range("c", "an output that shares no memory with the inputs", "an overlapping view");
    }
  }

 private:
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges_;
};

// Finite floats only: NaN or infinity would make the epilogue differ between ISAs (and NaN has no
// uint8 value).
void check_finite(const float* p, size_t n, const char* name) {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(p[i])) {
      throw_range(std::string(name) + "[" + std::to_string(i) + "]", "a finite number", std::to_string(p[i]));
    }
  }
}

PackedHandle* unwrap_packed(const Napi::Value& v, const char* name) {
  return unwrap_handle<kiln::PackedS8B>(v, &kPackedS8BTag, name, "packed int8 weights made by packS8B");
}

Napi::Value wrap_packed(Napi::Env env, std::shared_ptr<const kiln::PackedS8B> packed) {
  const size_t bytes = packed->bytes();
  return wrap_handle(env, std::move(packed), bytes, &kPackedS8BTag);
}

// B as given: K x N row-major (or N x K with transB), read as an Int8Array view.
struct RawB {
  View<int8_t> view;
  bool trans = false;
  size_t ld = 0, len = 0;
};

RawB read_raw_b(const Napi::Object& args, size_t k, size_t n) {
  RawB b;
  b.trans = get_bool_or(args, "transB", false);
  b.ld = leading_dim(args, "ldb", b.trans ? k : n, b.trans ? "transB: B is n x k" : "B is k x n");
  b.len = matrix_extent(b.trans ? n : k, b.trans ? k : n, b.ld, "ldb");
  b.view = get_i8(args, "b", b.len);
  return b;
}

// What every s8gemm variant reads: sizes, A and its zero point, B (raw or packed), the int32 bias.
struct Common {
  size_t m = 0, n = 0, k = 0;
  View<uint8_t> a;
  size_t lda = 0, a_len = 0;
  uint8_t za = 0;
  std::shared_ptr<const kiln::PackedS8B> packed;  // null: pack `raw` inside the job
  RawB raw;
  View<int32_t> bias;
  Ranges inputs;
};

Common read_common(const Napi::Object& args) {
  Common cm;
  cm.m = static_cast<size_t>(get_int(args, "m", 0, kMaxDim));
  cm.n = static_cast<size_t>(get_int(args, "n", 0, kMaxDim));
  cm.k = static_cast<size_t>(get_int(args, "k", 0, kMaxDim));
  cm.lda = leading_dim(args, "lda", cm.k, "A is m x k");
  cm.a_len = cm.n != 0 ? matrix_extent(cm.m, cm.k, cm.lda, "lda") : 0;
  cm.a = get_u8(args, "a", cm.a_len);
  cm.za = static_cast<uint8_t>(get_int(args, "aZeroPoint", 0, 255));
  Napi::Value b = args.Get("b");
  if (b.IsExternal()) {
    PackedHandle* h = unwrap_packed(b, "b");
    if (h->object->depth() != cm.k || h->object->cols() != cm.n) {
      throw_range("b", "packed weights of k x n = " + std::to_string(cm.k) + " x " + std::to_string(cm.n),
                  "packed weights of " + std::to_string(h->object->depth()) + " x " + std::to_string(h->object->cols()));
    }
    cm.packed = h->object;
  } else {
    cm.raw = read_raw_b(args, cm.k, cm.n);
    cm.inputs.add(cm.raw.view.data, cm.raw.len);
  }
  cm.bias = get_i32_opt(args, "bias", cm.n);
  cm.inputs.add(cm.a.data, cm.a_len);
  cm.inputs.add(cm.bias.data, cm.bias.data ? cm.n : 0);
  return cm;
}

// What every variant's job reads, in the job's memory.
struct Operands {
  const uint8_t* a;
  const int32_t* bias;
};
Operands read_operands(const Common& cm, JobMemory& mem) {
  return {mem.read(cm.a, cm.a_len), cm.bias.data ? mem.read(cm.bias, cm.n) : nullptr};
}

// The job body: pack B when it came raw (off the JS thread for async calls), then run. Packed
// weights are held by their shared_ptr for the job's life.
template <typename Run>
std::function<void()> job(const Common& cm, JobMemory& mem, Run run) {
  std::shared_ptr<const kiln::PackedS8B> packed = cm.packed;
  const int8_t* raw = packed ? nullptr : mem.read(cm.raw.view, cm.raw.len);
  const bool trans = cm.raw.trans;
  const size_t ldb = cm.raw.ld, k = cm.k, n = cm.n;
  return [packed, raw, trans, ldb, k, n, run]() {
    std::shared_ptr<const kiln::PackedS8B> b = packed;
    if (!b) b = std::make_shared<const kiln::PackedS8B>(trans, k, n, raw, ldb);
    run(*b);
  };
}

template <typename T>
struct Output {
  View<T> view;
  size_t ldc = 0, len = 0;
};

template <typename T>
Output<T> read_output(const Napi::Object& args, const Common& cm, View<T> (*get)(const Napi::Object&, const char*, size_t)) {
  Output<T> out;
  out.ldc = leading_dim(args, "ldc", cm.n, "C is m x n");
  out.len = matrix_extent(cm.m, cm.n, out.ldc, "ldc");
  out.view = get(args, "c", out.len);
  return out;
}

// The rest of every variant once its epilogue's arguments are read: the output C (of `get`'s
// element type), checked apart from the inputs (the epilogue's arrays among them, added first);
// then the job, with `bind(mem)` reading the epilogue's arrays into the job's memory before C,
// and `kernel(m, a, lda, za, b, bias, epilogue, out, ldc)` on the packed B.
template <typename T, typename Bind, typename Kernel>
Napi::Value run_s8gemm(Napi::Env env, const Napi::Object& args, bool async, Common& cm,
                       View<T> (*get)(const Napi::Object&, const char*, size_t), Bind bind, Kernel kernel) {
  Output<T> c = read_output<T>(args, cm, get);
  cm.inputs.refuse_overlap(c.view.data, c.len);
  const size_t m = cm.m, lda = cm.lda, ldc = c.ldc;
  const uint8_t za = cm.za;
  JobMemory mem(async);
  const Operands op = read_operands(cm, mem);
  const auto epilogue = bind(mem);
  T* out = mem.update(c.view, c.len);  // rows have gaps (ldc) that keep their values
  auto work = job(cm, mem, [=](const kiln::PackedS8B& b) { kernel(m, op.a, lda, za, b, op.bias, epilogue, out, ldc); });
  return run_job(env, std::move(mem), std::move(work));
}

// The per-column float `scale` of the requantize and dequantize epilogues: n finite values.
View<float> read_scale(const Napi::Object& args, const Common& cm) {
  View<float> scale = get_f32(args, "scale", cm.n);
  check_finite(scale.data, cm.n, "scale");
  return scale;
}

Napi::Value S8gemm(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& args, bool async) -> Napi::Value {
    Common cm = read_common(args);
    return run_s8gemm<int32_t>(
        env, args, async, cm, get_i32, [](JobMemory&) { return nullptr; },
        [](size_t m, const uint8_t* a, size_t lda, uint8_t za, const kiln::PackedS8B& b, const int32_t* bias, std::nullptr_t,
           int32_t* out, size_t ldc) { kiln::s8gemm(m, a, lda, za, b, bias, out, ldc); });
  });
}

Napi::Value S8gemmRequantize(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& args, bool async) -> Napi::Value {
    Common cm = read_common(args);
    View<float> scale = read_scale(args, cm);
    kiln::S8Requantization rq;
    rq.zero_point = static_cast<uint8_t>(get_int(args, "outZeroPoint", 0, 255));
    rq.min = static_cast<uint8_t>(get_int_or(args, "outMin", 0, 255, 0));
    rq.max = static_cast<uint8_t>(get_int_or(args, "outMax", 0, 255, 255));
    if (rq.min > rq.max) {
      throw_range("outMax", "an integer >= outMin (" + std::to_string(rq.min) + ")", std::to_string(rq.max));
    }
    cm.inputs.add(scale.data, cm.n);
    return run_s8gemm<uint8_t>(
        env, args, async, cm, get_u8,
        [&](JobMemory& mem) {
          rq.scale = mem.read(scale, cm.n);
          return rq;
        },
        [](auto... operands) { kiln::s8gemm_requantize(operands...); });
  });
}

Napi::Value S8gemmDequantize(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& args, bool async) -> Napi::Value {
    Common cm = read_common(args);
    View<float> scale = read_scale(args, cm);
    View<float> out_bias = get_f32_opt(args, "outBias", cm.n);
    if (out_bias.data) check_finite(out_bias.data, cm.n, "outBias");
    cm.inputs.add(scale.data, cm.n);
    cm.inputs.add(out_bias.data, out_bias.data ? cm.n : 0);
    return run_s8gemm<float>(
        env, args, async, cm, get_f32,
        [&](JobMemory& mem) {
          kiln::S8Dequantization dq;
          dq.scale = mem.read(scale, cm.n);
          dq.bias = out_bias.data ? mem.read(out_bias, cm.n) : nullptr;
          return dq;
        },
        [](auto... operands) { kiln::s8gemm_dequantize(operands...); });
  });
}

Napi::Value PackS8B(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& args, bool async) -> Napi::Value {
    const size_t k = static_cast<size_t>(get_int(args, "k", 0, kMaxDim));
    const size_t n = static_cast<size_t>(get_int(args, "n", 0, kMaxDim));
    const RawB raw = read_raw_b(args, k, n);
    checked_mul((k + 3) / 4 * 4, (n + 15) / 16 * 16, "k * n");  // the packed size must fit in memory
    auto packed = std::make_shared<std::shared_ptr<const kiln::PackedS8B>>();
    JobMemory mem(async);
    const int8_t* b = mem.read(raw.view, raw.len);
    const bool trans = raw.trans;
    const size_t ldb = raw.ld;
    return run_job_with_result(
        env, std::move(mem), [packed, b, trans, ldb, k, n] { *packed = std::make_shared<const kiln::PackedS8B>(trans, k, n, b, ldb); },
        [packed](Napi::Env e) { return wrap_packed(e, *packed); });
  });
}

Napi::Value PackedS8BInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    PackedHandle* h = unwrap_packed(info.Length() ? info[0] : env.Undefined(), "packed");
    Napi::Object out = Napi::Object::New(env);
    out.Set("k", Napi::Number::New(env, static_cast<double>(h->object->depth())));
    out.Set("n", Napi::Number::New(env, static_cast<double>(h->object->cols())));
    out.Set("bytes", Napi::Number::New(env, static_cast<double>(h->object->bytes())));
    return out;
  }
  KILN_ADDON_CATCH(env)
}

// measureS8Peak(milliseconds): the single-thread int8 multiply-add peak of the active kernel family
// in GMAC/s, measured on the calling thread for that long (the CLI's profile reports int8 steps'
// fractions of it, as it reports float steps' fractions of measureF32Peak).
Napi::Value MeasureS8Peak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    return Napi::Number::New(env, kiln::measure_s8_peak_gmacs(get_number_arg(info, 0, "milliseconds", 1.0, 1000.0)));
  }
  KILN_ADDON_CATCH(env)
}

}  // namespace

void register_s8gemm(Napi::Env env, Napi::Object exports) {
  exports.Set("measureS8Peak", Napi::Function::New(env, MeasureS8Peak, "measureS8Peak"));
  exports.Set("packS8B", Napi::Function::New(env, PackS8B, "packS8B"));
  exports.Set("packedS8BInfo", Napi::Function::New(env, PackedS8BInfo, "packedS8BInfo"));
  exports.Set("s8gemm", Napi::Function::New(env, S8gemm, "s8gemm"));
  exports.Set("s8gemmRequantize", Napi::Function::New(env, S8gemmRequantize, "s8gemmRequantize"));
  exports.Set("s8gemmDequantize", Napi::Function::New(env, S8gemmDequantize, "s8gemmDequantize"));
}

}  // namespace kiln_addon
