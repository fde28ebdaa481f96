// BatchNormalization at inference: a per-channel affine y = x * a[c] + b[c], with
// a = scale / sqrt(var + epsilon) and b = B - mean * a computed once in double precision.
#include <cmath>
#include <vector>

#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

class AffineStep : public PlanStep {
 public:
  AffineStep(std::vector<float> a, std::vector<float> b, size_t spatial)
      : a_(std::move(a)), b_(std::move(b)), spatial_(spatial) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const size_t channels = a_.size();
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / spatial_);
    for_chunks(batch * channels, grain, max_threads, [&](size_t b, size_t e) {
      for (size_t p = b; p < e; ++p) {
        const size_t c = p % channels;
        const float a = a_[c], s = b_[c];
        const float* x = io.in[0] + p * spatial_;
        float* y = io.out[0] + p * spatial_;
        for (size_t i = 0; i < spatial_; ++i) y[i] = x[i] * a + s;
      }
    });
  }
  bool in_place() const override { return true; }
  size_t weight_bytes() const override { return 2 * a_.size() * sizeof(float); }

 private:
  std::vector<float> a_, b_;
  size_t spatial_;
};

}  // namespace

std::unique_ptr<PlanStep> make_batch_norm(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  const PlanShape& x = ctx.in()[0];
  if (x.empty()) ctx.fail("inputs[0]", "a value of rank >= 2 (N, C, ...)", "per-image shape " + shape_text(x));
  ctx.expect_output_shape(0, x);
  const size_t c = x[0];
  const PlanTensor& scale = ctx.weight("scale", {c});
  const PlanTensor& bias = ctx.weight("B", {c});
  const PlanTensor& mean = ctx.weight("mean", {c});
  const PlanTensor& var = ctx.weight("var", {c});
  const double eps = ctx.number_or("epsilon", 1e-5);
  if (eps < 0) ctx.fail("attrs.epsilon", "a number >= 0", std::to_string(eps));
  std::vector<float> a(c), b(c);
  for (size_t i = 0; i < c; ++i) {
    const double inv = 1.0 / std::sqrt(static_cast<double>(var.data[i]) + eps);
    const double ai = static_cast<double>(scale.data[i]) * inv;
    a[i] = static_cast<float>(ai);
    b[i] = static_cast<float>(static_cast<double>(bias.data[i]) - static_cast<double>(mean.data[i]) * ai);
  }
  return std::make_unique<AffineStep>(std::move(a), std::move(b), shape_size(x) / c);
}

}  // namespace runtime
}  // namespace kiln
