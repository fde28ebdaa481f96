// LayerNormalization over the trailing axes from `axis` on, and GroupNormalization (which also
// runs InstanceNormalization: one group per channel) over groups of consecutive channel planes.
// Statistics are computed per run (they depend on the input); the row kernels come from the
// dispatch table read once per run (norm/norm-ukernel.h).
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "common/dispatch.h"
#include "norm/norm.h"
#include "runtime/ops/ops.h"

namespace kiln {
namespace runtime {
namespace {

class LayerNormStep : public PlanStep {
 public:
  LayerNormStep(size_t rows, size_t d, std::vector<float> scale, std::vector<float> bias, float epsilon)
      : rows_(rows), d_(d), scale_(std::move(scale)), bias_(std::move(bias)), epsilon_(epsilon) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    layer_norm_forward(dispatch().f32_norm, io.in[0], io.out[0], batch * rows_, d_, scale_.data(),
                       bias_.empty() ? nullptr : bias_.data(), epsilon_, max_threads);
  }
  bool in_place() const override { return true; }
  size_t weight_bytes() const override { return (scale_.size() + bias_.size()) * sizeof(float); }
  std::string detail() const override {
    std::ostringstream s;
    s << rows_ << " rows of " << d_ << " eps " << epsilon_;
    return s.str();
  }

 private:
  size_t rows_, d_;
  std::vector<float> scale_, bias_;
  float epsilon_;
};

// LayerNormalization's optional outputs: one Mean or InvStdDev value per row (the statistics the
// Y step computes again: they are read only by training graphs and the conformance tests).
class LayerNormStatsStep : public PlanStep {
 public:
  LayerNormStatsStep(size_t rows, size_t d, bool inv_std_dev, float epsilon)
      : rows_(rows), d_(d), inv_std_dev_(inv_std_dev), epsilon_(epsilon) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t) const override {
    const F32NormKernels& k = dispatch().f32_norm;
    for (size_t r = 0; r < batch * rows_; ++r) {
      float mean, var;
      k.moments(io.in[0] + r * d_, d_, &mean, &var);
      io.out[0][r] = inv_std_dev_ ? 1.0f / std::sqrt(var + epsilon_) : mean;
    }
  }
  std::string detail() const override { return std::string(inv_std_dev_ ? "InvStdDev" : "Mean") + " of " + std::to_string(rows_) + " rows"; }

 private:
  size_t rows_, d_;
  bool inv_std_dev_;
  float epsilon_;
};

class GroupNormStep : public PlanStep {
 public:
  GroupNormStep(size_t channels, size_t groups, size_t spatial, std::vector<float> scale, std::vector<float> bias,
                float epsilon)
      : channels_(channels), groups_(groups), spatial_(spatial), scale_(std::move(scale)), bias_(std::move(bias)),
        epsilon_(epsilon) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    group_norm_forward(dispatch().f32_norm, io.in[0], io.out[0], batch, channels_, groups_, spatial_, scale_.data(),
                       bias_.data(), epsilon_, max_threads);
  }
  bool in_place() const override { return true; }
  size_t weight_bytes() const override { return (scale_.size() + bias_.size()) * sizeof(float); }
  std::string detail() const override {
    std::ostringstream s;
    s << groups_ << " groups of " << channels_ / groups_ << "x" << spatial_ << " eps " << epsilon_;
    return s.str();
  }

 private:
  size_t channels_, groups_, spatial_;
  std::vector<float> scale_, bias_;
  float epsilon_;
};

float epsilon_of(const StepContext& ctx) {
  const double eps = ctx.number_or("epsilon", 1e-5);
  if (eps < 0) ctx.fail("attrs.epsilon", "a number >= 0", std::to_string(eps));
  return static_cast<float>(eps);
}

}  // namespace

// attrs: axis (ONNX numbering, the batch is axis 0, so >= 1), epsilon, output ('Y', default, or
// 'Mean' / 'InvStdDev': one value per row, the normalized dims kept as 1s); weights (Y only):
// scale [D] and optional B [D], D the product of the normalized dims (broadcast by the lowering).
std::unique_ptr<PlanStep> make_layer_norm(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  const PlanShape& x = ctx.in()[0];
  if (x.empty()) ctx.fail("inputs[0]", "a value of rank >= 2", "per-image shape " + shape_text(x));
  const size_t axis = static_cast<size_t>(ctx.integer("axis", 1, static_cast<int64_t>(x.size())));
  const size_t rows = shape_size(PlanShape(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(axis - 1)));
  const size_t d = shape_size(PlanShape(x.begin() + static_cast<std::ptrdiff_t>(axis - 1), x.end()));
  const std::string output = ctx.choice_or("output", {"Y", "Mean", "InvStdDev"}, "Y");
  if (output != "Y") {
    PlanShape stats(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(axis - 1));
    stats.resize(x.size(), 1);
    ctx.expect_output_shape(0, stats);
    if (d == 0) ctx.fail("inputs[0]", "a value with normalized elements", "per-image shape " + shape_text(x));
    return std::make_unique<LayerNormStatsStep>(rows, d, output == "InvStdDev", epsilon_of(ctx));
  }
  ctx.expect_output_shape(0, x);
  const PlanTensor& scale = ctx.weight("scale", {d});
  const PlanTensor* bias = ctx.weight_opt("B", {d});
  std::vector<float> s(scale.data, scale.data + d), b;
  if (bias) b.assign(bias->data, bias->data + d);
  return std::make_unique<LayerNormStep>(rows, d, std::move(s), std::move(b), epsilon_of(ctx));
}

// attrs: groups (dividing C), epsilon; weights: scale [C] and B [C] (per channel; the lowering
// expands opset-18 per-group ones).
std::unique_ptr<PlanStep> make_group_norm(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  const PlanShape& x = ctx.in()[0];
  if (x.empty()) ctx.fail("inputs[0]", "a value of rank >= 2 (N, C, ...)", "per-image shape " + shape_text(x));
  ctx.expect_output_shape(0, x);
  const size_t c = x[0];
  const size_t groups = static_cast<size_t>(ctx.integer("groups", 1, static_cast<int64_t>(c)));
  if (c % groups != 0) ctx.fail("attrs.groups", "a divisor of the " + std::to_string(c) + " channels", std::to_string(groups));
  const PlanTensor& scale = ctx.weight("scale", {c});
  const PlanTensor& bias = ctx.weight("B", {c});
  return std::make_unique<GroupNormStep>(c, groups, shape_size(x) / c, std::vector<float>(scale.data, scale.data + c),
                                         std::vector<float>(bias.data, bias.data + c), epsilon_of(ctx));
}

}  // namespace runtime
}  // namespace kiln
