// QLinearMul of two uint8 values: y = sat(round_half_even(float32(a_scale * (a - a_zp)) *
// float32(b_scale * (b - b_zp)) / y_scale) + y_zp), each operation rounded to float32 in that
// order (docs/int8-ir.md), so the reference interpreter gets the same bits. b is a value of a's
// layout and shape, or a channel gate [C, 1, 1] (squeeze-and-excitation's Mul), whose dequantized
// values are computed once per image and channel. Scalar: a baseline translation unit, which has
// no FMA to contract the product into.
#include <cmath>
#include <vector>

#include "runtime/ops/ops.h"
#include "runtime/ops/quant-attrs.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

struct MulParams {
  float a_scale, b_scale, y_scale;
  int32_t a_zero_point, b_zero_point;
  float y_zero_point;
};

// Round half to even of |v| <= 2^22 without a libm call (the baseline ISA has no roundss, and
// std::nearbyint is a call per element there): adding 1.5 * 2^23 leaves no fraction bits, so the
// addition itself rounds, in the default round-to-nearest-even mode, and the subtraction is exact.
inline float round_even(float v) {
  constexpr float kMagic = 12582912.0f;
  // (v + kMagic) - kMagic is not v in IEEE arithmetic, so without -ffast-math no compiler folds it.
  return (v + kMagic) - kMagic;
}

inline uint8_t mul_one(uint8_t a, float tb, const MulParams& p) {
  const float ta = p.a_scale * static_cast<float>(static_cast<int32_t>(a) - p.a_zero_point);
  float v = ta * tb / p.y_scale;
  // Clamping before rounding equals saturating after (the bounds are integers) and keeps |v| small.
  const float lo = -p.y_zero_point, hi = 255.0f - p.y_zero_point;
  v = v < lo ? lo : v > hi ? hi : v;
  return static_cast<uint8_t>(round_even(v) + p.y_zero_point);
}

class QLinearMulStep : public PlanStep {
 public:
  // gate: b holds `channels` values per image; nhwc: a's channels are its fastest axis.
  QLinearMulStep(size_t channels, size_t plane, bool gate, bool nhwc, const MulParams& p)
      : channels_(channels), plane_(plane), gate_(gate), nhwc_(nhwc), p_(p) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t threads) const override {
    const auto* a = reinterpret_cast<const uint8_t*>(io.in[0]);
    const auto* b = reinterpret_cast<const uint8_t*>(io.in[1]);
    auto* y = reinterpret_cast<uint8_t*>(io.out[0]);
    const size_t image = channels_ * plane_;
    if (!gate_) {
      for_chunks(batch * image, kElementwiseGrain, threads, [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) y[i] = mul_one(a[i], dequantized_b(b[i]), p_);
      });
      return;
    }
    // Rows: one channel plane (NCHW) or one pixel's channels (NHWC) of one image.
    const size_t rows = nhwc_ ? plane_ : channels_, row = nhwc_ ? channels_ : plane_;
    for (size_t n = 0; n < batch; ++n) {
      std::vector<float> tb(channels_);
      for (size_t c = 0; c < channels_; ++c) tb[c] = dequantized_b(b[n * channels_ + c]);
      const uint8_t* an = a + n * image;
      uint8_t* yn = y + n * image;
      for_chunks(rows, std::max<size_t>(1, kElementwiseGrain / row), threads, [&](size_t r0, size_t r1) {
        for (size_t r = r0; r < r1; ++r) {
          const uint8_t* ar = an + r * row;
          uint8_t* yr = yn + r * row;
          if (nhwc_) {
            for (size_t c = 0; c < row; ++c) yr[c] = mul_one(ar[c], tb[c], p_);
          } else {
            for (size_t i = 0; i < row; ++i) yr[i] = mul_one(ar[i], tb[r], p_);
          }
        }
      });
    }
  }
  bool in_place() const override { return true; }
  std::string detail() const override { return gate_ ? "u8 x channel gate" : "u8"; }

 private:
  float dequantized_b(uint8_t v) const { return p_.b_scale * static_cast<float>(static_cast<int32_t>(v) - p_.b_zero_point); }

  size_t channels_, plane_;
  bool gate_, nhwc_;
  MulParams p_;
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
  MulParams p{scale_attr(ctx, "a_scale"), scale_attr(ctx, "b_scale"), scale_attr(ctx, "y_scale"), zero_point_attr(ctx, "a_zero_point"),
              zero_point_attr(ctx, "b_zero_point"), static_cast<float>(zero_point_attr(ctx, "y_zero_point"))};
  const bool gate = nb != n || channels == n;
  return std::make_unique<QLinearMulStep>(channels, n / channels, gate, ctx.integer_or("nhwc", 0, 1, 0) == 1, p);
}

}  // namespace runtime
}  // namespace kiln
