// Bool values (one byte 0/1 per element, PlanDType::kBool) and the steps that make and read
// them: Equal / Less / LessOrEqual / Greater / GreaterOrEqual on float32 operands (either may be a
// constant weight "A" or "B") or Equal on two bools, IsNaN, IsInf, Cast between float32 and bool,
// Not / And / Or / Xor, and Where(cond, X, Y) with float32 X and Y (any two of the three may be
// constant weights "C" (float32 0/1), "X", "Y"). Operands broadcast as numpy does, over the same rank (the batch stays the
// leading dimension). These factories check the dtypes themselves: no int8 value is accepted.
#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "common/dispatch.h"
#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

// Numpy broadcasting of K operands over [batch] + per-image shape. Dimensions are collapsed once
// at build time; run() hands each contiguous output row to `row` with every operand's offset and
// its stride along the row (0: one element repeated, 1: contiguous).
template <size_t K>
class Walk {
 public:
  Walk() = default;
  Walk(const std::array<PlanShape, K>& in, const std::array<bool, K>& batched, const PlanShape& out) {
    const size_t rank = out.size();
    std::array<std::vector<size_t>, K> s;
    for (size_t k = 0; k < K; ++k) {
      s[k].resize(rank);
      size_t r = 1;
      for (size_t d = rank; d-- > 0;) {
        s[k][d] = in[k][d] == 1 ? 0 : r;
        r *= in[k][d];
      }
      image_[k] = batched[k] ? r : 0;
    }
    for (size_t d = 0; d < rank; ++d) {
      if (out[d] == 1) continue;
      bool joins = !dims_.empty();
      for (size_t k = 0; k < K && joins; ++k) joins = stride_[k].back() == s[k][d] * out[d];
      if (joins) {
        dims_.back() *= out[d];
        for (size_t k = 0; k < K; ++k) stride_[k].back() = s[k][d];
        continue;
      }
      dims_.push_back(out[d]);
      for (size_t k = 0; k < K; ++k) stride_[k].push_back(s[k][d]);
    }
    if (dims_.empty()) {
      dims_.push_back(1);
      for (size_t k = 0; k < K; ++k) stride_[k].push_back(0);
    }
  }

  // row(const size_t* offsets, const size_t* strides, size_t out_offset, size_t n)
  template <typename Row>
  void run(size_t batch, size_t max_threads, const Row& row) const {
    // The batch as one more dimension, merged into the first when every operand continues across
    // images (constants never do unless they broadcast along the whole first dimension).
    bool merge = batch > 1;
    for (size_t k = 0; k < K && merge; ++k) merge = image_[k] == stride_[k][0] * dims_[0];
    std::vector<size_t> dims;
    std::array<std::vector<size_t>, K> st;
    if (batch > 1 && !merge) {
      dims.push_back(batch);
      for (size_t k = 0; k < K; ++k) st[k].push_back(image_[k]);
    }
    dims.insert(dims.end(), dims_.begin(), dims_.end());
    for (size_t k = 0; k < K; ++k) st[k].insert(st[k].end(), stride_[k].begin(), stride_[k].end());
    if (merge) dims[0] *= batch;
    const size_t rank = dims.size();
    const size_t inner = dims[rank - 1];
    std::array<size_t, K> inner_stride;
    for (size_t k = 0; k < K; ++k) inner_stride[k] = st[k][rank - 1];
    size_t outer = 1;
    for (size_t d = 0; d + 1 < rank; ++d) outer *= dims[d];
    if (outer == 1) {
      for_chunks(inner, kElementwiseGrain, max_threads, [&](size_t b, size_t e) {
        std::array<size_t, K> off;
        for (size_t k = 0; k < K; ++k) off[k] = b * inner_stride[k];
        row(off.data(), inner_stride.data(), b, e - b);
      });
      return;
    }
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / inner);
    for_chunks(outer, grain, max_threads, [&](size_t b, size_t e) {
      for (size_t o = b; o < e; ++o) {
        std::array<size_t, K> off{};
        size_t rest = o;
        for (size_t d = rank - 1; d-- > 0;) {
          const size_t i = rest % dims[d];
          rest /= dims[d];
          for (size_t k = 0; k < K; ++k) off[k] += i * st[k][d];
        }
        row(off.data(), inner_stride.data(), o * inner, inner);
      }
    });
  }

 private:
  std::vector<size_t> dims_;
  std::array<std::vector<size_t>, K> stride_;
  std::array<size_t, K> image_{};  // elements per image of each operand (0: a constant)
};

// A constant operand's full shape aligned to the output rank (batch included): left-padded with
// 1s, its batch entry must be 1; returns the per-image part.
PlanShape constant_shape(const StepContext& ctx, const char* name, const PlanTensor& t, size_t full_rank) {
  if (t.shape.size() > full_rank) {
    ctx.fail(std::string("weights.") + name, "a constant of rank <= " + std::to_string(full_rank), shape_text(t.shape));
  }
  if (t.length == 0) ctx.fail(std::string("weights.") + name, "a non-empty constant", "0 elements");
  PlanShape padded(full_rank - t.shape.size(), 1);
  padded.insert(padded.end(), t.shape.begin(), t.shape.end());
  if (padded[0] != 1) {
    ctx.fail(std::string("weights.") + name, "a constant that broadcasts over the batch (leading dimension 1)", shape_text(t.shape));
  }
  return PlanShape(padded.begin() + 1, padded.end());
}

// One float32 operand: value input `*next_input` (then advanced) or the constant weight `name`.
struct FloatOperand {
  PlanShape shape;
  std::vector<float> constant;
  int input = -1;
};

FloatOperand float_operand(const StepContext& ctx, const char* name, size_t* next_input, size_t full_rank) {
  FloatOperand o;
  if (const PlanTensor* w = ctx.weight_opt(name)) {
    o.shape = constant_shape(ctx, name, *w, full_rank);
    o.constant.assign(w->data, w->data + w->length);
    return o;
  }
  const size_t i = (*next_input)++;
  if (i >= ctx.in().size()) ctx.fail("inputs", "a value for operand " + std::string(name) + " (or weights." + name + ")", std::to_string(ctx.in().size()) + " inputs");
  ctx.expect_input_dtype(i, PlanDType::kFloat32);
  o.shape = ctx.in()[i];
  o.input = static_cast<int>(i);
  return o;
}

const float* operand_data(const FloatOperand& o, const StepBuffers& io) {
  return o.input >= 0 ? io.in[o.input] : o.constant.data();
}

// The broadcast output shape of per-image shapes of one rank (the caller checked the ranks).
PlanShape broadcast_all(const StepContext& ctx, const std::vector<PlanShape>& shapes) {
  PlanShape out = shapes[0];
  for (size_t k = 1; k < shapes.size(); ++k) {
    if (shapes[k].size() != out.size()) {
      ctx.fail("inputs", "operands of one rank (the batch must stay the leading dimension)", shape_text(out) + " and " + shape_text(shapes[k]));
    }
    for (size_t d = 0; d < out.size(); ++d) {
      if (out[d] != shapes[k][d] && out[d] != 1 && shapes[k][d] != 1) {
        ctx.fail("inputs", "shapes that broadcast", "per-image shapes " + shape_text(out) + " and " + shape_text(shapes[k]));
      }
      out[d] = std::max(out[d], shapes[k][d]);
    }
  }
  return out;
}

size_t value_rank(const StepContext& ctx) {
  if (ctx.in().empty()) ctx.fail("inputs", "at least one value operand", "none (fold constants first)");
  return ctx.in()[0].size() + 1;
}

class CompareStep : public PlanStep {
 public:
  CompareStep(F32CompareKind kind, FloatOperand a, FloatOperand b, Walk<2> walk)
      : kind_(kind), a_(std::move(a)), b_(std::move(b)), walk_(std::move(walk)) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t threads) const override {
    const float* a = operand_data(a_, io);
    const float* b = operand_data(b_, io);
    auto* y = reinterpret_cast<uint8_t*>(io.out[0]);
    const F32CompareRowFn compare = dispatch().f32_compare.compare_row;
    walk_.run(batch, threads, [&](const size_t* off, const size_t* st, size_t o, size_t n) {
      compare(kind_, a + off[0], st[0], b + off[1], st[1], y + o, n);
    });
  }
  size_t weight_bytes() const override { return (a_.constant.size() + b_.constant.size()) * sizeof(float); }

 private:
  F32CompareKind kind_;
  FloatOperand a_, b_;
  Walk<2> walk_;
};

enum class Logic { kAnd, kOr, kXor, kEqual };

class LogicStep : public PlanStep {
 public:
  LogicStep(Logic op, Walk<2> walk) : op_(op), walk_(std::move(walk)) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t threads) const override {
    const auto* a = reinterpret_cast<const uint8_t*>(io.in[0]);
    const auto* b = reinterpret_cast<const uint8_t*>(io.in[1]);
    auto* y = reinterpret_cast<uint8_t*>(io.out[0]);
    walk_.run(batch, threads, [&](const size_t* off, const size_t* st, size_t o, size_t n) {
      const uint8_t* pa = a + off[0];
      const uint8_t* pb = b + off[1];
      uint8_t* py = y + o;
      const size_t sa = st[0], sb = st[1];
      switch (op_) {
        case Logic::kAnd: for (size_t i = 0; i < n; ++i) py[i] = pa[i * sa] & pb[i * sb]; break;
        case Logic::kOr: for (size_t i = 0; i < n; ++i) py[i] = pa[i * sa] | pb[i * sb]; break;
        case Logic::kXor: for (size_t i = 0; i < n; ++i) py[i] = pa[i * sa] ^ pb[i * sb]; break;
        case Logic::kEqual: for (size_t i = 0; i < n; ++i) py[i] = (pa[i * sa] ^ pb[i * sb]) ^ 1; break;
      }
    });
  }
  bool in_place() const override { return in_place_; }
  void set_in_place(bool v) { in_place_ = v; }

 private:
  Logic op_;
  Walk<2> walk_;
  bool in_place_ = false;
};

// Not, Cast bool -> float32, and the float32 -> bool classifications: one flat pass.
enum class Flat { kNot, kBoolToFloat, kClassify, kAllFalse };

class FlatStep : public PlanStep {
 public:
  FlatStep(Flat op, F32ClassifyKind kind, size_t size) : op_(op), kind_(kind), size_(size) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t threads) const override {
    const F32ClassifyFn classify = dispatch().f32_compare.classify;
    for_chunks(batch * size_, kElementwiseGrain, threads, [&](size_t b, size_t e) {
      switch (op_) {
        case Flat::kNot: {
          const auto* x = reinterpret_cast<const uint8_t*>(io.in[0]);
          auto* y = reinterpret_cast<uint8_t*>(io.out[0]);
          for (size_t i = b; i < e; ++i) y[i] = x[i] ^ 1;
          break;
        }
        case Flat::kBoolToFloat: {
          const auto* x = reinterpret_cast<const uint8_t*>(io.in[0]);
          for (size_t i = b; i < e; ++i) io.out[0][i] = x[i];
          break;
        }
        case Flat::kClassify:
          classify(kind_, io.in[0] + b, reinterpret_cast<uint8_t*>(io.out[0]) + b, e - b);
          break;
        case Flat::kAllFalse:
          std::memset(reinterpret_cast<uint8_t*>(io.out[0]) + b, 0, e - b);
          break;
      }
    });
  }
  // Not reads each byte before writing it; the others change the element size.
  bool in_place() const override { return op_ == Flat::kNot; }

 private:
  Flat op_;
  F32ClassifyKind kind_;
  size_t size_;
};

class WhereStep : public PlanStep {
 public:
  WhereStep(std::vector<uint8_t> c_const, FloatOperand x, FloatOperand z, Walk<3> walk)
      : c_const_(std::move(c_const)), x_(std::move(x)), z_(std::move(z)), walk_(std::move(walk)) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t threads) const override {
    const auto* c = c_const_.empty() ? reinterpret_cast<const uint8_t*>(io.in[0]) : c_const_.data();
    const float* x = operand_data(x_, io);
    const float* z = operand_data(z_, io);
    float* y = io.out[0];
    const F32WhereRowFn where = dispatch().f32_compare.where_row;
    walk_.run(batch, threads, [&](const size_t* off, const size_t* st, size_t o, size_t n) {
      where(c + off[0], st[0], x + off[1], st[1], z + off[2], st[2], y + o, n);
    });
  }
  size_t weight_bytes() const override { return c_const_.size() + (x_.constant.size() + z_.constant.size()) * sizeof(float); }

 private:
  std::vector<uint8_t> c_const_;  // a constant condition (weight "C", nonzero = true); empty: input 0
  FloatOperand x_, z_;
  Walk<3> walk_;
};

bool compare_kind(const std::string& op, F32CompareKind* kind) {
  static const std::pair<const char*, F32CompareKind> kKinds[] = {
      {"Equal", F32CompareKind::kEqual}, {"Less", F32CompareKind::kLess}, {"LessOrEqual", F32CompareKind::kLessOrEqual},
      {"Greater", F32CompareKind::kGreater}, {"GreaterOrEqual", F32CompareKind::kGreaterOrEqual}};
  for (const auto& k : kKinds) {
    if (op == k.first) {
      *kind = k.second;
      return true;
    }
  }
  return false;
}

std::unique_ptr<PlanStep> make_logic(const StepContext& ctx, Logic op) {
  ctx.expect_inputs(2, 2);
  if (ctx.find_weight("A") || ctx.find_weight("B")) ctx.fail("weights", "none (bool operands are values)", "a constant");
  ctx.expect_input_dtype(0, PlanDType::kBool);
  ctx.expect_input_dtype(1, PlanDType::kBool);
  const PlanShape out = broadcast_all(ctx, {ctx.in()[0], ctx.in()[1]});
  ctx.expect_output_shape(0, out);
  auto step = std::make_unique<LogicStep>(op, Walk<2>({ctx.in()[0], ctx.in()[1]}, {true, true}, out));
  step->set_in_place(ctx.in()[0] == out);
  return step;
}

}  // namespace

std::unique_ptr<PlanStep> make_compare(const StepContext& ctx) {
  ctx.expect_outputs(1);
  ctx.expect_output_dtype(0, PlanDType::kBool);
  const std::string& op = ctx.spec().op;
  if (op == "And") return make_logic(ctx, Logic::kAnd);
  if (op == "Or") return make_logic(ctx, Logic::kOr);
  if (op == "Xor") return make_logic(ctx, Logic::kXor);
  if (op == "Equal" && !ctx.in().empty() && ctx.in_dtype(0) == PlanDType::kBool) return make_logic(ctx, Logic::kEqual);
  F32CompareKind kind;
  if (!compare_kind(op, &kind)) ctx.fail("op", "a comparison", op);
  const PlanTensor* a_w = ctx.weight_opt("A");
  const PlanTensor* b_w = ctx.weight_opt("B");
  if (a_w && b_w) ctx.fail("weights", "at most one constant operand", "two (fold constants first)");
  const size_t values = (a_w || b_w) ? 1 : 2;
  ctx.expect_inputs(values, values);
  const size_t full_rank = value_rank(ctx);
  size_t next = 0;
  FloatOperand a = float_operand(ctx, "A", &next, full_rank);
  FloatOperand b = float_operand(ctx, "B", &next, full_rank);
  const PlanShape out = broadcast_all(ctx, {a.shape, b.shape});
  ctx.expect_output_shape(0, out);
  Walk<2> walk({a.shape, b.shape}, {a.input >= 0, b.input >= 0}, out);
  return std::make_unique<CompareStep>(kind, std::move(a), std::move(b), std::move(walk));
}

std::unique_ptr<PlanStep> make_bool_unary(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_output_shape(0, ctx.in()[0]);
  const std::string& op = ctx.spec().op;
  const size_t size = shape_size(ctx.in()[0]);
  if (op == "Not") {
    ctx.expect_input_dtype(0, PlanDType::kBool);
    ctx.expect_output_dtype(0, PlanDType::kBool);
    return std::make_unique<FlatStep>(Flat::kNot, F32ClassifyKind::kIsNaN, size);
  }
  if (op == "Cast") {
    const bool to_bool = ctx.choice_or("to", {"bool", "float32"}, "") == "bool";
    ctx.expect_input_dtype(0, to_bool ? PlanDType::kFloat32 : PlanDType::kBool);
    ctx.expect_output_dtype(0, to_bool ? PlanDType::kBool : PlanDType::kFloat32);
    return std::make_unique<FlatStep>(to_bool ? Flat::kClassify : Flat::kBoolToFloat, F32ClassifyKind::kNonZero, size);
  }
  ctx.expect_input_dtype(0, PlanDType::kFloat32);
  ctx.expect_output_dtype(0, PlanDType::kBool);
  if (op == "IsNaN") return std::make_unique<FlatStep>(Flat::kClassify, F32ClassifyKind::kIsNaN, size);
  if (op != "IsInf") ctx.fail("op", "Not, Cast, IsNaN or IsInf", op);
  const bool neg = ctx.integer_or("detect_negative", 0, 1, 1) != 0;
  const bool pos = ctx.integer_or("detect_positive", 0, 1, 1) != 0;
  if (!neg && !pos) return std::make_unique<FlatStep>(Flat::kAllFalse, F32ClassifyKind::kIsInf, size);
  const F32ClassifyKind kind = neg && pos ? F32ClassifyKind::kIsInf : neg ? F32ClassifyKind::kIsNegInf : F32ClassifyKind::kIsPosInf;
  return std::make_unique<FlatStep>(Flat::kClassify, kind, size);
}

std::unique_ptr<PlanStep> make_where(const StepContext& ctx) {
  ctx.expect_outputs(1);
  ctx.expect_output_dtype(0, PlanDType::kFloat32);
  const PlanTensor* c_w = ctx.weight_opt("C");
  const size_t constants = (c_w ? 1 : 0) + (ctx.weight_opt("X") ? 1 : 0) + (ctx.weight_opt("Y") ? 1 : 0);
  if (constants == 3) ctx.fail("weights", "at most two constant operands", "three (fold constants first)");
  ctx.expect_inputs(3 - constants, 3 - constants);
  const size_t full_rank = value_rank(ctx);
  PlanShape c;
  std::vector<uint8_t> c_const;
  if (c_w) {
    // A constant condition arrives as float32 0/1 (plan weights have no bool type).
    c = constant_shape(ctx, "C", *c_w, full_rank);
    c_const.resize(c_w->length);
    for (size_t i = 0; i < c_w->length; ++i) c_const[i] = c_w->data[i] != 0.0f ? 1 : 0;
  } else {
    ctx.expect_input_dtype(0, PlanDType::kBool);
    c = ctx.in()[0];
  }
  size_t next = c_w ? 0 : 1;
  FloatOperand x = float_operand(ctx, "X", &next, full_rank);
  FloatOperand z = float_operand(ctx, "Y", &next, full_rank);
  const PlanShape out = broadcast_all(ctx, {c, x.shape, z.shape});
  ctx.expect_output_shape(0, out);
  Walk<3> walk({c, x.shape, z.shape}, {!c_w, x.input >= 0, z.input >= 0}, out);
  return std::make_unique<WhereStep>(std::move(c_const), std::move(x), std::move(z), std::move(walk));
}

}  // namespace runtime
}  // namespace kiln
