// QLinearAdd of two uint8 values of one layout: y = sat(round_half_even(a_scale / y_scale * (a - a_zp)
// + b_scale / y_scale * (b - b_zp)) + y_zp), each operation rounded to float32 in the order
// docs/int8-ir.md gives (so every implementation gets the same bits); a fused ReLU clamps at y_zp.
// The rows run on the dispatch table's add_u8_row (s8-conv/quantize-rows.h), vectorized per ISA.
#include <sstream>

#include "common/dispatch.h"
#include "s8-conv/quantize-rows.h"
#include "s8-conv/s8-conv-ukernel.h"

#include "runtime/ops/ops.h"
#include "runtime/ops/quant-attrs.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

class QLinearAddStep : public PlanStep {
 public:
  QLinearAddStep(size_t elements, float as, uint8_t az, float bs, uint8_t bz, float ys, uint8_t yz, bool relu)
      : elements_(elements), p_(u8_add_params(as, az, bs, bz, ys, yz, relu)), relu_(relu) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t threads) const override {
    const auto* a = reinterpret_cast<const uint8_t*>(io.in[0]);
    const auto* b = reinterpret_cast<const uint8_t*>(io.in[1]);
    auto* y = reinterpret_cast<uint8_t*>(io.out[0]);
    const S8ConvKernels& k = dispatch().s8_conv;  // one table for the whole step
    for_chunks(batch * elements_, kElementwiseGrain, threads,
               [&](size_t begin, size_t end) { k.add_u8_row(a + begin, b + begin, y + begin, end - begin, p_); });
  }
  bool in_place() const override { return true; }
  std::string detail() const override { return std::string("u8") + (relu_ ? " relu" : ""); }

 private:
  size_t elements_;
  U8AddParams p_;
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
