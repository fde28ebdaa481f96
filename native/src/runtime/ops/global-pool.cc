// GlobalAveragePool / GlobalMaxPool: one value per (image, channel) over all spatial positions.
#include <algorithm>

#include "common/dispatch.h"
#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

class GlobalPoolStep : public PlanStep {
 public:
  GlobalPoolStep(bool max, size_t channels, size_t spatial) : max_(max), channels_(channels), spatial_(spatial) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    // One contiguous row of `spatial_` values per (image, channel): the reduction kernels of
    // ReduceMean / ReduceMax over the same axes.
    const F32ReduceRowsFn rows = dispatch().f32_math.reduce_rows;
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / spatial_);
    for_chunks(batch * channels_, grain, max_threads, [&](size_t b, size_t e) {
      float* y = io.out[0];
      rows(max_ ? F32ReduceKind::kMax : F32ReduceKind::kSum, io.in[0] + b * spatial_, e - b, spatial_, y + b);
      if (!max_) {
        for (size_t p = b; p < e; ++p) y[p] = static_cast<float>(static_cast<double>(y[p]) / static_cast<double>(spatial_));
      }
    });
  }

 private:
  bool max_;
  size_t channels_, spatial_;
};

}  // namespace

std::unique_ptr<PlanStep> make_global_pool(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  const PlanShape& x = ctx.in()[0];
  if (x.size() < 2) ctx.fail("inputs[0]", "a value of rank >= 3 (N, C, spatial...)", "per-image shape " + shape_text(x));
  PlanShape out(x.size(), 1);
  out[0] = x[0];
  ctx.expect_output_shape(0, out);
  return std::make_unique<GlobalPoolStep>(ctx.spec().op == "GlobalMaxPool", x[0], shape_size(x) / x[0]);
}

}  // namespace runtime
}  // namespace kiln
