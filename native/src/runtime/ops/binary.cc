// Add / Sub / Mul / Div / Max / Min / Pow / PRelu with numpy broadcasting (either operand may be
// a constant weight "A" or "B"; PRelu's slope broadcasts to X, never the other way), and the
// variadic Sum.
#include "runtime/ops/broadcast.h"
#include "runtime/ops/ops.h"

namespace kiln {
namespace runtime {
namespace {

class BinaryStep : public PlanStep {
 public:
  BinaryStep(BinaryOp op, Broadcast bc, std::vector<float> a_const, std::vector<float> b_const,
             bool in_place)
      : op_(op), bc_(std::move(bc)), a_const_(std::move(a_const)), b_const_(std::move(b_const)),
        in_place_(in_place), a_is_const_(!a_const_.empty()), b_is_const_(!b_const_.empty()) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const float* a = a_is_const_ ? a_const_.data() : io.in[0];
    const float* b = b_is_const_ ? b_const_.data() : io.in[a_is_const_ ? 0 : 1];
    bc_.run(op_, a, b, io.out[0], batch, max_threads);
  }
  bool in_place() const override { return in_place_; }
  size_t weight_bytes() const override { return (a_const_.size() + b_const_.size()) * sizeof(float); }
  std::string detail() const override { return op_ == BinaryOp::kAddRelu ? "relu" : ""; }

 private:
  BinaryOp op_;
  Broadcast bc_;
  std::vector<float> a_const_, b_const_;
  bool in_place_, a_is_const_, b_is_const_;
};

class SumStep : public PlanStep {
 public:
  SumStep(std::vector<Broadcast> steps, size_t out_size) : steps_(std::move(steps)), out_size_(out_size) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    // y = x0 + x1, then y += x2, ...; a single input is broadcast-copied (x0 + 0).
    static const float zero = 0.0f;
    if (steps_.size() == 1 && !two_) {
      steps_[0].run(BinaryOp::kAdd, io.in[0], &zero, io.out[0], batch, max_threads);
      return;
    }
    steps_[0].run(BinaryOp::kAdd, io.in[0], io.in[1], io.out[0], batch, max_threads);
    for (size_t i = 1; i < steps_.size(); ++i) {
      steps_[i].run(BinaryOp::kAdd, io.out[0], io.in[i + 1], io.out[0], batch, max_threads);
    }
  }
  bool in_place() const override { return in_place_; }
  void set(bool two, bool in_place) { two_ = two; in_place_ = in_place; }

 private:
  std::vector<Broadcast> steps_;
  size_t out_size_;
  bool two_ = true, in_place_ = false;
};

BinaryOp binary_op(const std::string& op) {
  if (op == "Add") return BinaryOp::kAdd;
  if (op == "Sub") return BinaryOp::kSub;
  if (op == "Mul") return BinaryOp::kMul;
  if (op == "Max") return BinaryOp::kMax;
  if (op == "Min") return BinaryOp::kMin;
  if (op == "Pow") return BinaryOp::kPow;
  if (op == "PRelu") return BinaryOp::kPRelu;
  return BinaryOp::kDiv;
}

// A constant operand's full shape aligned to the output rank (batch included): left-padded with
// 1s, its batch entry must be 1; returns the per-image part.
PlanShape constant_shape(const StepContext& ctx, const char* name, const PlanTensor& t, size_t full_rank) {
  if (t.shape.size() > full_rank) {
    ctx.fail(std::string("weights.") + name, "a constant of rank <= " + std::to_string(full_rank), shape_text(t.shape));
  }
  PlanShape padded(full_rank - t.shape.size(), 1);
  padded.insert(padded.end(), t.shape.begin(), t.shape.end());
  if (padded[0] != 1) {
    ctx.fail(std::string("weights.") + name, "a constant that broadcasts over the batch (leading dimension 1)", shape_text(t.shape));
  }
  return PlanShape(padded.begin() + 1, padded.end());
}

}  // namespace

std::unique_ptr<PlanStep> make_binary(const StepContext& ctx) {
  ctx.expect_outputs(1);
  const PlanTensor* a_w = ctx.weight_opt("A");
  const PlanTensor* b_w = ctx.weight_opt("B");
  if (a_w && b_w) ctx.fail("weights", "at most one constant operand", "two (fold constants first)");
  const size_t values = (a_w || b_w) ? 1 : 2;
  ctx.expect_inputs(values, values);
  // Full rank (batch included) of the result: every value operand must have it.
  size_t full_rank = ctx.in()[0].size() + 1;
  if (values == 2 && ctx.in()[1].size() + 1 != full_rank) {
    ctx.fail("inputs", "two values of the same rank (the batch must stay the leading dimension)",
             shape_text(ctx.in()[0]) + " and " + shape_text(ctx.in()[1]));
  }
  BroadcastOperand a, b;
  std::vector<float> a_const, b_const;
  if (a_w) {
    a.shape = constant_shape(ctx, "A", *a_w, full_rank);
    a.batched = false;
    a_const.assign(a_w->data, a_w->data + a_w->length);
    if (a_const.empty()) ctx.fail("weights.A", "a non-empty constant", "0 elements");
    b.shape = ctx.in()[0];
  } else {
    a.shape = ctx.in()[0];
    if (b_w) {
      b.shape = constant_shape(ctx, "B", *b_w, full_rank);
      b.batched = false;
      b_const.assign(b_w->data, b_w->data + b_w->length);
      if (b_const.empty()) ctx.fail("weights.B", "a non-empty constant", "0 elements");
    } else {
      b.shape = ctx.in()[1];
    }
  }
  PlanShape out;
  if (!broadcast_shapes(a.shape, b.shape, &out)) {
    ctx.fail("inputs", "shapes that broadcast", "per-image shapes " + shape_text(a.shape) + " and " + shape_text(b.shape));
  }
  if (ctx.spec().op == "PRelu" && (a_w || a.shape != out)) {
    ctx.fail("inputs", "a slope that broadcasts to X (PRelu)", "per-image shapes " + shape_text(a.shape) + " and " + shape_text(b.shape));
  }
  ctx.expect_output_shape(0, out);
  const bool in_place = ctx.in()[0] == out;
  BinaryOp op = binary_op(ctx.spec().op);
  // An Add may carry the ReLU after it (compile.ts: a residual Add whose output only a Relu reads).
  if (op == BinaryOp::kAdd && ctx.choice_or("activation", {"None", "Relu"}, "None") == "Relu") op = BinaryOp::kAddRelu;
  return std::make_unique<BinaryStep>(op, Broadcast(a, b, out), std::move(a_const), std::move(b_const), in_place);
}

std::unique_ptr<PlanStep> make_sum(const StepContext& ctx) {
  ctx.expect_inputs(1, 1024);
  ctx.expect_outputs(1);
  const auto& in = ctx.in();
  for (size_t i = 1; i < in.size(); ++i) {
    if (in[i].size() != in[0].size()) {
      ctx.fail("inputs", "values of the same rank (the batch must stay the leading dimension)",
               shape_text(in[0]) + " and " + shape_text(in[i]));
    }
  }
  PlanShape out = in[0];
  for (size_t i = 1; i < in.size(); ++i) {
    PlanShape next;
    if (!broadcast_shapes(out, in[i], &next)) {
      ctx.fail("inputs", "shapes that broadcast", "per-image shapes " + shape_text(out) + " and " + shape_text(in[i]));
    }
    out = next;
  }
  ctx.expect_output_shape(0, out);
  std::vector<Broadcast> steps;
  if (in.size() == 1) {
    steps.emplace_back(BroadcastOperand{in[0], true}, BroadcastOperand{PlanShape(out.size(), 1), false}, out);
  } else {
    steps.emplace_back(BroadcastOperand{in[0], true}, BroadcastOperand{in[1], true}, out);
    for (size_t i = 2; i < in.size(); ++i) {
      steps.emplace_back(BroadcastOperand{out, true}, BroadcastOperand{in[i], true}, out);
    }
  }
  auto step = std::make_unique<SumStep>(std::move(steps), shape_size(out));
  // In place on input 0 only: later inputs are read after the output is partly written, and a
  // later input sharing the output's storage would be an aliasing bug (the planner never does it).
  step->set(in.size() > 1, in[0] == out);
  return step;
}

}  // namespace runtime
}  // namespace kiln
