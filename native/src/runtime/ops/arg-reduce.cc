// ArgMax / ArgMin over one per-image axis (attr `axis`, ONNX numbering with the batch 0, never 0
// here: the batch axis runs through the unit-batch plan), `keepdims`, `select_last_index`. The
// indices are a float32 value of exact integers (the session's typed edge turns them into int64).
#include <algorithm>
#include <sstream>

#include "elementwise/arg-reduce.h"
#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

// Indices up to this are exact in float32.
constexpr size_t kMaxArgCount = size_t{1} << 24;

class ArgReduceStep : public PlanStep {
 public:
  ArgReduceStep(bool max, bool last, size_t outer, size_t count, size_t inner, std::string detail)
      : max_(max), last_(last), outer_(outer), count_(count), inner_(inner), detail_(std::move(detail)) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const float* x = io.in[0];
    float* y = io.out[0];
    const size_t blocks = batch * outer_;
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / (count_ * inner_));
    for_chunks(blocks, grain, max_threads, [&](size_t b, size_t e) {
      arg_reduce_ref(x + b * count_ * inner_, e - b, count_, inner_, max_, last_, y + b * inner_);
    });
  }
  std::string detail() const override { return detail_; }

 private:
  bool max_, last_;
  size_t outer_, count_, inner_;
  std::string detail_;
};

}  // namespace

std::unique_ptr<PlanStep> make_arg_reduce(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  const PlanShape& x = ctx.in()[0];
  const std::string& op = ctx.spec().op;
  if (op != "ArgMax" && op != "ArgMin") ctx.fail("op", "ArgMax or ArgMin", op);
  const size_t rank = x.size();
  if (rank == 0) ctx.fail("input", "a per-image rank of at least 1", "a scalar per image");
  const size_t axis = static_cast<size_t>(ctx.integer("axis", 1, static_cast<int64_t>(rank)));
  const bool keep = ctx.integer_or("keepdims", 0, 1, 1) == 1;
  const bool last = ctx.integer_or("select_last_index", 0, 1, 0) == 1;
  const size_t count = x[axis - 1];
  if (count == 0) ctx.fail("input", "a non-empty reduced axis", "an empty one");
  if (count > kMaxArgCount) ctx.fail("input", "at most 2^24 elements along the axis (exact float32 indices)", std::to_string(count));
  size_t outer = 1, inner = 1;
  PlanShape out;
  for (size_t d = 0; d < rank; ++d) {
    if (d + 1 < axis) outer *= x[d];
    if (d + 1 > axis) inner *= x[d];
    if (d + 1 != axis) out.push_back(x[d]);
    else if (keep) out.push_back(1);
  }
  ctx.expect_output_shape(0, out);
  std::ostringstream detail;
  detail << "axis " << axis << (keep ? " keepdims" : "") << (last ? " last" : "") << " of " << count;
  return std::make_unique<ArgReduceStep>(op == "ArgMax", last, outer, count, inner, detail.str());
}

}  // namespace runtime
}  // namespace kiln
