// QLinearAdd of two uint8 values of one layout: y = sat(round_half_even((a_scale * (a - a_zp) +
// b_scale * (b - b_zp)) / y_scale) + y_zp), each operation rounded to float32 in the order
// docs/int8-ir.md gives (so every implementation gets the same bits); a fused ReLU clamps at y_zp.
// The per-input terms take 256 values each: they are tabulated once per plan.
#include <cmath>
#include <sstream>

#include "runtime/ops/ops.h"
#include "runtime/ops/quant-attrs.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

class QLinearAddStep : public PlanStep {
 public:
  QLinearAddStep(size_t elements, float as, uint8_t az, float bs, uint8_t bz, float ys, uint8_t yz, bool relu)
      : elements_(elements), y_scale_(ys), y_zp_(yz), y_min_(relu ? yz : 0), relu_(relu) {
    for (int q = 0; q < 256; ++q) {
      a_[q] = static_cast<float>(static_cast<double>(as) * (q - az));
      b_[q] = static_cast<float>(static_cast<double>(bs) * (q - bz));
    }
  }

  void run(const StepBuffers& io, size_t batch, float*, size_t threads) const override {
    const auto* a = reinterpret_cast<const uint8_t*>(io.in[0]);
    const auto* b = reinterpret_cast<const uint8_t*>(io.in[1]);
    auto* y = reinterpret_cast<uint8_t*>(io.out[0]);
    for_chunks(batch * elements_, kElementwiseGrain, threads, [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) {
        const float real = a_[a[i]] + b_[b[i]];
        const float r = std::nearbyint(real / y_scale_);
        const float q = r + static_cast<float>(y_zp_);  // exact: |r| is small or saturates anyway
        y[i] = q < y_min_ ? y_min_ : q > 255.0f ? 255 : static_cast<uint8_t>(q);
      }
    });
  }
  bool in_place() const override { return true; }
  std::string detail() const override { return std::string("u8") + (relu_ ? " relu" : ""); }

 private:
  size_t elements_;
  float a_[256], b_[256];
  float y_scale_;
  uint8_t y_zp_, y_min_;
  bool relu_;
};

}  // namespace

std::unique_ptr<PlanStep> make_qlinear_add(const StepContext& ctx) {
  ctx.expect_inputs(2, 2);
  ctx.expect_outputs(1);
  ctx.expect_input_dtype(0, PlanDType::kUint8);
  ctx.expect_input_dtype(1, PlanDType::kUint8);
  ctx.expect_output_dtype(0, PlanDType::kUint8);
  const size_t n = shape_size(ctx.in()[0]);
  if (shape_size(ctx.in()[1]) != n) ctx.fail("inputs[1]", "a value of per-image shape " + shape_text(ctx.in()[0]), shape_text(ctx.in()[1]));
  if (shape_size(ctx.out()[0]) != n) ctx.expect_output_shape(0, ctx.in()[0]);
  return std::make_unique<QLinearAddStep>(n, scale_attr(ctx, "a_scale"), zero_point_attr(ctx, "a_zero_point"), scale_attr(ctx, "b_scale"),
                                          zero_point_attr(ctx, "b_zero_point"), scale_attr(ctx, "y_scale"),
                                          zero_point_attr(ctx, "y_zero_point"), ctx.integer_or("relu", 0, 1, 0) == 1);
}

}  // namespace runtime
}  // namespace kiln
