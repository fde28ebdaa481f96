// QLinearGlobalAveragePool on a uint8 image: per channel, y = sat(round_half_even(float32(
// float32(sum(x - x_zp)) / float32(H * W)) * x_scale / y_scale) + y_zp), in that order
// (docs/int8-ir.md). The sum is exact in int32 (255 * H * W stays far below 2^31 for any image a
// plan accepts; the check below refuses the rest), so only the three float32 roundings remain.
#include <cmath>
#include <cstdint>
#include <vector>

#include "runtime/ops/ops.h"
#include "runtime/ops/quant-attrs.h"

namespace kiln {
namespace runtime {
namespace {

class GlobalAvgPoolU8Step : public PlanStep {
 public:
  GlobalAvgPoolU8Step(size_t channels, size_t plane, bool nhwc, float xs, uint8_t xz, float ys, uint8_t yz)
      : channels_(channels), plane_(plane), nhwc_(nhwc), xs_(xs), ys_(ys), xz_(xz), yz_(yz) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t) const override {
    const auto* x = reinterpret_cast<const uint8_t*>(io.in[0]);
    auto* y = reinterpret_cast<uint8_t*>(io.out[0]);
    std::vector<int32_t> sum(channels_);
    for (size_t n = 0; n < batch; ++n) {
      const uint8_t* xn = x + n * channels_ * plane_;
      std::fill(sum.begin(), sum.end(), 0);
      if (nhwc_) {
        for (size_t p = 0; p < plane_; ++p) {
          for (size_t c = 0; c < channels_; ++c) sum[c] += xn[p * channels_ + c];
        }
      } else {
        for (size_t c = 0; c < channels_; ++c) {
          int32_t s = 0;
          for (size_t p = 0; p < plane_; ++p) s += xn[c * plane_ + p];
          sum[c] = s;
        }
      }
      const int32_t offset = static_cast<int32_t>(xz_) * static_cast<int32_t>(plane_);
      for (size_t c = 0; c < channels_; ++c) {
        const float mean = static_cast<float>(sum[c] - offset) / static_cast<float>(plane_);
        const float real = mean * xs_;
        const float q = std::nearbyint(real / ys_) + static_cast<float>(yz_);
        y[n * channels_ + c] = static_cast<uint8_t>(q < 0.0f ? 0.0f : q > 255.0f ? 255.0f : q);
      }
    }
  }
  std::string detail() const override { return nhwc_ ? "u8 NHWC" : "u8"; }

 private:
  size_t channels_, plane_;
  bool nhwc_;
  float xs_, ys_;
  uint8_t xz_, yz_;
};

}  // namespace

// Input: uint8 [C, H, W] (nhwc 1: stored NHWC); output uint8 [C, 1, 1]. Attrs: x_scale,
// x_zero_point, y_scale, y_zero_point (stored), nhwc.
std::unique_ptr<PlanStep> make_global_avg_pool_u8(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_input_dtype(0, PlanDType::kUint8);
  ctx.expect_output_dtype(0, PlanDType::kUint8);
  ctx.expect_input_rank(0, 3);
  const PlanShape& in = ctx.in()[0];
  ctx.expect_output_shape(0, {in[0], 1, 1});
  const size_t plane = in[1] * in[2];
  // The int32 sum and the float32 count: exact below 2^24 pixels per channel.
  if (plane == 0 || plane > (size_t{1} << 23)) ctx.fail("inputs[0]", "an image of at most 2^23 pixels", shape_text(in));
  return std::make_unique<GlobalAvgPoolU8Step>(in[0], plane, ctx.integer_or("nhwc", 0, 1, 0) == 1, scale_attr(ctx, "x_scale"),
                                              zero_point_attr(ctx, "x_zero_point"), scale_attr(ctx, "y_scale"), zero_point_attr(ctx, "y_zero_point"));
}

}  // namespace runtime
}  // namespace kiln
