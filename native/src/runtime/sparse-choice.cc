#include "runtime/sparse-choice.h"

#include <atomic>
#include <cstring>
#include <deque>
#include <mutex>
#include <unordered_map>

namespace kiln {
namespace runtime {
namespace {

// A model holds at most a few hundred layers: this keeps the answers of a few dozen models.
constexpr size_t kMaxRemembered = 4096;

struct Remembered {
  std::mutex mutex;
  std::unordered_map<std::string, bool> answers;
  std::deque<std::string> order;  // insertion order, for dropping the oldest
};

Remembered& remembered() {
  static Remembered* r = new Remembered();  // never destroyed: plans may be built during exit
  return *r;
}

std::atomic<size_t> measurements{0};

uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

}  // namespace

uint64_t hash_bytes(const void* data, size_t bytes, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = mix(seed ^ (bytes * 0x9e3779b97f4a7c15ULL));
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = mix(h ^ w) + 0x9e3779b97f4a7c15ULL;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, p + i, bytes - i);
  return mix(h ^ tail ^ 0x5bd1e995ULL);
}

bool cached_sparse_choice(const std::string& key, const std::function<bool()>& measure) {
  Remembered& r = remembered();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.answers.find(key);
    if (it != r.answers.end()) return it->second;
  }
  // Measured outside the lock: another thread may build another plan meanwhile (two threads
  // measuring the same key both store the same kind of answer; the first one stays).
  const bool sparse = measure();
  measurements.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(r.mutex);
  if (r.answers.emplace(key, sparse).second) {
    r.order.push_back(key);
    if (r.order.size() > kMaxRemembered) {
      r.answers.erase(r.order.front());
      r.order.pop_front();
    }
  }
  return sparse;
}

size_t sparse_choice_measurements() { return measurements.load(std::memory_order_relaxed); }

}  // namespace runtime
}  // namespace kiln
