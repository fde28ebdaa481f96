// The activation a Conv, ConvTranspose or Gemm step applies to its output (fused in the graph as
// `kiln_activation`), read from the step attrs `activation`, `activationAlpha`, `activationMin`,
// `activationMax`.
#pragma once
#include <cstddef>
#include <string>

#include "runtime/step.h"

namespace kiln {
namespace runtime {

struct Activation {
  enum Kind { kNone, kRelu, kClip, kLeakyRelu, kSilu, kHardSwish } kind = kNone;
  float alpha = 0.01f;  // LeakyRelu slope
  float lo = 0, hi = 0;  // Clip bounds (Relu6: 0, 6)

  static Activation parse(const StepContext& ctx);
  // True when the kernel can apply it itself (it has a fused ReLU).
  bool is_relu() const { return kind == kRelu; }
  // Not a clamp: a function the convolution applies to each piece of its output (fuse_post).
  bool is_post_function() const { return kind == kSilu || kind == kHardSwish; }
  // In place. SiLU and HardSwish run on the active table's unary kernel, so their bits are a
  // Silu or HardSwish step's.
  void apply(float* data, size_t length) const;
  std::string name() const;
};

}  // namespace runtime
}  // namespace kiln
