// The index-map copies of the per-image dimensions: Slice (starts and steps, negative steps
// included), Gather (constant indices on one axis), Expand (broadcast of size-1 dims) and Tile.
// Each output dimension reads one input index per position through a table built once here (the
// batch stays first and is never remapped); a contiguous innermost run is one memcpy.
#include <cstdint>
#include <cstring>
#include <sstream>

#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

template <typename T>
class AxisMapStep : public PlanStep {
 public:
  // maps[d][i]: the input index of output position i along per-image dim d.
  AxisMapStep(PlanShape in, PlanShape out, std::vector<std::vector<size_t>> maps, std::string detail)
      : maps_(std::move(maps)), detail_(std::move(detail)) {
    // A last axis copied whole after a contiguous run of the axis before it folds into that axis,
    // so a Slice or Split over channels moves whole planes: ShuffleNet's split is one memcpy per
    // image instead of one per W-long row. The folded axis is one run: its map keeps only where
    // the run starts (run() reads no more of a contiguous last map).
    while (in.size() > 1 && out.back() == in.back() && run_from(maps_.back()) == 0 && run_from(maps_[in.size() - 2]) != kNoRun) {
      const size_t w = in.back();
      const size_t start = run_from(maps_[in.size() - 2]) * w;
      maps_.pop_back();
      maps_.back() = {start};
      in.pop_back();
      in.back() *= w;
      out.pop_back();
      out.back() *= w;
    }
    out_ = out;
    in_strides_.resize(in.size());
    size_t s = 1;
    for (size_t d = in.size(); d-- > 0;) {
      in_strides_[d] = s;
      s *= in[d];
    }
    in_image_ = s;
    out_image_ = shape_size(out);
    const std::vector<size_t>& inner = maps_.back();
    contiguous_ = true;
    for (size_t i = 1; i < inner.size(); ++i) contiguous_ = contiguous_ && inner[i] == inner[0] + i;
  }

  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const size_t rank = out_.size();
    const size_t inner = out_[rank - 1];
    const size_t rows_per_image = out_image_ / inner;
    const std::vector<size_t>& inner_map = maps_[rank - 1];
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / inner);
    for_chunks(batch * rows_per_image, grain, max_threads, [&](size_t b, size_t e) {
      for (size_t r = b; r < e; ++r) {
        const size_t n = r / rows_per_image;
        size_t rest = r % rows_per_image, offset = 0;
        for (size_t d = rank - 1; d-- > 0;) {
          offset += maps_[d][rest % out_[d]] * in_strides_[d];
          rest /= out_[d];
        }
        const T* x = reinterpret_cast<const T*>(io.in[0]) + n * in_image_ + offset;
        T* y = reinterpret_cast<T*>(io.out[0]) + r * inner;
        if (contiguous_) {
          std::memcpy(y, x + inner_map[0], inner * sizeof(T));
        } else {
          for (size_t i = 0; i < inner; ++i) y[i] = x[inner_map[i]];
        }
      }
    });
  }
  std::string detail() const override { return detail_; }

 private:
  static constexpr size_t kNoRun = ~size_t{0};
  // Where the map's run starts when it reads consecutive positions (map[i] = map[0] + i), else kNoRun.
  static size_t run_from(const std::vector<size_t>& map) {
    for (size_t i = 1; i < map.size(); ++i)
      if (map[i] != map[0] + i) return kNoRun;
    return map.empty() ? kNoRun : map[0];
  }

  PlanShape out_;
  std::vector<size_t> in_strides_;
  std::vector<std::vector<size_t>> maps_;
  size_t in_image_ = 0, out_image_ = 0;
  bool contiguous_ = false;
  std::string detail_;
};

std::unique_ptr<PlanStep> axis_map(const StepContext& ctx, std::vector<std::vector<size_t>> maps, const std::string& detail) {
  const PlanShape& x = ctx.in()[0];
  if (x.empty()) {
    ctx.expect_output_shape(0, x);
    return make_copy(ctx);
  }
  return std::make_unique<AxisMapStep<float>>(x, ctx.out()[0], std::move(maps), detail);
}

std::vector<size_t> identity_map(size_t n) {
  std::vector<size_t> m(n);
  for (size_t i = 0; i < n; ++i) m[i] = i;
  return m;
}

}  // namespace

namespace {

// The per-dim maps of a Slice: output position i of dim d reads starts[d] + i * steps[d].
std::vector<std::vector<size_t>> slice_maps(const StepContext& ctx, const PlanShape& x, const PlanShape& y, std::string* detail_text) {
  const size_t rank = x.size();
  if (y.size() != rank) ctx.fail("outputs[0]", "the input's rank " + std::to_string(rank), shape_text(y));
  // Per-image starts (in range) and steps (non-zero): output position i of dim d reads start + i * step.
  const auto starts = ctx.integers_or("starts", rank, 0, INT32_MAX, std::vector<int64_t>(rank, 0));
  const auto steps = ctx.integers_or("steps", rank, INT32_MIN, INT32_MAX, std::vector<int64_t>(rank, 1));
  std::vector<std::vector<size_t>> maps(rank);
  std::ostringstream detail;
  detail << "starts";
  for (size_t d = 0; d < rank; ++d) {
    const int64_t first = starts[d], step = steps[d], n = static_cast<int64_t>(y[d]);
    const int64_t last = first + (n - 1) * step;
    if (step == 0 || first >= static_cast<int64_t>(x[d]) || last < 0 || last >= static_cast<int64_t>(x[d])) {
      ctx.fail("attrs", "starts/steps inside the input " + shape_text(x) + " for output " + shape_text(y),
               "start " + std::to_string(first) + " step " + std::to_string(step) + " on dim " + std::to_string(d + 1));
    }
    for (int64_t i = 0; i < n; ++i) maps[d].push_back(static_cast<size_t>(first + i * step));
    detail << " " << first;
  }
  detail << " steps";
  for (int64_t s : steps) detail << " " << s;
  *detail_text = detail.str();
  return maps;
}

}  // namespace

std::unique_ptr<PlanStep> make_slice(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  std::string detail;
  auto maps = slice_maps(ctx, ctx.in()[0], ctx.out()[0], &detail);
  return axis_map(ctx, std::move(maps), detail);
}

// Slice of a uint8 value (a pass-through op of the int8 region). `nhwc` = 1: an image [C, H, W]
// stored [H][W][C], starts and steps given in the logical (C, H, W) order.
std::unique_ptr<PlanStep> make_slice_u8(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_input_dtype(0, PlanDType::kUint8);
  ctx.expect_output_dtype(0, PlanDType::kUint8);
  const PlanShape& x = ctx.in()[0];
  const PlanShape& y = ctx.out()[0];
  std::string detail;
  auto maps = slice_maps(ctx, x, y, &detail);
  if (x.empty()) ctx.fail("inputs[0]", "a per-image rank of at least 1", shape_text(x));
  if (ctx.integer_or("nhwc", 0, 1, 0) == 0) return std::make_unique<AxisMapStep<uint8_t>>(x, y, std::move(maps), "u8 " + detail);
  if (x.size() != 3) ctx.fail("inputs[0]", "an image [C, H, W] for nhwc", shape_text(x));
  const PlanShape xs = {x[1], x[2], x[0]}, ys = {y[1], y[2], y[0]};
  std::vector<std::vector<size_t>> stored = {std::move(maps[1]), std::move(maps[2]), std::move(maps[0])};
  return std::make_unique<AxisMapStep<uint8_t>>(xs, ys, std::move(stored), "u8 NHWC " + detail);
}

std::unique_ptr<PlanStep> make_gather(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  const PlanShape& x = ctx.in()[0];
  const size_t rank = x.size();
  // `axis` counts the batch (ONNX numbering); `indices` are non-negative, flattened (the output
  // holds them as one dimension; a view gives them their shape).
  const size_t a = static_cast<size_t>(ctx.integer("axis", 1, static_cast<int64_t>(rank)) - 1);
  const auto indices = ctx.integers_or("indices", 0, 0, static_cast<int64_t>(x[a]) - 1, {});
  if (indices.empty()) ctx.fail("attrs.indices", "at least one index", "none");
  PlanShape out = x;
  out[a] = indices.size();
  ctx.expect_output_shape(0, out);
  std::vector<std::vector<size_t>> maps(rank);
  for (size_t d = 0; d < rank; ++d) maps[d] = identity_map(x[d]);
  maps[a].assign(indices.begin(), indices.end());
  return axis_map(ctx, std::move(maps), "axis " + std::to_string(a + 1) + ", " + std::to_string(indices.size()) + " indices");
}

std::unique_ptr<PlanStep> make_expand(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  const PlanShape& x = ctx.in()[0];
  const PlanShape& y = ctx.out()[0];
  // Same rank (the lowering adds the leading 1s as a view); each dim kept or broadcast from 1.
  if (y.size() != x.size()) ctx.fail("outputs[0]", "the input's rank " + std::to_string(x.size()), shape_text(y));
  std::vector<std::vector<size_t>> maps(x.size());
  for (size_t d = 0; d < x.size(); ++d) {
    if (x[d] != y[d] && x[d] != 1) ctx.fail("outputs[0]", "a broadcast of " + shape_text(x), shape_text(y));
    maps[d] = x[d] == y[d] ? identity_map(y[d]) : std::vector<size_t>(y[d], 0);
  }
  return axis_map(ctx, std::move(maps), shape_text(x) + " -> " + shape_text(y));
}

std::unique_ptr<PlanStep> make_tile(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  const PlanShape& x = ctx.in()[0];
  const size_t rank = x.size();
  // Per-image repeats (the batch is never tiled).
  const auto repeats = ctx.integers_or("repeats", rank, 1, INT32_MAX, std::vector<int64_t>(rank, 1));
  PlanShape out(rank);
  std::vector<std::vector<size_t>> maps(rank);
  std::ostringstream detail;
  detail << "repeats";
  for (size_t d = 0; d < rank; ++d) {
    out[d] = x[d] * static_cast<size_t>(repeats[d]);
    for (size_t i = 0; i < out[d]; ++i) maps[d].push_back(i % x[d]);
    detail << " " << repeats[d];
  }
  ctx.expect_output_shape(0, out);
  return axis_map(ctx, std::move(maps), detail.str());
}

}  // namespace runtime
}  // namespace kiln
