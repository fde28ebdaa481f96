// BatchNormalization at inference: a per-channel affine y = x * a[c] + b[c], with
// a = scale / sqrt(var + epsilon) and b = B - mean * a computed once in double precision.
// BatchNormU8 runs it on uint8 NHWC codes, with the DequantizeLinear before it, an optional ReLU
// and the QuantizeLinear after it folded in (DenseNet's pre-activations inside an int8 graph): the
// bits of those steps, without the float image between them.
#include <cmath>
#include <vector>

#include "common/dispatch.h"
#include "runtime/activation.h"
#include "runtime/ops/quant-attrs.h"
#include "s8-conv/quantize-rows.h"
#include "s8-conv/s8-conv-ukernel.h"

#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

// With the activation after it (ReLU before a pre-activation network's convolutions), applied to
// each plane while it is in cache: the bits of the two steps.
class AffineStep : public PlanStep {
 public:
  AffineStep(std::vector<float> a, std::vector<float> b, size_t spatial, Activation act)
      : a_(std::move(a)), b_(std::move(b)), spatial_(spatial), act_(act) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const size_t channels = a_.size();
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / spatial_);
    for_chunks(batch * channels, grain, max_threads, [&](size_t b, size_t e) {
      for (size_t p = b; p < e; ++p) {
        const size_t c = p % channels;
        const float a = a_[c], s = b_[c];
        const float* x = io.in[0] + p * spatial_;
        float* y = io.out[0] + p * spatial_;
        if (act_.is_relu()) {
          // In the same pass (max(0, v) keeps NaN and -0, as the Relu step does).
          for (size_t i = 0; i < spatial_; ++i) {
            const float v = x[i] * a + s;
            y[i] = v < 0.0f ? 0.0f : v;
          }
          continue;
        }
        for (size_t i = 0; i < spatial_; ++i) y[i] = x[i] * a + s;
        act_.apply(y, spatial_);
      }
    });
  }
  bool in_place() const override { return true; }
  size_t weight_bytes() const override { return 2 * a_.size() * sizeof(float); }
  std::string detail() const override { return act_.name(); }

 private:
  std::vector<float> a_, b_;
  size_t spatial_;
  Activation act_;
};

class AffineU8Step : public PlanStep {
 public:
  // Images of `pixels` NHWC pixels of a_.size() channels.
  AffineU8Step(std::vector<float> a, std::vector<float> b, size_t pixels, const U8AffineParams& p, std::string detail)
      : a_(std::move(a)), b_(std::move(b)), pixels_(pixels), p_(p), detail_(std::move(detail)) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const auto* x = reinterpret_cast<const uint8_t*>(io.in[0]);
    auto* y = reinterpret_cast<uint8_t*>(io.out[0]);
    const auto row = dispatch().s8_conv.affine_u8_row;  // one table for the whole step
    const size_t channels = a_.size();
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / channels);
    for_chunks(batch * pixels_, grain, max_threads, [&](size_t b, size_t e) {
      for (size_t r = b; r < e; ++r) row(x + r * channels, a_.data(), b_.data(), y + r * channels, channels, p_);
    });
  }
  bool in_place() const override { return true; }
  size_t weight_bytes() const override { return 2 * a_.size() * sizeof(float); }
  std::string detail() const override { return detail_; }

 private:
  std::vector<float> a_, b_;
  size_t pixels_;
  U8AffineParams p_;
  std::string detail_;
};

// The per-channel affine of weights scale, B, mean, var and attribute epsilon.
void batch_norm_affine(const StepContext& ctx, size_t c, std::vector<float>* a, std::vector<float>* b) {
  const PlanTensor& scale = ctx.weight("scale", {c});
  const PlanTensor& bias = ctx.weight("B", {c});
  const PlanTensor& mean = ctx.weight("mean", {c});
  const PlanTensor& var = ctx.weight("var", {c});
  const double eps = ctx.number_or("epsilon", 1e-5);
  if (eps < 0) ctx.fail("attrs.epsilon", "a number >= 0", std::to_string(eps));
  a->resize(c);
  b->resize(c);
  for (size_t i = 0; i < c; ++i) {
    const double inv = 1.0 / std::sqrt(static_cast<double>(var.data[i]) + eps);
    const double ai = static_cast<double>(scale.data[i]) * inv;
    (*a)[i] = static_cast<float>(ai);
    (*b)[i] = static_cast<float>(static_cast<double>(bias.data[i]) - static_cast<double>(mean.data[i]) * ai);
  }
}

}  // namespace

// Attrs: x_scale, x_zero_point, y_scale, y_zero_point (stored codes), relu (0/1), epsilon;
// weights as BatchNormalization's. Input and output: uint8 images [C, H, W] stored NHWC.
std::unique_ptr<PlanStep> make_batch_norm_u8(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_input_dtype(0, PlanDType::kUint8);
  ctx.expect_output_dtype(0, PlanDType::kUint8);
  const PlanShape& x = ctx.in()[0];
  if (x.size() != 3) ctx.fail("inputs[0]", "a uint8 image [C, H, W] stored NHWC", "per-image shape " + shape_text(x));
  ctx.expect_output_shape(0, x);
  std::vector<float> a, b;
  batch_norm_affine(ctx, x[0], &a, &b);
  U8AffineParams p;
  p.x_scale = scale_attr(ctx, "x_scale");
  p.x_zero_point = zero_point_attr(ctx, "x_zero_point");
  p.y.scale = scale_attr(ctx, "y_scale");
  p.y.zero_point = zero_point_attr(ctx, "y_zero_point");
  p.y.lo = -static_cast<float>(p.y.zero_point);
  p.y.hi = 255.0f - static_cast<float>(p.y.zero_point);
  p.relu = ctx.integer_or("relu", 0, 1, 0) == 1;
  return std::make_unique<AffineU8Step>(std::move(a), std::move(b), x[1] * x[2], p, p.relu ? "u8 NHWC + relu -> u8" : "u8 NHWC -> u8");
}

std::unique_ptr<PlanStep> make_batch_norm(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  const PlanShape& x = ctx.in()[0];
  if (x.empty()) ctx.fail("inputs[0]", "a value of rank >= 2 (N, C, ...)", "per-image shape " + shape_text(x));
  ctx.expect_output_shape(0, x);
  const size_t c = x[0];
  std::vector<float> a, b;
  batch_norm_affine(ctx, c, &a, &b);
  return std::make_unique<AffineStep>(std::move(a), std::move(b), shape_size(x) / c, Activation::parse(ctx));
}

}  // namespace runtime
}  // namespace kiln
