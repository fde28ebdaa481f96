// LRN (ONNX): y = x / (bias + alpha / size * sum of x^2 over the channels
// [c - floor((size-1)/2), c + ceil((size-1)/2)])^beta, per spatial position.
#include <cmath>
#include <sstream>
#include <vector>

#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

class LrnStep : public PlanStep {
 public:
  LrnStep(size_t channels, size_t spatial, int64_t size, double alpha, double beta, double bias)
      : channels_(channels), spatial_(spatial), size_(size), alpha_(alpha), beta_(beta), bias_(bias) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const int64_t before = (size_ - 1) / 2, after = size_ - 1 - before;
    const int64_t c_count = static_cast<int64_t>(channels_);
    const double scale = alpha_ / static_cast<double>(size_);
    // One task per (image, channel): reads a few neighbouring planes, writes its own.
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / spatial_);
    for_chunks(batch * channels_, grain, max_threads, [&](size_t b, size_t e) {
      for (size_t p = b; p < e; ++p) {
        const size_t n = p / channels_;
        const int64_t c = static_cast<int64_t>(p % channels_);
        const float* image = io.in[0] + n * channels_ * spatial_;
        const float* x = image + c * spatial_;
        float* y = io.out[0] + p * spatial_;
        const int64_t lo = std::max<int64_t>(0, c - before), hi = std::min<int64_t>(c_count - 1, c + after);
        for (size_t s = 0; s < spatial_; ++s) {
          double sq = 0;
          for (int64_t k = lo; k <= hi; ++k) {
            const double v = image[k * spatial_ + s];
            sq += v * v;
          }
          y[s] = static_cast<float>(x[s] / std::pow(bias_ + scale * sq, beta_));
        }
      }
    });
  }
  std::string detail() const override {
    std::ostringstream s;
    s << "size " << size_ << " alpha " << alpha_ << " beta " << beta_ << " bias " << bias_;
    return s.str();
  }

 private:
  size_t channels_, spatial_;
  int64_t size_;
  double alpha_, beta_, bias_;
};

}  // namespace

std::unique_ptr<PlanStep> make_lrn(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  const PlanShape& x = ctx.in()[0];
  if (x.size() < 2) ctx.fail("inputs[0]", "a value of rank >= 3 (N, C, spatial...)", "per-image shape " + shape_text(x));
  ctx.expect_output_shape(0, x);
  const int64_t size = ctx.integer("size", 1, int64_t{1} << 31);
  const double bias = ctx.number_or("bias", 1.0);
  if (bias <= 0) ctx.fail("attrs.bias", "a positive number", std::to_string(bias));
  return std::make_unique<LrnStep>(x[0], shape_size(x) / x[0], size, ctx.number_or("alpha", 1e-4),
                                   ctx.number_or("beta", 0.75), bias);
}

}  // namespace runtime
}  // namespace kiln
