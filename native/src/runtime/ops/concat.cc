// Concat along any non-batch axis: per image, each input's contiguous slabs are copied in turn.
#include <cstring>

#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

class ConcatStep : public PlanStep {
 public:
  // outer: product of the per-image dims before the axis; slabs[i]: floats of input i per outer index.
  ConcatStep(size_t outer, std::vector<size_t> slabs) : outer_(outer), slabs_(std::move(slabs)) {
    for (size_t s : slabs_) out_slab_ += s;
  }
  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const size_t rows = batch * outer_;
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / out_slab_);
    for_chunks(rows, grain, max_threads, [&](size_t b, size_t e) {
      for (size_t r = b; r < e; ++r) {
        float* y = io.out[0] + r * out_slab_;
        for (size_t i = 0; i < slabs_.size(); ++i) {
          std::memcpy(y, io.in[i] + r * slabs_[i], slabs_[i] * sizeof(float));
          y += slabs_[i];
        }
      }
    });
  }

 private:
  size_t outer_;
  std::vector<size_t> slabs_;
  size_t out_slab_ = 0;
};

}  // namespace

std::unique_ptr<PlanStep> make_concat(const StepContext& ctx) {
  ctx.expect_inputs(1, 1024);
  ctx.expect_outputs(1);
  const auto& in = ctx.in();
  const size_t rank = in[0].size();
  // `axis` counts the batch (ONNX numbering): 1 is the first per-image dimension.
  const int64_t axis = ctx.integer("axis", 1, static_cast<int64_t>(rank));
  const size_t a = static_cast<size_t>(axis - 1);
  PlanShape out = in[0];
  out[a] = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    bool ok = in[i].size() == rank;
    for (size_t d = 0; ok && d < rank; ++d) ok = d == a || in[i][d] == in[0][d];
    if (!ok) {
      ctx.fail("inputs[" + std::to_string(i) + "]", "per-image shape " + shape_text(in[0]) + " except along axis " + std::to_string(axis),
               shape_text(in[i]));
    }
    out[a] += in[i][a];
  }
  ctx.expect_output_shape(0, out);
  size_t outer = 1, inner = 1;
  for (size_t d = 0; d < a; ++d) outer *= out[d];
  for (size_t d = a + 1; d < rank; ++d) inner *= out[d];
  std::vector<size_t> slabs;
  for (const PlanShape& s : in) slabs.push_back(s[a] * inner);
  return std::make_unique<ConcatStep>(outer, std::move(slabs));
}

}  // namespace runtime
}  // namespace kiln
