// ReduceMean / ReduceMax / ReduceMin / ReduceSum / ReduceProd / ReduceL1 / ReduceL2 /
// ReduceSumSquare / ReduceLogSumExp / ReduceLogSum over per-image axes (attr `axes`, ONNX numbering, batch = 0
// never reduced; `keepdims`). Dimensions are collapsed at build time: when the reduced ones form
// one trailing block (global pooling over NCHW's spatial axes, the common case) every output is
// one contiguous row of the dispatch table's f32_math.reduce_rows kernel; when they form one block
// with kept axes on both sides (channels of NCHW) whole inner rows are combined at a time;
// otherwise each output's elements are gathered into a row first.
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "common/dispatch.h"
#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

enum class Post { kNone, kMean, kSqrt, kLog };
enum class Path { kRows, kStrided, kGathered };

// out[i] = combine over r < count of x[r * inner + i], for i < inner (Sum-like kinds in double).
void reduce_strided(F32ReduceKind kind, const float* x, size_t count, size_t inner, float* out, std::vector<double>& acc) {
  if (kind == F32ReduceKind::kMax || kind == F32ReduceKind::kMin) {
    const bool max = kind == F32ReduceKind::kMax;
    for (size_t i = 0; i < inner; ++i) out[i] = x[i];
    for (size_t r = 1; r < count; ++r) {
      const float* v = x + r * inner;
      // A NaN takes over and then stays (no value compares above or below it).
      for (size_t i = 0; i < inner; ++i) out[i] = ((max ? v[i] > out[i] : v[i] < out[i]) || v[i] != v[i]) ? v[i] : out[i];
    }
    return;
  }
  acc.assign(inner, 0.0);
  for (size_t r = 0; r < count; ++r) {
    const float* v = x + r * inner;
    if (kind == F32ReduceKind::kSumSquare) {
      for (size_t i = 0; i < inner; ++i) acc[i] += static_cast<double>(v[i]) * v[i];
    } else if (kind == F32ReduceKind::kSumAbs) {
      for (size_t i = 0; i < inner; ++i) acc[i] += std::fabs(static_cast<double>(v[i]));
    } else {
      for (size_t i = 0; i < inner; ++i) acc[i] += v[i];
    }
  }
  for (size_t i = 0; i < inner; ++i) out[i] = static_cast<float>(acc[i]);
}

class ReduceStep : public PlanStep {
 public:
  ReduceStep(F32ReduceKind kind, Post post, size_t in_image, size_t out_image, size_t count,
             std::vector<size_t> kept_dims, std::vector<size_t> kept_strides, std::vector<size_t> offsets,
             Path path, size_t inner, std::string detail)
      : kind_(kind), post_(post), in_image_(in_image), out_image_(out_image), count_(count),
        kept_dims_(std::move(kept_dims)), kept_strides_(std::move(kept_strides)), offsets_(std::move(offsets)),
        path_(path), inner_(inner), detail_(std::move(detail)) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const F32ReduceRowsFn rows = dispatch().f32_math.reduce_rows;
    const float* x = io.in[0];
    float* y = io.out[0];
    if (count_ == 0) {
      // An empty set: the reduction's identity (the input, which has no elements, is not read).
      std::fill(y, y + batch * out_image_, empty_value());
      return;
    }
    if (path_ == Path::kStrided) {
      // Blocks of count_ x inner_ inputs -> inner_ outputs.
      const size_t blocks = batch * out_image_ / inner_;
      const size_t grain = std::max<size_t>(1, kElementwiseGrain / (count_ * inner_));
      for_chunks(blocks, grain, max_threads, [&](size_t b, size_t e) {
        std::vector<double> acc;
        for (size_t k = b; k < e; ++k) reduce_strided(kind_, x + k * count_ * inner_, count_, inner_, y + k * inner_, acc);
        finish(y + b * inner_, y + e * inner_);
      });
      return;
    }
    const size_t total = batch * out_image_;
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / count_);
    for_chunks(total, grain, max_threads, [&](size_t b, size_t e) {
      if (path_ == Path::kRows) {
        // Output o reads the contiguous row x[o * count, (o + 1) * count).
        rows(kind_, x + b * count_, e - b, count_, y + b);
      } else {
        std::vector<float> row(count_);
        for (size_t o = b; o < e; ++o) {
          const size_t image = o / out_image_;
          size_t rest = o % out_image_, base = image * in_image_;
          for (size_t d = kept_dims_.size(); d-- > 0;) {
            base += (rest % kept_dims_[d]) * kept_strides_[d];
            rest /= kept_dims_[d];
          }
          for (size_t r = 0; r < count_; ++r) row[r] = x[base + offsets_[r]];
          rows(kind_, row.data(), 1, count_, y + o);
        }
      }
      finish(y + b, y + e);
    });
  }
  std::string detail() const override { return detail_; }

 private:
  // The value over an empty set, as onnxruntime gives it: Sum-like 0, Prod 1, Max -inf, Min +inf,
  // LogSumExp -inf, then the post step (L2 0, LogSum log 0 = -inf; Mean 0, not numpy's 0/0).
  float empty_value() const {
    float v = 0;
    if (kind_ == F32ReduceKind::kProd) v = 1;
    if (kind_ == F32ReduceKind::kMax || kind_ == F32ReduceKind::kLogSumExp) v = -std::numeric_limits<float>::infinity();
    if (kind_ == F32ReduceKind::kMin) v = std::numeric_limits<float>::infinity();
    if (post_ == Post::kSqrt) return std::sqrt(v);
    if (post_ == Post::kLog) return std::log(v);
    return v;
  }

  // Mean's division, L2's square root and LogSum's log.
  void finish(float* b, float* e) const {
    for (float* p = b; p < e; ++p) {
      if (post_ == Post::kMean) *p = static_cast<float>(static_cast<double>(*p) / static_cast<double>(count_));
      if (post_ == Post::kSqrt) *p = std::sqrt(*p);
      if (post_ == Post::kLog) *p = std::log(*p);
    }
  }

  F32ReduceKind kind_;
  Post post_;
  size_t in_image_, out_image_, count_;
  std::vector<size_t> kept_dims_, kept_strides_, offsets_;
  Path path_;
  size_t inner_;
  std::string detail_;
};

}  // namespace

std::unique_ptr<PlanStep> make_reduce(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  const PlanShape& x = ctx.in()[0];
  const std::string& op = ctx.spec().op;
  F32ReduceKind kind = F32ReduceKind::kSum;
  Post post = Post::kNone;
  if (op == "ReduceMean") {
    post = Post::kMean;
  } else if (op == "ReduceMax") {
    kind = F32ReduceKind::kMax;
  } else if (op == "ReduceMin") {
    kind = F32ReduceKind::kMin;
  } else if (op == "ReduceProd") {
    kind = F32ReduceKind::kProd;
  } else if (op == "ReduceL1") {
    kind = F32ReduceKind::kSumAbs;
  } else if (op == "ReduceL2") {
    kind = F32ReduceKind::kSumSquare;
    post = Post::kSqrt;
  } else if (op == "ReduceSumSquare") {
    kind = F32ReduceKind::kSumSquare;
  } else if (op == "ReduceLogSumExp") {
    kind = F32ReduceKind::kLogSumExp;
  } else if (op == "ReduceLogSum") {
    post = Post::kLog;
  } else if (op != "ReduceSum") {
    ctx.fail("op", "a Reduce op", op);
  }
  const size_t rank = x.size();
  const std::vector<int64_t> axes = ctx.integers_or("axes", 0, 1, static_cast<int64_t>(rank), {});
  if (axes.empty()) ctx.fail("attrs.axes", "at least one per-image axis (1.." + std::to_string(rank) + ")", "none");
  std::vector<bool> reduced(rank, false);
  for (int64_t a : axes) {
    if (reduced[a - 1]) ctx.fail("attrs.axes", "distinct axes", "axis " + std::to_string(a) + " twice");
    reduced[a - 1] = true;
  }
  const bool keep = ctx.integer_or("keepdims", 0, 1, 1) == 1;
  PlanShape out;
  for (size_t d = 0; d < rank; ++d) {
    if (!reduced[d]) out.push_back(x[d]);
    else if (keep) out.push_back(1);
  }
  ctx.expect_output_shape(0, out);
  // Strides of the input; the kept and reduced dimensions (size-1 ones dropped).
  std::vector<size_t> stride(rank, 1);
  for (size_t d = rank; d-- > 1;) stride[d - 1] = stride[d] * x[d];
  std::vector<size_t> kept_dims, kept_strides, red_dims, red_strides;
  size_t red_groups = 0, inner = 1;  // runs of reduced dimensions; kept elements after the last
  bool last_reduced = false;
  for (size_t d = 0; d < rank; ++d) {
    if (x[d] == 1) continue;
    if (reduced[d]) {
      if (!last_reduced) ++red_groups;
      red_dims.push_back(x[d]);
      red_strides.push_back(stride[d]);
      inner = 1;
    } else {
      kept_dims.push_back(x[d]);
      kept_strides.push_back(stride[d]);
      inner *= x[d];
    }
    last_reduced = reduced[d];
  }
  if (red_groups == 0) inner = 1;
  size_t count = 1;
  for (size_t d : red_dims) count *= d;
  // One trailing block: rows; one block followed by kept axes: strided rows (its element-wise
  // kinds); anything else: gathered.
  const bool strided_kind = kind != F32ReduceKind::kProd && kind != F32ReduceKind::kLogSumExp;
  const Path path = red_groups <= 1 && inner == 1 ? Path::kRows : red_groups == 1 && strided_kind ? Path::kStrided : Path::kGathered;
  std::vector<size_t> offsets;
  if (path == Path::kGathered) {
    offsets.assign(count, 0);
    for (size_t r = 0; r < count; ++r) {
      size_t rest = r, off = 0;
      for (size_t d = red_dims.size(); d-- > 0;) {
        off += (rest % red_dims[d]) * red_strides[d];
        rest /= red_dims[d];
      }
      offsets[r] = off;
    }
  }
  std::ostringstream detail;
  detail << "axes [";
  for (size_t i = 0; i < axes.size(); ++i) detail << (i ? ", " : "") << axes[i];
  detail << "]" << (keep ? " keepdims" : "") << (path == Path::kRows ? " rows of " : path == Path::kStrided ? " strided rows of " : " gathered ")
         << count;
  return std::make_unique<ReduceStep>(kind, post, shape_size(x), shape_size(out), count, std::move(kept_dims),
                                      std::move(kept_strides), std::move(offsets), path, inner, detail.str());
}

}  // namespace runtime
}  // namespace kiln
