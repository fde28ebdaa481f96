// Native objects handed to JavaScript (plans, packed weights): an External tagged as ours
// (napi_type_tag_object), so a foreign object is refused, holding a shared_ptr, so an async job
// that copied the pointer keeps the object alive until it ends whatever JavaScript does with the
// handle. The object's size is reported to the GC as external memory while the handle holds it.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "args.h"

namespace kiln_addon {

template <typename T>
struct Handle {
  std::shared_ptr<const T> object;  // null once released (disposePlan)
  int64_t reported_bytes = 0;       // external memory told to the GC

  // Drops the object now (jobs in flight keep their own reference) and un-reports its memory.
  void release(Napi::Env env) {
    if (reported_bytes) Napi::MemoryManagement::AdjustExternalMemory(env, -reported_bytes);
    reported_bytes = 0;
    object.reset();
  }
};

template <typename T>
Napi::Value wrap_handle(Napi::Env env, std::shared_ptr<const T> object, size_t bytes, const napi_type_tag* tag) {
  auto* handle = new Handle<T>{std::move(object), static_cast<int64_t>(bytes)};
  Napi::MemoryManagement::AdjustExternalMemory(env, handle->reported_bytes);
  auto ext = Napi::External<Handle<T>>::New(env, handle, [](Napi::Env e, Handle<T>* h) {
    h->release(e);
    delete h;
  });
  ext.TypeTag(tag);
  return ext;
}

// The handle `v` holds, or a TypeError naming `name` and expecting `what`.
template <typename T>
Handle<T>* unwrap_handle(const Napi::Value& v, const napi_type_tag* tag, const char* name, const std::string& what) {
  if (!v.IsExternal() || !v.As<Napi::External<Handle<T>>>().CheckTypeTag(tag)) throw_type(name, what, v);
  return v.As<Napi::External<Handle<T>>>().Data();
}

}  // namespace kiln_addon
