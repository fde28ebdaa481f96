// sparseKernels 'auto': which of sparse and dense ran faster for a layer, measured once when a plan
// is built, remembered for the rest of the process. The key holds everything the measurement
// depends on (the op with its geometry and fused epilogue, the ISA table, a hash of the weights),
// so a second session on the same model (another worker, or a re-plan for a new input shape)
// reuses the answer instead of timing again; a different CPU path or different weights time anew.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace kiln {
namespace runtime {

// 64-bit hash of `bytes` bytes (not cryptographic: it tells models apart, nothing more).
uint64_t hash_bytes(const void* data, size_t bytes, uint64_t seed = 0);

// `measure()`'s answer for `key`, timed on the first call and remembered (thread-safe; the
// remembered set is bounded, the oldest answers are dropped first).
bool cached_sparse_choice(const std::string& key, const std::function<bool()>& measure);

// How many times cached_sparse_choice has called `measure` in this process (for tests).
size_t sparse_choice_measurements();

}  // namespace runtime
}  // namespace kiln
