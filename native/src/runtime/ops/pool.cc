// MaxPool / AveragePool over 1-D or 2-D windows (NCHW), with asymmetric pads, dilations,
// ceil_mode (windows that would start in the end padding are dropped, as in ONNX and PyTorch)
// and count_include_pad (the divisor counts positions inside [-pad_begin, in + pad_end)).
#include "common/dispatch.h"
#include "runtime/ops/ops.h"
#include "runtime/ops/pool2d.h"

namespace kiln {
namespace runtime {
namespace {

class PoolStep : public PlanStep {
 public:
  PoolStep(Pool2d pool, size_t channels) : pool_(pool), channels_(channels) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    pool_.run(io.in[0], io.out[0], batch * channels_, max_threads);
  }
  std::string detail() const override {
    // What the active ISA runs (another setIsa() before a run may choose the other path).
    return pool_.detail() + (pool_.channel_blocks_fit(dispatch()) ? " (channel blocks)" : "");
  }

 private:
  Pool2d pool_;
  size_t channels_;
};

}  // namespace

std::unique_ptr<PlanStep> make_pool(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  const PlanShape& x = ctx.in()[0];
  const Pool2d pool = Pool2d::parse(ctx, "", x, ctx.spec().op == "MaxPool");
  ctx.expect_output_shape(0, pool.output_shape(x[0], x.size() - 1));
  return std::make_unique<PoolStep>(pool, x[0]);
}

}  // namespace runtime
}  // namespace kiln
