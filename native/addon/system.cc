// Runtime state: CPU features, the active ISA, the thread pool size.
#include <napi.h>

#include "args.h"
#include "kiln/cpu.h"
#include "kiln/dispatch.h"
#include "kiln/heap.h"
#include "kiln/thread-pool.h"
#include "registry.h"

namespace kiln_addon {
namespace {

Napi::Value CpuInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const kiln::CpuFeatures& f = kiln::cpu_features();
  Napi::Object out = Napi::Object::New(env);
  out.Set("vendor", f.vendor);
  out.Set("brand", f.brand);
  out.Set("isa", kiln::isa_name(kiln::active_isa()));
  out.Set("bestIsa", kiln::isa_name(kiln::best_isa()));
  Napi::Array isas = Napi::Array::New(env);
  uint32_t i = 0;
  for (kiln::Isa isa : kiln::supported_isas()) isas.Set(i++, kiln::isa_name(isa));
  out.Set("supportedIsas", isas);
  Napi::Object feats = Napi::Object::New(env);
  feats.Set("sse41", f.sse41);
  feats.Set("avx", f.avx);
  feats.Set("fma", f.fma);
  feats.Set("f16c", f.f16c);
  feats.Set("avx2", f.avx2);
  feats.Set("avx512f", f.avx512f);
  feats.Set("avx512bw", f.avx512bw);
  feats.Set("avx512dq", f.avx512dq);
  feats.Set("avx512vl", f.avx512vl);
  feats.Set("avx512vnni", f.avx512vnni);
  feats.Set("avxvnni", f.avxvnni);
  feats.Set("avx512vbmi", f.avx512vbmi);
  out.Set("features", feats);
  out.Set("threads", static_cast<double>(kiln::num_threads()));
  out.Set("l2CacheBytes", static_cast<double>(kiln::l2_cache_bytes()));
  out.Set("isaOverrideError", kiln::isa_override_error());
  return out;
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    if (info.Length() < 1 || !info[0].IsString()) throw_type("isa", "a string", info.Length() ? info[0] : env.Undefined());
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    kiln::Isa isa;
    if (!kiln::parse_isa(name, &isa)) throw_range("isa", "one of scalar, avx2, avx512, avx512vnni", "\"" + name + "\"");
    if (!kiln::set_active_isa(isa)) throw_range("isa", std::string("an ISA this CPU supports (best: ") + kiln::isa_name(kiln::best_isa()) + ")", "\"" + name + "\"");
    return env.Undefined();
  }
  KILN_ADDON_CATCH(env)
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    const int64_t n = get_int_arg(info, 0, "threads", 0, 1024);
    kiln::set_num_threads(static_cast<size_t>(n));
    return env.Undefined();
  }
  KILN_ADDON_CATCH(env)
}

// Inline: it takes milliseconds, and its callers (kiln serve once its model has loaded) call it
// once, before they serve.
Napi::Value ReleaseFreeHeap(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), kiln::release_free_heap());
}

}  // namespace

void register_system(Napi::Env env, Napi::Object exports) {
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfo, "cpuInfo"));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa, "setIsa"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("releaseFreeHeap", Napi::Function::New(env, ReleaseFreeHeap, "releaseFreeHeap"));
}

}  // namespace kiln_addon
