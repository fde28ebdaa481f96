// Gemm: Y[batch x N] = alpha * X[batch x K] * op(B) + beta * C, with B packed once (alpha folded
// into it), C as a column bias and the fused activation. Rows are images, so the batch is M.
#include <sstream>
#include <vector>

#include "kiln/f32-gemm.h"
#include "runtime/activation.h"
#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

class GemmStep : public PlanStep {
 public:
  GemmStep(PackedB packed, std::vector<float> bias, Activation act)
      : packed_(std::move(packed)), bias_(std::move(bias)), act_(act) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    GemmEpilogue ep;
    if (!bias_.empty()) {
      ep.bias = bias_.data();
      ep.bias_mode = BiasMode::kPerColumn;
    }
    ep.relu = act_.is_relu();
    const size_t k = packed_.depth(), n = packed_.cols();
    sgemm_packed_b(batch, false, io.in[0], k, packed_, io.out[0], n, ep, max_threads);
    if (act_.kind != Activation::kNone && !act_.is_relu()) act_.apply(io.out[0], batch * n);
  }
  size_t weight_bytes() const override { return packed_.bytes() + bias_.size() * sizeof(float); }
  std::string detail() const override {
    std::ostringstream s;
    s << packed_.depth() << "->" << packed_.cols();
    if (act_.kind != Activation::kNone) s << " " << act_.name();
    return s.str();
  }

 private:
  PackedB packed_;
  std::vector<float> bias_;
  Activation act_;
};

}  // namespace

std::unique_ptr<PlanStep> make_gemm(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_input_rank(0, 1);
  if (ctx.integer_or("transA", 0, 1, 0) != 0) {
    ctx.fail("attrs.transA", "0 (the batch is the rows of A)", "1");
  }
  const bool trans_b = ctx.integer_or("transB", 0, 1, 0) == 1;
  const double alpha = ctx.number_or("alpha", 1.0);
  const double beta = ctx.number_or("beta", 1.0);
  const size_t k = ctx.in()[0][0];
  const PlanTensor& b = ctx.weight("B");
  if (b.shape.size() != 2) ctx.fail("weights.B", "a 2-D weight", shape_text(b.shape));
  const size_t n = trans_b ? b.shape[0] : b.shape[1];
  ctx.weight("B", trans_b ? std::vector<size_t>{n, k} : std::vector<size_t>{k, n});
  ctx.expect_output_shape(0, {n});

  std::vector<float> bias;
  if (const PlanTensor* c = ctx.weight_opt("C")) {
    // C broadcasts to [batch, N]: allowed shapes [], [1], [N], [1, 1], [1, N].
    const size_t len = c->length;
    const bool ok = c->shape.size() <= 2 && (len == 1 || len == n) &&
                    (c->shape.empty() || c->shape.back() == len) ;
    if (!ok) ctx.fail("weights.C", "a bias broadcastable to [batch, " + std::to_string(n) + "]", shape_text(c->shape));
    if (beta != 0.0) {
      bias.resize(n);
      for (size_t j = 0; j < n; ++j) bias[j] = static_cast<float>(beta * c->data[len == 1 ? 0 : j]);
    }
  }
  PackedB packed;
  if (alpha == 1.0) {
    packed = PackedB(trans_b, k, n, b.data, trans_b ? k : n);
  } else {
    std::vector<float> scaled(b.data, b.data + b.length);
    for (float& v : scaled) v = static_cast<float>(alpha * v);
    packed = PackedB(trans_b, k, n, scaled.data(), trans_b ? k : n);
  }
  return std::make_unique<GemmStep>(std::move(packed), std::move(bias), Activation::parse(ctx));
}

}  // namespace runtime
}  // namespace kiln
