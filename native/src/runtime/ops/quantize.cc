// The int8 region's boundaries and layout changes: QuantizeLinear (float NCHW -> uint8 NHWC),
// DequantizeLinear (uint8 NHWC -> float NCHW) and TransposeU8 (a per-image [rows][cols] ->
// [cols][rows] transpose of a uint8 value: NHWC <-> NCHW where a reshape needs the NCHW order).
// `channels` names the C of the NCHW side; channels = 1 is a plain (de)quantize.
#include <sstream>

#include "kiln/s8-conv.h"
#include "runtime/ops/ops.h"
#include "runtime/ops/quant-attrs.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

constexpr int64_t kMaxDim = int64_t{1} << 31;

struct Layout {
  size_t channels = 1, plane = 1;
};

Layout read_layout(const StepContext& ctx, size_t elements) {
  Layout l;
  l.channels = static_cast<size_t>(ctx.integer_or("channels", 1, kMaxDim, 1));
  if (elements % l.channels != 0) {
    ctx.fail("attrs.channels", "a divisor of the " + std::to_string(elements) + " elements per image", std::to_string(l.channels));
  }
  l.plane = elements / l.channels;
  return l;
}

class QuantizeStep : public PlanStep {
 public:
  QuantizeStep(Layout l, float scale, uint8_t zp) : l_(l), scale_(scale), zp_(zp) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t threads) const override {
    quantize_u8_nchw_to_nhwc(io.in[0], reinterpret_cast<uint8_t*>(io.out[0]), batch, l_.channels, l_.plane, scale_, zp_, threads);
  }
  bool input_pass() const override { return true; }
  std::string detail() const override {
    std::ostringstream s;
    s << "f32 -> u8" << (l_.channels > 1 && l_.plane > 1 ? " NCHW->NHWC" : "") << " scale " << scale_ << " zp " << int(zp_);
    return s.str();
  }

 private:
  Layout l_;
  float scale_;
  uint8_t zp_;
};

class DequantizeStep : public PlanStep {
 public:
  DequantizeStep(Layout l, float scale, uint8_t zp) : l_(l), scale_(scale), zp_(zp) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t threads) const override {
    dequantize_u8_nhwc_to_nchw(reinterpret_cast<const uint8_t*>(io.in[0]), io.out[0], batch, l_.channels, l_.plane, scale_, zp_, threads);
  }
  std::string detail() const override {
    std::ostringstream s;
    s << "u8 -> f32" << (l_.channels > 1 && l_.plane > 1 ? " NHWC->NCHW" : "") << " scale " << scale_ << " zp " << int(zp_);
    return s.str();
  }

 private:
  Layout l_;
  float scale_;
  uint8_t zp_;
};

class TransposeU8Step : public PlanStep {
 public:
  TransposeU8Step(size_t rows, size_t cols) : rows_(rows), cols_(cols) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t threads) const override {
    const auto* in = reinterpret_cast<const uint8_t*>(io.in[0]);
    auto* out = reinterpret_cast<uint8_t*>(io.out[0]);
    const size_t image = rows_ * cols_;
    for_chunks(batch, 1, threads, [&](size_t b0, size_t b1) {
      for (size_t b = b0; b < b1; ++b) {
        const uint8_t* x = in + b * image;
        uint8_t* y = out + b * image;
        for (size_t r = 0; r < rows_; ++r) {
          for (size_t c = 0; c < cols_; ++c) y[c * rows_ + r] = x[r * cols_ + c];
        }
      }
    });
  }
  std::string detail() const override { return std::to_string(rows_) + "x" + std::to_string(cols_) + " -> " + std::to_string(cols_) + "x" + std::to_string(rows_); }

 private:
  size_t rows_, cols_;
};

size_t elements(const PlanShape& s) { return shape_size(s); }

}  // namespace

std::unique_ptr<PlanStep> make_quantize(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_input_dtype(0, PlanDType::kFloat32);
  ctx.expect_output_dtype(0, PlanDType::kUint8);
  const size_t n = elements(ctx.in()[0]);
  if (elements(ctx.out()[0]) != n) ctx.expect_output_shape(0, ctx.in()[0]);
  return std::make_unique<QuantizeStep>(read_layout(ctx, n), scale_attr(ctx, "scale"), zero_point_attr(ctx, "zero_point"));
}

std::unique_ptr<PlanStep> make_dequantize(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_input_dtype(0, PlanDType::kUint8);
  ctx.expect_output_dtype(0, PlanDType::kFloat32);
  const size_t n = elements(ctx.in()[0]);
  if (elements(ctx.out()[0]) != n) ctx.expect_output_shape(0, ctx.in()[0]);
  return std::make_unique<DequantizeStep>(read_layout(ctx, n), scale_attr(ctx, "scale"), zero_point_attr(ctx, "zero_point"));
}

std::unique_ptr<PlanStep> make_transpose_u8(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_input_dtype(0, PlanDType::kUint8);
  ctx.expect_output_dtype(0, PlanDType::kUint8);
  const size_t n = elements(ctx.in()[0]);
  const size_t rows = static_cast<size_t>(ctx.integer("rows", 1, kMaxDim));
  const size_t cols = static_cast<size_t>(ctx.integer("cols", 1, kMaxDim));
  if (rows * cols != n) ctx.fail("attrs.cols", std::to_string(n) + " / rows (" + std::to_string(rows) + ")", std::to_string(cols));
  if (elements(ctx.out()[0]) != n) ctx.expect_output_shape(0, ctx.in()[0]);
  return std::make_unique<TransposeU8Step>(rows, cols);
}

}  // namespace runtime
}  // namespace kiln
