// The op kinds a plan spec may name, and the factory that builds each.
#pragma once
#include <string>

#include "runtime/step.h"

namespace kiln {
namespace runtime {

struct OpEntry {
  const char* name;
  // Null for views (Reshape, Flatten, Squeeze, Unsqueeze, Identity): the output is the input's
  // storage under another shape; the planner aliases them (or copies when it cannot).
  StepFactory make;
  // The factory checks the dtypes of its values itself (int8 steps, bool steps); otherwise every value of
  // the step must be float32 (a view keeps its input's dtype).
  bool quantized = false;
};

// Null when `op` is not a plan op.
const OpEntry* find_op(const std::string& op);

}  // namespace runtime
}  // namespace kiln
