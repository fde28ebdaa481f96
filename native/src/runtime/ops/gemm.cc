// Gemm: Y[batch x N] = alpha * X[batch x K] * op(B) + beta * C, with B packed once (alpha folded
// into it), C as a column bias and the fused activation. Rows are images, so the batch is M.
// With attr `sparse` = 'always' | 'auto' (session option sparseKernels) and at least half of B
// zeros, B^T (N x K) is packed (as N:M, kiln/sparse-nm.h, when its zeros are exactly N:M along
// K, e.g. the pruner's 2:4; else as unstructured CSR) and the step runs Y^T = B^T * X^T on the sparse
// kernels (X transposed into scratch, Y transposed back); 'auto' times both at plan build on a
// synthetic batch of 1 and of kProbeBatch rows, and runs sparse at batches <= kSmallBatch only when
// it won at 1, at larger batches only when it won at kProbeBatch (a single row gives the sparse
// kernels one lane: SeedCNN's fc1 at 90% zeros is slower sparse at batch 1, faster at 16).
#include <algorithm>
#include <cmath>
#include <memory>
#include <sstream>
#include <vector>

#include "common/dispatch.h"
#include "kiln/cpu.h"
#include "kiln/f32-gemm.h"
#include "kiln/sparse-nm.h"
#include "kiln/sparse.h"
#include "runtime/activation.h"
#include "runtime/ops/ops.h"
#include "runtime/ops/sparse-mode.h"
#include "runtime/parallel.h"
#include "runtime/sparse-choice.h"

namespace kiln {
namespace runtime {
namespace {

constexpr double kSparseFloor = 0.5;
constexpr size_t kProbeBatch = 16;
constexpr size_t kSmallBatch = 4;

class GemmStep : public PlanStep {
 public:
  // `wt`: the weight as N x K (out x in, alpha folded in), for the sparse variant; null = none.
  GemmStep(PackedB packed, std::vector<float> bias, Activation act, const float* wt, bool sparse_auto)
      : packed_(std::move(packed)), bias_(std::move(bias)), act_(act) {
    if (!wt) return;
    const size_t k = packed_.depth(), n = packed_.cols();
    if (k == 0 || n == 0) return;
    size_t zeros = 0;
    for (size_t i = 0; i < n * k; ++i) zeros += wt[i] == 0.0f ? 1 : 0;
    zero_fraction_ = static_cast<double>(zeros) / static_cast<double>(n * k);
    if (zero_fraction_ < kSparseFloor) return;
    considered_ = true;
    // N:M groups of a Linear are M consecutive inputs (spatial 1): the N:M kernels read one
    // index per kept weight from 2-3 bits of metadata instead of a 32-bit column.
    const NmPattern nm = nm_pattern_of(wt, n, k, 1);
    if (nm.n > 0) {
      sparse_nm_ = std::make_unique<const PackedNmF32>(n, k, 1, wt, k, nm.n, nm.m);
    } else {
      sparse_ = std::make_unique<const PackedSparseF32>(n, k, wt, k, SparsePattern::kUnstructured);
    }
    if (sparse_auto) {
      // Remembered per process by everything the timing depends on (sparse-choice.h).
      const uint64_t hash = hash_bytes(bias_.data(), bias_.size() * sizeof(float), hash_bytes(wt, n * k * sizeof(float)));
      auto key = [&](size_t batch) {
        std::ostringstream s;
        s << "Gemm " << k << "x" << n << " act " << static_cast<int>(act_.kind) << " batch " << batch << " isa "
          << isa_name(dispatch().isa) << " w " << hash;
        return s.str();
      };
      sparse_small_ = cached_sparse_choice(key(1), [&] { return sparse_is_faster(1); });
      sparse_large_ = cached_sparse_choice(key(kProbeBatch), [&] { return sparse_is_faster(kProbeBatch); });
      if (!sparse_small_ && !sparse_large_) {
        sparse_.reset();
        sparse_nm_.reset();
      }
    }
  }

  void run(const StepBuffers& io, size_t batch, float* scratch, size_t max_threads) const override {
    run_with(io.in[0], io.out[0], batch, scratch, max_threads, use_sparse(batch));
  }
  size_t scratch_floats(size_t batch, size_t) const override {
    return has_sparse() ? batch * (packed_.depth() + packed_.cols()) : 0;
  }

 private:
  bool has_sparse() const { return sparse_ || sparse_nm_; }
  bool use_sparse(size_t batch) const { return has_sparse() && (batch <= kSmallBatch ? sparse_small_ : sparse_large_); }

  bool sparse_is_faster(size_t batch) const {
    const size_t k = packed_.depth(), n = packed_.cols();
    std::vector<float> x(batch * k), y(batch * n), scratch(batch * (k + n));
    fill_probe(x.data(), x.size());
    return runtime::sparse_is_faster([&] { run_with(x.data(), y.data(), batch, scratch.data(), 1, false); },
                                     [&] { run_with(x.data(), y.data(), batch, scratch.data(), 1, true); });
  }

  // Y^T = B^T * X^T (batch columns) on whichever sparse form was packed.
  void sparse_product(size_t batch, const float* xt, float* yt, const float* bias, size_t max_threads) const {
    if (sparse_nm_) {
      spmm_nm_f32(*sparse_nm_, batch, xt, batch, yt, batch, bias, act_.is_relu(), max_threads);
    } else {
      spmm_f32(*sparse_, batch, xt, batch, yt, batch, bias, act_.is_relu(), max_threads);
    }
  }

  void run_with(const float* x, float* y, size_t batch, float* scratch, size_t max_threads, bool sparse) const {
    const size_t k = packed_.depth(), n = packed_.cols();
    if (sparse) {
      if (batch == 0) return;
      const float* bias = bias_.empty() ? nullptr : bias_.data();
      if (batch == 1) {
        sparse_product(1, x, y, bias, max_threads);
      } else {
        float* xt = scratch;
        float* yt = scratch + batch * k;
        for (size_t b = 0; b < batch; ++b) {
          for (size_t i = 0; i < k; ++i) xt[i * batch + b] = x[b * k + i];
        }
        sparse_product(batch, xt, yt, bias, max_threads);
        for (size_t j = 0; j < n; ++j) {
          for (size_t b = 0; b < batch; ++b) y[b * n + j] = yt[j * batch + b];
        }
      }
      if (act_.kind != Activation::kNone && !act_.is_relu()) act_.apply(y, batch * n);
      return;
    }
    GemmEpilogue ep;
    if (!bias_.empty()) {
      ep.bias = bias_.data();
      ep.bias_mode = BiasMode::kPerColumn;
    }
    ep.relu = act_.is_relu();
    sgemm_packed_b(batch, false, x, k, packed_, y, n, ep, max_threads);
    if (act_.kind != Activation::kNone && !act_.is_relu()) act_.apply(y, batch * n);
  }

 public:
  size_t weight_bytes() const override {
    return packed_.bytes() + bias_.size() * sizeof(float) + (sparse_ ? sparse_->bytes() : 0) +
           (sparse_nm_ ? sparse_nm_->bytes() : 0);
  }
  std::string detail() const override {
    std::ostringstream s;
    s << packed_.depth() << "->" << packed_.cols();
    if (act_.kind != Activation::kNone) s << " " << act_.name();
    if (considered_) {
      int pct = static_cast<int>(std::lround(zero_fraction_ * 100.0));
      if (pct == 100 && zero_fraction_ < 1.0) pct = 99;
      if (has_sparse()) {
        s << " sparse " << (sparse_nm_ ? nm_pattern_name({sparse_nm_->n(), sparse_nm_->m()}) : "unstructured") << " "
          << pct << "%";
        if (!sparse_small_) s << " (batch > " << kSmallBatch << ")";
        if (!sparse_large_) s << " (batch <= " << kSmallBatch << ")";
      } else {
        s << " dense, " << pct << "% zeros";
      }
    }
    return s.str();
  }

 private:
  PackedB packed_;
  std::vector<float> bias_;
  Activation act_;
  bool considered_ = false;
  double zero_fraction_ = 0;
  // At most one is non-null; then the step may run on it.
  std::unique_ptr<const PackedSparseF32> sparse_;  // unstructured CSR
  std::unique_ptr<const PackedNmF32> sparse_nm_;   // N:M
  bool sparse_small_ = true, sparse_large_ = true;  // ... at batches <= kSmallBatch, resp. above
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
  const SparseMode sparse = parse_sparse_mode(ctx);
  std::vector<float> scaled;
  const float* w = b.data;
  if (alpha != 1.0) {
    scaled.assign(b.data, b.data + b.length);
    for (float& v : scaled) v = static_cast<float>(alpha * v);
    w = scaled.data();
  }
  PackedB packed(trans_b, k, n, w, trans_b ? k : n);
  // The sparse variant reads the weight as N x K.
  std::vector<float> wt;
  if (sparse != SparseMode::kNever && k > 0 && n > 0) {
    if (trans_b) {
      wt.assign(w, w + n * k);
    } else {
      wt.resize(n * k);
      for (size_t i = 0; i < k; ++i) {
        for (size_t j = 0; j < n; ++j) wt[j * k + i] = w[i * n + j];
      }
    }
  }
  return std::make_unique<GemmStep>(std::move(packed), std::move(bias), Activation::parse(ctx), wt.empty() ? nullptr : wt.data(),
                                    sparse == SparseMode::kAuto);
}

}  // namespace runtime
}  // namespace kiln
