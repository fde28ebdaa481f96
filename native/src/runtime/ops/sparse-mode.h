// The `sparse` attr of the weighted steps (Conv, Gemm, QLinearConv, QLinearGemm), from the session
// option sparseKernels: 'always' runs a sparse-enough layer on the sparse kernels, 'auto' times both
// variants when the plan is built (runtime/sparse-choice.h), absent or 'never' stays dense.
#pragma once
#include <string>

#include "runtime/ops/ops.h"

namespace kiln {
namespace runtime {

enum class SparseMode { kNever, kAlways, kAuto };

inline SparseMode parse_sparse_mode(const StepContext& ctx) {
  const std::string text = ctx.choice_or("sparse", {"never", "always", "auto"}, "never");
  return text == "always" ? SparseMode::kAlways : text == "auto" ? SparseMode::kAuto : SparseMode::kNever;
}

}  // namespace runtime
}  // namespace kiln
