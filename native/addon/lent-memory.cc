#include "lent-memory.h"

#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <new>

#include "args.h"

namespace kiln_addon {
namespace {

constexpr std::align_val_t kAlignment{64};

// Address -> block, for find_lent. Blocks leave it when their last reference goes, which may
// happen on a runner thread (a job's) or wherever the runtime finalizes an ArrayBuffer.
struct Registry {
  std::mutex mutex;
  struct Entry {
    uintptr_t end;
    std::weak_ptr<const void> block;
  };
  std::map<uintptr_t, Entry> blocks;  // keyed by start address
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: blocks may be freed during exit
  return *r;
}

std::shared_ptr<const void> make_block(size_t bytes) {
  void* data = ::operator new(bytes, kAlignment);
  std::memset(data, 0, bytes);
  std::shared_ptr<const void> block(data, [](const void* p) {
    Registry& r = registry();
    {
      std::lock_guard<std::mutex> lock(r.mutex);
      r.blocks.erase(reinterpret_cast<uintptr_t>(p));
    }
    ::operator delete(const_cast<void*>(p), kAlignment);
  });
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const uintptr_t start = reinterpret_cast<uintptr_t>(data);
  r.blocks[start] = {start + bytes, block};
  return block;
}

void release(napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<const void>*>(hint); }

}  // namespace

Napi::Value lend_array_buffer(Napi::Env env, size_t bytes) {
  if (bytes == 0) return Napi::ArrayBuffer::New(env, 0);
  std::shared_ptr<const void> block = make_block(bytes);
  auto* hint = new std::shared_ptr<const void>(block);
  napi_value buffer;
  const napi_status status =
      napi_create_external_arraybuffer(env, const_cast<void*>(block.get()), bytes, release, hint, &buffer);
  if (status != napi_ok) {
    // Runtimes with a memory sandbox refuse external buffers: a plain one works, jobs copy it.
    delete hint;
    return Napi::ArrayBuffer::New(env, bytes);
  }
  return Napi::Value(env, buffer);
}

std::shared_ptr<const void> find_lent(const void* data, size_t bytes) {
  Registry& r = registry();
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data);
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.blocks.upper_bound(begin);
  if (it == r.blocks.begin()) return nullptr;
  --it;
  if (begin >= it->second.end || bytes > it->second.end - begin) return nullptr;  // it->first <= begin here
  return it->second.block.lock();
}

Napi::Value LendArrayBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    // What a JS ArrayBuffer may hold (2^53 - 1 bytes in the spec; far less in practice).
    const size_t bytes = static_cast<size_t>(get_int_arg(info, 0, "bytes", 0, int64_t{1} << 50));
    return lend_array_buffer(env, bytes);
  }
  KILN_ADDON_CATCH(env)
}

void register_lent_memory(Napi::Env env, Napi::Object exports) {
  exports.Set("lendArrayBuffer", Napi::Function::New(env, LendArrayBuffer, "lendArrayBuffer"));
}

}  // namespace kiln_addon
