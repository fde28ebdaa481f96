// MaxPool on a uint8 NHWC value (max is monotone in the stored code, so quantization parameters
// pass through unchanged; int8 values stored with the sign bit flipped order the same way).
#include "kiln/s8-conv.h"
#include "runtime/ops/ops.h"
#include "runtime/ops/pool2d.h"

namespace kiln {
namespace runtime {
namespace {

class MaxPoolU8Step : public PlanStep {
 public:
  MaxPoolU8Step(const Pool2dGeometry& g, size_t channels, std::string detail)
      : g_(g), channels_(channels), detail_(std::move(detail)) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t threads) const override {
    max_pool2d_u8_nhwc(g_, batch, channels_, reinterpret_cast<const uint8_t*>(io.in[0]), reinterpret_cast<uint8_t*>(io.out[0]), threads);
  }
  std::string detail() const override { return "u8 NHWC " + detail_; }

 private:
  Pool2dGeometry g_;
  size_t channels_;
  std::string detail_;
};

}  // namespace

std::unique_ptr<PlanStep> make_max_pool_u8(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_input_rank(0, 3);
  ctx.expect_input_dtype(0, PlanDType::kUint8);
  ctx.expect_output_dtype(0, PlanDType::kUint8);
  const PlanShape& x = ctx.in()[0];
  const Pool2d pool = Pool2d::parse(ctx, "", x, true);
  ctx.expect_output_shape(0, pool.output_shape(x[0], 2));
  const PoolAxis& h = pool.height_axis();
  const PoolAxis& w = pool.width_axis();
  Pool2dGeometry g;
  g.planes = x[0];
  g.in_height = static_cast<size_t>(h.in);
  g.in_width = static_cast<size_t>(w.in);
  g.out_height = static_cast<size_t>(h.out);
  g.out_width = static_cast<size_t>(w.out);
  g.kernel_h = static_cast<size_t>(h.kernel);
  g.kernel_w = static_cast<size_t>(w.kernel);
  g.stride_h = static_cast<size_t>(h.stride);
  g.stride_w = static_cast<size_t>(w.stride);
  g.pad_top = static_cast<size_t>(h.pad_begin);
  g.pad_bottom = static_cast<size_t>(h.pad_end);
  g.pad_left = static_cast<size_t>(w.pad_begin);
  g.pad_right = static_cast<size_t>(w.pad_end);
  g.dilation_h = static_cast<size_t>(h.dilation);
  g.dilation_w = static_cast<size_t>(w.dilation);
  return std::make_unique<MaxPoolU8Step>(g, x[0], pool.detail());
}

}  // namespace runtime
}  // namespace kiln
