// MatMul with numpy semantics: 1-D operands promoted, batch dimensions broadcast. Either operand
// may be a constant weight ("A" or "B"), packed once. Two layouts:
// - rows: A is [batch, K] (or [batch, ..., M, K] against one constant matrix B): one GEMM whose
//   rows span every image;
// - batched: one product per (image, batch index), spread over threads.
#include <sstream>

#include "kiln/f32-gemm.h"
#include "kiln/thread-pool.h"
#include "runtime/ops/ops.h"

namespace kiln {
namespace runtime {
namespace {

struct MatOperand {
  bool is_const = false;
  std::vector<size_t> batch_dims;  // per-image batch dims aligned to the output's (1 = broadcast)
  size_t image = 0;                // floats per image (values) or 0 (constants)
};

class MatMulStep : public PlanStep {
 public:
  MatMulStep(size_t m, size_t k, size_t n) : m_(m), k_(k), n_(n) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    if (rows_mode_) {
      sgemm_packed_b(batch * rows_per_image_, false, io.in[0], k_, packed_b_[0], io.out[0], n_, GemmEpilogue(), max_threads);
      return;
    }
    const float* a_val = a_.is_const ? nullptr : io.in[0];
    const float* b_val = b_.is_const ? nullptr : io.in[a_.is_const ? 0 : 1];
    const size_t per_image = product(out_batch_);
    const size_t total = batch * per_image;
    auto one = [&](size_t t, size_t threads) {
      const size_t img = t / per_image;
      size_t rest = t % per_image, ia = 0, ib = 0, stride_a = 1, stride_b = 1;
      // Matrix index of each operand from the output batch index (broadcast dims contribute 0).
      for (size_t d = out_batch_.size(); d-- > 0;) {
        const size_t i = rest % out_batch_[d];
        rest /= out_batch_[d];
        if (a_.batch_dims[d] != 1) ia += i * stride_a;
        if (b_.batch_dims[d] != 1) ib += i * stride_b;
        stride_a *= a_.batch_dims[d];
        stride_b *= b_.batch_dims[d];
      }
      float* c = io.out[0] + t * m_ * n_;
      if (a_.is_const) {
        sgemm_packed_a(packed_a_[ia], n_, false, b_val + img * b_.image + ib * k_ * n_, n_, c, n_, GemmEpilogue(), threads);
      } else if (b_.is_const) {
        sgemm_packed_b(m_, false, a_val + img * a_.image + ia * m_ * k_, k_, packed_b_[ib], c, n_, GemmEpilogue(), threads);
      } else {
        sgemm(false, false, m_, n_, k_, 1.0f, a_val + img * a_.image + ia * m_ * k_, k_,
              b_val + img * b_.image + ib * k_ * n_, n_, 0.0f, c, n_, GemmEpilogue(), threads);
      }
    };
    if (total == 1) {
      one(0, max_threads);
    } else {
      parallel_for(total, [&](size_t t) { one(t, 1); }, max_threads);
    }
  }
  size_t weight_bytes() const override {
    size_t bytes = 0;
    for (const PackedA& p : packed_a_) bytes += p.bytes();
    for (const PackedB& p : packed_b_) bytes += p.bytes();
    return bytes;
  }
  std::string detail() const override {
    std::ostringstream s;
    s << m_ << "x" << k_ << "x" << n_ << (rows_mode_ ? " rows" : " batched");
    return s.str();
  }

  static size_t product(const std::vector<size_t>& v) {
    size_t p = 1;
    for (size_t d : v) p *= d;
    return p;
  }

  size_t m_, k_, n_;
  bool rows_mode_ = false;
  size_t rows_per_image_ = 0;
  MatOperand a_, b_;
  std::vector<size_t> out_batch_;
  std::vector<PackedA> packed_a_;
  std::vector<PackedB> packed_b_;
};

}  // namespace

std::unique_ptr<PlanStep> make_matmul(const StepContext& ctx) {
  ctx.expect_outputs(1);
  const PlanTensor* a_w = ctx.weight_opt("A");
  const PlanTensor* b_w = ctx.weight_opt("B");
  if (a_w && b_w) ctx.fail("weights", "at most one constant operand", "two (fold constants first)");
  const size_t values = (a_w || b_w) ? 1 : 2;
  ctx.expect_inputs(values, values);
  // Full shapes; a value's leading 0 stands for the batch.
  std::vector<size_t> a_full, b_full;
  if (a_w) {
    a_full = a_w->shape;
  } else {
    a_full = {0};
    a_full.insert(a_full.end(), ctx.in()[0].begin(), ctx.in()[0].end());
  }
  if (b_w) {
    b_full = b_w->shape;
  } else {
    const PlanShape& s = ctx.in()[a_w ? 0 : 1];
    b_full = {0};
    b_full.insert(b_full.end(), s.begin(), s.end());
  }
  if (a_full.empty() || b_full.empty()) ctx.fail("weights", "operands of rank >= 1", "a scalar");
  const bool drop_m = a_full.size() == 1, drop_n = b_full.size() == 1;
  if (drop_m) a_full.insert(a_full.begin(), 1);
  if (drop_n) b_full.push_back(1);
  const size_t m = a_full[a_full.size() - 2], k = a_full.back();
  const size_t kb = b_full[b_full.size() - 2], n = b_full.back();
  auto step = std::make_unique<MatMulStep>(a_w ? m : 1, k, n);
  if (!a_w && a_full.size() == 2) {
    // A is [batch, K]: its rows are the images, against a constant matrix B.
    if (!b_w || b_full.size() != 2) {
      ctx.fail("inputs", "a constant 1-D or 2-D B for a 2-D A (the batch is A's rows)",
               "B " + shape_text(b_full) + (b_w ? "" : " (a value; 0 = batch)"));
    }
    if (k != kb) ctx.fail("inputs", "inner dimensions that agree", "A [batch, " + std::to_string(k) + "], B " + shape_text(b_full));
    step->rows_mode_ = true;
    step->rows_per_image_ = 1;
    step->packed_b_.emplace_back(false, k, n, b_w->data, n);
    PlanShape out;
    if (!drop_n) out.push_back(n);
    ctx.expect_output_shape(0, out);
    return step;
  }
  if (m == 0 || k == 0 || kb == 0 || n == 0) {
    ctx.fail("inputs", "a batch that is not a matrix dimension (the batch must be the leading dimension)",
             "A " + shape_text(a_full) + ", B " + shape_text(b_full) + " (0 = batch)");
  }
  if (k != kb) ctx.fail("inputs", "inner dimensions that agree", "A " + shape_text(a_full) + ", B " + shape_text(b_full) + " (0 = batch)");
  step->m_ = m;
  std::vector<size_t> a_b(a_full.begin(), a_full.end() - 2), b_b(b_full.begin(), b_full.end() - 2);
  const size_t rank = std::max(a_b.size(), b_b.size());
  a_b.insert(a_b.begin(), rank - a_b.size(), 1);
  b_b.insert(b_b.begin(), rank - b_b.size(), 1);
  // The batch (0) must be the output's leading dimension in every value operand.
  const bool a_ok = a_w ? a_b[0] == 1 : a_full.size() - 2 == rank;
  const bool b_ok = b_w ? b_b[0] == 1 : b_full.size() - 2 == rank;
  if (!a_ok || !b_ok) {
    ctx.fail("inputs", "operands whose batch dimensions keep the batch leading (a constant's leading dimension must be 1)",
             "A " + shape_text(a_full) + ", B " + shape_text(b_full) + " (0 = batch)");
  }
  std::vector<size_t> out_b(rank - 1);
  for (size_t d = 1; d < rank; ++d) {
    if (a_b[d] != b_b[d] && a_b[d] != 1 && b_b[d] != 1) {
      ctx.fail("inputs", "batch dimensions that broadcast", "A " + shape_text(a_full) + ", B " + shape_text(b_full) + " (0 = batch)");
    }
    out_b[d - 1] = std::max(a_b[d], b_b[d]);
  }
  PlanShape out = out_b;
  if (!drop_m) out.push_back(m);
  if (!drop_n) out.push_back(n);
  ctx.expect_output_shape(0, out);

  step->out_batch_ = out_b;
  step->a_.is_const = a_w != nullptr;
  step->b_.is_const = b_w != nullptr;
  step->a_.batch_dims.assign(a_b.begin() + 1, a_b.end());
  step->b_.batch_dims.assign(b_b.begin() + 1, b_b.end());
  step->a_.image = a_w ? 0 : MatMulStep::product(step->a_.batch_dims) * m * k;
  step->b_.image = b_w ? 0 : MatMulStep::product(step->b_.batch_dims) * k * n;
  if (b_w) {
    const size_t count = MatMulStep::product(step->b_.batch_dims);
    if (count == 1) {
      // One constant matrix for every product: stack all of A's rows into one GEMM.
      step->rows_mode_ = true;
      step->rows_per_image_ = MatMulStep::product(out_b) * m;
    }
    for (size_t i = 0; i < count; ++i) step->packed_b_.emplace_back(false, k, n, b_w->data + i * k * n, n);
  }
  if (a_w) {
    const size_t count = MatMulStep::product(step->a_.batch_dims);
    for (size_t i = 0; i < count; ++i) step->packed_a_.emplace_back(false, m, k, a_w->data + i * m * k, k);
  }
  return step;
}

}  // namespace runtime
}  // namespace kiln
