// Pad (constant / reflect / edge / wrap) of the per-image dimensions; negative pads crop (not
// with wrap, whose meaning then differs between onnxruntime and numpy). Each output
// dimension maps to an input index (or -1 for the constant) through a table built once.
#include <sstream>

#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

class PadStep : public PlanStep {
 public:
  PadStep(std::vector<size_t> out_dims, std::vector<size_t> in_strides, std::vector<std::vector<int64_t>> maps,
          size_t in_image, size_t out_image, float value, std::string detail)
      : out_(std::move(out_dims)), in_strides_(std::move(in_strides)), maps_(std::move(maps)),
        in_image_(in_image), out_image_(out_image), value_(value), detail_(std::move(detail)) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const size_t rank = out_.size();
    const size_t inner = out_[rank - 1];
    const size_t rows_per_image = out_image_ / inner;
    const std::vector<int64_t>& inner_map = maps_[rank - 1];
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / inner);
    for_chunks(batch * rows_per_image, grain, max_threads, [&](size_t b, size_t e) {
      for (size_t r = b; r < e; ++r) {
        const size_t n = r / rows_per_image;
        size_t rest = r % rows_per_image, offset = 0;
        bool constant_row = false;
        for (size_t d = rank - 1; d-- > 0;) {
          const int64_t src = maps_[d][rest % out_[d]];
          rest /= out_[d];
          if (src < 0) constant_row = true;
          else offset += static_cast<size_t>(src) * in_strides_[d];
        }
        float* y = io.out[0] + r * inner;
        if (constant_row) {
          for (size_t i = 0; i < inner; ++i) y[i] = value_;
          continue;
        }
        const float* x = io.in[0] + n * in_image_ + offset;
        for (size_t i = 0; i < inner; ++i) {
          const int64_t src = inner_map[i];
          y[i] = src < 0 ? value_ : x[src];
        }
      }
    });
  }
  std::string detail() const override { return detail_; }

 private:
  std::vector<size_t> out_, in_strides_;
  std::vector<std::vector<int64_t>> maps_;
  size_t in_image_, out_image_;
  float value_;
  std::string detail_;
};

}  // namespace

std::unique_ptr<PlanStep> make_pad(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  const PlanShape& x = ctx.in()[0];
  const size_t rank = x.size();
  if (rank == 0) ctx.fail("inputs[0]", "a value of rank >= 2", "rank 1");
  const std::string mode = ctx.choice_or("mode", {"constant", "reflect", "edge", "wrap"}, "constant");
  const float value = static_cast<float>(ctx.number_or("value", 0.0));
  // pads count the batch (ONNX numbering: all begins, then all ends); the batch entries are 0.
  const int64_t big = int64_t{1} << 31;
  const auto pads = ctx.integers_or("pads", 2 * (rank + 1), -big, big, std::vector<int64_t>(2 * (rank + 1), 0));
  if (pads[0] != 0 || pads[rank + 1] != 0) ctx.fail("attrs.pads", "0 padding on the batch axis", std::to_string(pads[0]) + ", " + std::to_string(pads[rank + 1]));
  PlanShape out(rank);
  std::vector<std::vector<int64_t>> maps(rank);
  std::vector<size_t> strides(rank);
  size_t s = 1;
  for (size_t d = rank; d-- > 0;) {
    strides[d] = s;
    s *= x[d];
  }
  for (size_t d = 0; d < rank; ++d) {
    const int64_t in = static_cast<int64_t>(x[d]);
    const int64_t begin = pads[d + 1], end = pads[rank + 2 + d];
    const int64_t n = in + begin + end;
    if (n < 1) ctx.fail("attrs.pads", "pads leaving at least one element on axis " + std::to_string(d + 1), std::to_string(begin) + ", " + std::to_string(end));
    if (mode == "wrap" && (begin < 0 || end < 0)) {
      ctx.fail("attrs.pads", "non-negative wrap pads on axis " + std::to_string(d + 1), std::to_string(begin) + ", " + std::to_string(end));
    }
    if (mode == "reflect" && (begin >= in || end >= in)) {
      ctx.fail("attrs.pads", "reflect pads smaller than the dimension (" + std::to_string(in) + ") on axis " + std::to_string(d + 1),
               std::to_string(begin) + ", " + std::to_string(end));
    }
    out[d] = static_cast<size_t>(n);
    maps[d].resize(static_cast<size_t>(n));
    for (int64_t o = 0; o < n; ++o) {
      int64_t i = o - begin;
      if (i < 0 || i >= in) {
        if (mode == "constant") {
          i = -1;
        } else if (mode == "edge") {
          i = i < 0 ? 0 : in - 1;
        } else if (mode == "wrap") {
          // Pads may exceed the dimension: the input repeats (numpy's wrap).
          i = ((i % in) + in) % in;
        } else {
          // Reflect without repeating the edge; pads < in keep one bounce enough.
          i = i < 0 ? -i : 2 * (in - 1) - i;
        }
      }
      maps[d][static_cast<size_t>(o)] = i;
    }
  }
  ctx.expect_output_shape(0, out);
  std::ostringstream detail;
  detail << mode;
  return std::make_unique<PadStep>(out, strides, std::move(maps), shape_size(x), shape_size(out), value, detail.str());
}

}  // namespace runtime
}  // namespace kiln
