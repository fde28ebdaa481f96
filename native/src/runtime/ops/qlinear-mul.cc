// QLinearMul of two uint8 values: y = sat(round_half_even(float32(a_scale * (a - a_zp)) *
// float32(b_scale * (b - b_zp)) / y_scale) + y_zp), each operation rounded to float32 in that
// order (docs/int8-ir.md), so the reference interpreter gets the same bits. b is a value of a's
// layout and shape, or a channel gate [C, 1, 1] (squeeze-and-excitation's Mul). b is dequantized
// here (once per image and channel for a gate); the rows run on the dispatch table's mul_u8_row
// (s8-conv/quantize-rows.h), vectorized per ISA.
#include <algorithm>
#include <vector>

#include "common/dispatch.h"
#include "runtime/ops/ops.h"
#include "runtime/ops/quant-attrs.h"
#include "runtime/parallel.h"
#include "s8-conv/quantize-rows.h"
#include "s8-conv/s8-conv-ukernel.h"

namespace kiln {
namespace runtime {
namespace {

class QLinearMulStep : public PlanStep {
 public:
  // gate: b holds `channels` values per image; nhwc: a's channels are its fastest axis.
  QLinearMulStep(size_t channels, size_t plane, bool gate, bool nhwc, const U8MulParams& p, float b_scale, int32_t b_zero_point)
      : channels_(channels), plane_(plane), gate_(gate), nhwc_(nhwc), p_(p), b_scale_(b_scale), b_zero_point_(b_zero_point) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t threads) const override {
    const auto* a = reinterpret_cast<const uint8_t*>(io.in[0]);
    const auto* b = reinterpret_cast<const uint8_t*>(io.in[1]);
    auto* y = reinterpret_cast<uint8_t*>(io.out[0]);
    const S8ConvKernels& k = dispatch().s8_conv;  // one table for the whole step
    const size_t image = channels_ * plane_;
    if (!gate_) {
      for_chunks(batch * image, kElementwiseGrain, threads, [&](size_t begin, size_t end) {
        float tb[256];
        for (size_t i = begin; i < end; i += 256) {
          const size_t m = std::min<size_t>(256, end - i);
          for (size_t j = 0; j < m; ++j) tb[j] = dequantized_b(b[i + j]);
          k.mul_u8_row(a + i, tb, false, y + i, m, p_);
        }
      });
      return;
    }
    // Rows: one pixel's channels (NHWC, the gate read per channel) or one channel's plane (NCHW,
    // one gate value for the row), of one image.
    const size_t rows = nhwc_ ? plane_ : channels_, row = nhwc_ ? channels_ : plane_;
    std::vector<float> tb(channels_);
    for (size_t n = 0; n < batch; ++n) {
      for (size_t c = 0; c < channels_; ++c) tb[c] = dequantized_b(b[n * channels_ + c]);
      const uint8_t* an = a + n * image;
      uint8_t* yn = y + n * image;
      for_chunks(rows, std::max<size_t>(1, kElementwiseGrain / row), threads, [&](size_t r0, size_t r1) {
        for (size_t r = r0; r < r1; ++r) k.mul_u8_row(an + r * row, nhwc_ ? tb.data() : tb.data() + r, !nhwc_, yn + r * row, row, p_);
      });
    }
  }
  bool in_place() const override { return true; }
  std::string detail() const override { return gate_ ? "u8 x channel gate" : "u8"; }

 private:
  float dequantized_b(uint8_t v) const { return b_scale_ * static_cast<float>(static_cast<int32_t>(v) - b_zero_point_); }

  size_t channels_, plane_;
  bool gate_, nhwc_;
  U8MulParams p_;
  float b_scale_;
  int32_t b_zero_point_;
};

}  // namespace

// Attrs: a_scale, a_zero_point, b_scale, b_zero_point, y_scale, y_zero_point (stored), channels
// (C of a's NCHW shape), nhwc (1: a is stored NHWC). Input 1: a's per-image shape, or C values.
std::unique_ptr<PlanStep> make_qlinear_mul(const StepContext& ctx) {
  ctx.expect_inputs(2, 2);
  ctx.expect_outputs(1);
  ctx.expect_input_dtype(0, PlanDType::kUint8);
  ctx.expect_input_dtype(1, PlanDType::kUint8);
  ctx.expect_output_dtype(0, PlanDType::kUint8);
  ctx.expect_output_shape(0, ctx.in()[0]);
  const size_t n = shape_size(ctx.in()[0]);
  const size_t channels = static_cast<size_t>(ctx.integer("channels", 1, static_cast<int64_t>(n)));
  if (n % channels != 0) ctx.fail("attrs.channels", "a divisor of the " + std::to_string(n) + " elements per image", std::to_string(channels));
  const size_t nb = shape_size(ctx.in()[1]);
  if (nb != n && nb != channels) {
    ctx.fail("inputs[1]", "a value of per-image shape " + shape_text(ctx.in()[0]) + " or " + std::to_string(channels) + " channel values", shape_text(ctx.in()[1]));
  }
  U8MulParams p;
  p.a_scale = scale_attr(ctx, "a_scale");
  p.a_zero_point = zero_point_attr(ctx, "a_zero_point");
  p.y_scale = scale_attr(ctx, "y_scale");
  p.y_zero_point = static_cast<float>(zero_point_attr(ctx, "y_zero_point"));
  const bool gate = nb != n || channels == n;
  return std::make_unique<QLinearMulStep>(channels, n / channels, gate, ctx.integer_or("nhwc", 0, 1, 0) == 1, p, scale_attr(ctx, "b_scale"),
                                          zero_point_attr(ctx, "b_zero_point"));
}

}  // namespace runtime
}  // namespace kiln
