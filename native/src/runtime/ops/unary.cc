// Element-wise activations and math functions (Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid,
// HardSwish, Tanh, Abs, Neg, Sqrt, Exp, Log, Reciprocal, Floor, Ceil, Round, Erf, Softplus, Softsign, Elu,
// Selu, Celu, Mish, Gelu, ThresholdedRelu, and Silu: a Sigmoid and the Mul by its input, which compile
// lowers as one step) on the dispatch table's f32_math.unary kernel, and the
// Copy step; may run in place.
#include <cstring>
#include <limits>
#include <sstream>
#include <utility>

#include "common/dispatch.h"
#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

class UnaryStep : public PlanStep {
 public:
  UnaryStep(F32UnaryParams p, size_t size, std::string detail) : p_(p), size_(size), detail_(std::move(detail)) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const float* x = io.in[0];
    float* y = io.out[0];
    const F32UnaryFn unary = dispatch().f32_math.unary;
    for_chunks(batch * size_, kElementwiseGrain, max_threads,
               [&](size_t b, size_t e) { unary(p_, x + b, y + b, e - b); });
  }
  bool in_place() const override { return true; }
  std::string detail() const override { return detail_; }

 private:
  F32UnaryParams p_;
  size_t size_;
  std::string detail_;
};

class CopyStep : public PlanStep {
 public:
  explicit CopyStep(size_t size) : size_(size) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t) const override {
    if (io.out[0] != io.in[0]) std::memcpy(io.out[0], io.in[0], batch * size_ * sizeof(float));
  }
  bool in_place() const override { return true; }

 private:
  size_t size_;
};

}  // namespace

std::unique_ptr<PlanStep> make_unary(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_output_shape(0, ctx.in()[0]);
  const std::string& op = ctx.spec().op;
  F32UnaryParams p;
  std::ostringstream d;
  using K = F32UnaryKind;
  static const std::pair<const char*, K> kKinds[] = {
      {"Relu", K::kRelu}, {"LeakyRelu", K::kLeakyRelu}, {"Clip", K::kClip}, {"Sigmoid", K::kSigmoid},
      {"HardSigmoid", K::kHardSigmoid}, {"HardSwish", K::kHardSwish}, {"Tanh", K::kTanh}, {"Abs", K::kAbs},
      {"Neg", K::kNeg}, {"Sqrt", K::kSqrt}, {"Exp", K::kExp}, {"Log", K::kLog}, {"Reciprocal", K::kReciprocal},
      {"Floor", K::kFloor}, {"Ceil", K::kCeil}, {"Erf", K::kErf}, {"Softplus", K::kSoftplus},
      {"Softsign", K::kSoftsign}, {"Elu", K::kElu}, {"Selu", K::kSelu}, {"Celu", K::kCelu}, {"Mish", K::kMish},
      {"Gelu", K::kGelu}, {"ThresholdedRelu", K::kThresholdedRelu},
      {"Round", K::kRound}, {"Silu", K::kSilu},
  };
  bool known = false;
  for (const auto& k : kKinds) {
    if (op == k.first) {
      p.kind = k.second;
      known = true;
    }
  }
  if (!known) ctx.fail("op", "a unary op", op);
  switch (p.kind) {
    case K::kLeakyRelu:
      p.alpha = static_cast<float>(ctx.number_or("alpha", 0.01));
      d << "alpha " << p.alpha;
      break;
    case K::kClip:
      p.lo = static_cast<float>(ctx.number_or("min", -std::numeric_limits<float>::max()));
      p.hi = static_cast<float>(ctx.number_or("max", std::numeric_limits<float>::max()));
      if (p.lo > p.hi) ctx.fail("attrs.min", "a value <= max", std::to_string(p.lo));
      d << "[" << p.lo << ", " << p.hi << "]";
      break;
    case K::kHardSigmoid:
      p.alpha = static_cast<float>(ctx.number_or("alpha", 0.2));
      p.beta = static_cast<float>(ctx.number_or("beta", 0.5));
      d << "alpha " << p.alpha << " beta " << p.beta;
      break;
    case K::kElu:
    case K::kCelu:
    case K::kThresholdedRelu:
      p.alpha = static_cast<float>(ctx.number_or("alpha", 1.0));
      if (p.kind == K::kCelu && p.alpha == 0.0f) ctx.fail("attrs.alpha", "a non-zero alpha", "0");
      d << "alpha " << p.alpha;
      break;
    case K::kSelu:
      p.alpha = static_cast<float>(ctx.number_or("alpha", 1.67326319217681884765625));
      p.gamma = static_cast<float>(ctx.number_or("gamma", 1.05070102214813232421875));
      d << "alpha " << p.alpha << " gamma " << p.gamma;
      break;
    case K::kGelu: {
      const std::string approx = ctx.choice_or("approximate", {"none", "tanh"}, "none");
      if (approx == "tanh") p.kind = K::kGeluTanh;
      d << "approximate " << approx;
      break;
    }
    default:
      break;
  }
  return std::make_unique<UnaryStep>(p, shape_size(ctx.in()[0]), d.str());
}

std::unique_ptr<PlanStep> make_copy(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_output_shape(0, ctx.in()[0]);
  return std::make_unique<CopyStep>(shape_size(ctx.in()[0]));
}

std::unique_ptr<PlanStep> make_copy_step(size_t floats_per_image) {
  return std::make_unique<CopyStep>(floats_per_image);
}

}  // namespace runtime
}  // namespace kiln
