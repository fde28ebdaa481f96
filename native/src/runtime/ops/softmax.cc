// Softmax / LogSoftmax over one axis (opset-13 semantics), stable: the max is subtracted first.
#include <cmath>
#include <vector>

#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

class SoftmaxStep : public PlanStep {
 public:
  SoftmaxStep(bool log, size_t outer, size_t dim, size_t inner) : log_(log), outer_(outer), dim_(dim), inner_(inner) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const size_t lines = batch * outer_ * inner_;
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / dim_);
    for_chunks(lines, grain, max_threads, [&](size_t b, size_t e) {
      for (size_t l = b; l < e; ++l) {
        const size_t o = l / inner_, i = l % inner_;
        const size_t base = o * dim_ * inner_ + i;
        line(io.in[0] + base, io.out[0] + base);
      }
    });
  }
  bool in_place() const override { return true; }

 private:
  void line(const float* x, float* y) const {
    const size_t s = inner_;
    float max = x[0];
    for (size_t j = 1; j < dim_; ++j) max = x[j * s] > max ? x[j * s] : max;
    double sum = 0;
    if (log_) {
      for (size_t j = 0; j < dim_; ++j) sum += std::exp(static_cast<double>(x[j * s] - max));
      const float lse = static_cast<float>(std::log(sum));
      for (size_t j = 0; j < dim_; ++j) y[j * s] = x[j * s] - max - lse;
    } else {
      for (size_t j = 0; j < dim_; ++j) {
        const float e = std::exp(x[j * s] - max);
        y[j * s] = e;
        sum += e;
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (size_t j = 0; j < dim_; ++j) y[j * s] *= inv;
    }
  }

  bool log_;
  size_t outer_, dim_, inner_;
};

}  // namespace

std::unique_ptr<PlanStep> make_softmax(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  const PlanShape& x = ctx.in()[0];
  if (x.empty()) ctx.fail("inputs[0]", "a value of rank >= 2 (softmax over the batch axis is not supported)", "rank 1");
  ctx.expect_output_shape(0, x);
  // `axis` counts the batch (ONNX numbering); normalised to >= 1 by the compiler.
  const size_t a = static_cast<size_t>(ctx.integer("axis", 1, static_cast<int64_t>(x.size())) - 1);
  size_t outer = 1, inner = 1;
  for (size_t d = 0; d < a; ++d) outer *= x[d];
  for (size_t d = a + 1; d < x.size(); ++d) inner *= x[d];
  return std::make_unique<SoftmaxStep>(ctx.spec().op == "LogSoftmax", outer, x[a], inner);
}

}  // namespace runtime
}  // namespace kiln
