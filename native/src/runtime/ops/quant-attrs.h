// Readers of the quantization attributes of int8 steps: scales are finite and > 0, zero points
// integers in [0, 255] (int8 activations arrive as uint8 with zero point + 128).
#pragma once
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

#include "runtime/step.h"

namespace kiln {
namespace runtime {

inline float scale_attr(const StepContext& ctx, const char* name) {
  if (!ctx.has(name)) ctx.fail(std::string("attrs.") + name, "a finite scale > 0", "undefined");
  const double v = ctx.number_or(name, 1);
  const float f = static_cast<float>(v);
  if (!(f > 0) || !std::isfinite(f)) {
    std::ostringstream s;
    s << v;
    ctx.fail(std::string("attrs.") + name, "a finite scale > 0 (as float32)", s.str());
  }
  return f;
}

inline uint8_t zero_point_attr(const StepContext& ctx, const char* name) {
  return static_cast<uint8_t>(ctx.integer(name, 0, 255));
}

// w_scale: float32 with `channels` values or one, each finite and > 0.
inline const PlanTensor& weight_scales(const StepContext& ctx, size_t channels) {
  const PlanTensor* any = ctx.find_weight("w_scale");
  const bool per_tensor = any && any->shape.size() == 1 && any->shape[0] == 1;
  const PlanTensor& ws = ctx.typed_weight("w_scale", PlanDType::kFloat32, {per_tensor ? size_t{1} : channels});
  for (size_t i = 0; i < ws.length; ++i) {
    if (!(ws.data[i] > 0) || !std::isfinite(ws.data[i])) {
      std::ostringstream s;
      s << ws.data[i];
      ctx.fail("weights.w_scale[" + std::to_string(i) + "]", "a finite scale > 0", s.str());
    }
  }
  return ws;
}

inline size_t round_up_floats(size_t bytes) { return (bytes + 3) / 4; }

}  // namespace runtime
}  // namespace kiln
