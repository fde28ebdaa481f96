#include "runtime/activation.h"

#include <sstream>

#include "common/dispatch.h"
#include "elementwise/f32-math-ukernel.h"

namespace kiln {
namespace runtime {

Activation Activation::parse(const StepContext& ctx) {
  Activation a;
  const std::string kind = ctx.choice_or("activation", {"None", "Relu", "Relu6", "LeakyRelu", "Clip", "Silu", "HardSwish"}, "None");
  if (kind == "Silu") {
    a.kind = kSilu;
  } else if (kind == "HardSwish") {
    a.kind = kHardSwish;
  } else if (kind == "Relu") {
    a.kind = kRelu;
  } else if (kind == "Relu6") {
    a.kind = kClip;
    a.lo = 0.0f;
    a.hi = 6.0f;
  } else if (kind == "LeakyRelu") {
    a.kind = kLeakyRelu;
    a.alpha = static_cast<float>(ctx.number_or("activationAlpha", 0.01));
  } else if (kind == "Clip") {
    a.kind = kClip;
    a.lo = static_cast<float>(ctx.number_or("activationMin", -3.4028234663852886e38));
    a.hi = static_cast<float>(ctx.number_or("activationMax", 3.4028234663852886e38));
    if (a.lo > a.hi) ctx.fail("attrs.activationMin", "a value <= activationMax", std::to_string(a.lo));
  }
  return a;
}

void Activation::apply(float* x, size_t n) const {
  switch (kind) {
    case kNone:
      break;
    case kRelu:
      for (size_t i = 0; i < n; ++i) x[i] = x[i] < 0.0f ? 0.0f : x[i];
      break;
    case kClip:
      for (size_t i = 0; i < n; ++i) x[i] = x[i] < lo ? lo : (x[i] > hi ? hi : x[i]);
      break;
    case kLeakyRelu:
      for (size_t i = 0; i < n; ++i) x[i] = x[i] < 0.0f ? x[i] * alpha : x[i];
      break;
    case kSilu:
    case kHardSwish: {
      F32UnaryParams p;
      p.kind = kind == kSilu ? F32UnaryKind::kSilu : F32UnaryKind::kHardSwish;
      dispatch().f32_math.unary(p, x, x, n);
      break;
    }
  }
}

std::string Activation::name() const {
  std::ostringstream s;
  switch (kind) {
    case kNone: return "";
    case kRelu: return "relu";
    case kClip: s << "clip(" << lo << "," << hi << ")"; return s.str();
    case kLeakyRelu: s << "leaky_relu(" << alpha << ")"; return s.str();
    case kSilu: return "silu";
    case kHardSwish: return "hardswish";
  }
  return "";
}

}  // namespace runtime
}  // namespace kiln
