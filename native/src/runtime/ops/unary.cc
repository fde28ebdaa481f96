// Elementwise activations (Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Tanh) and the
// Copy step. Plain loops the compiler vectorises at baseline flags; may run in place.
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

enum class UnaryKind { kRelu, kLeakyRelu, kClip, kSigmoid, kHardSigmoid, kHardSwish, kTanh };

struct UnaryParams {
  UnaryKind kind;
  float alpha = 0, beta = 0, lo = 0, hi = 0;
};

void apply(const UnaryParams& p, const float* x, float* y, size_t n) {
  switch (p.kind) {
    case UnaryKind::kRelu:
      for (size_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
      break;
    case UnaryKind::kLeakyRelu:
      for (size_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? x[i] * p.alpha : x[i];
      break;
    case UnaryKind::kClip:
      for (size_t i = 0; i < n; ++i) y[i] = x[i] < p.lo ? p.lo : (x[i] > p.hi ? p.hi : x[i]);
      break;
    case UnaryKind::kSigmoid:
      for (size_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
      break;
    case UnaryKind::kHardSigmoid:
      for (size_t i = 0; i < n; ++i) y[i] = std::fmax(0.0f, std::fmin(1.0f, p.alpha * x[i] + p.beta));
      break;
    case UnaryKind::kHardSwish:
      for (size_t i = 0; i < n; ++i) {
        const float v = x[i];
        y[i] = v * std::fmax(0.0f, std::fmin(1.0f, v * (1.0f / 6.0f) + 0.5f));
      }
      break;
    case UnaryKind::kTanh:
      for (size_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      break;
  }
}

class UnaryStep : public PlanStep {
 public:
  UnaryStep(UnaryParams p, size_t size, std::string detail) : p_(p), size_(size), detail_(std::move(detail)) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const float* x = io.in[0];
    float* y = io.out[0];
    for_chunks(batch * size_, kElementwiseGrain, max_threads,
               [&](size_t b, size_t e) { apply(p_, x + b, y + b, e - b); });
  }
  bool in_place() const override { return true; }
  std::string detail() const override { return detail_; }

 private:
  UnaryParams p_;
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
  UnaryParams p{UnaryKind::kRelu};
  std::ostringstream d;
  if (op == "Relu") {
    p.kind = UnaryKind::kRelu;
  } else if (op == "LeakyRelu") {
    p.kind = UnaryKind::kLeakyRelu;
    p.alpha = static_cast<float>(ctx.number_or("alpha", 0.01));
    d << "alpha " << p.alpha;
  } else if (op == "Clip") {
    p.kind = UnaryKind::kClip;
    p.lo = static_cast<float>(ctx.number_or("min", -std::numeric_limits<float>::max()));
    p.hi = static_cast<float>(ctx.number_or("max", std::numeric_limits<float>::max()));
    if (p.lo > p.hi) ctx.fail("attrs.min", "a value <= max", std::to_string(p.lo));
    d << "[" << p.lo << ", " << p.hi << "]";
  } else if (op == "Sigmoid") {
    p.kind = UnaryKind::kSigmoid;
  } else if (op == "HardSigmoid") {
    p.kind = UnaryKind::kHardSigmoid;
    p.alpha = static_cast<float>(ctx.number_or("alpha", 0.2));
    p.beta = static_cast<float>(ctx.number_or("beta", 0.5));
    d << "alpha " << p.alpha << " beta " << p.beta;
  } else if (op == "HardSwish") {
    p.kind = UnaryKind::kHardSwish;
  } else {
    p.kind = UnaryKind::kTanh;
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
