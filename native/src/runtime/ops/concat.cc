// Concat along any non-batch axis: per image, each input's contiguous slabs are copied in turn,
// the threads splitting the output's elements.
// Constant inputs are weights "c<k>" (k: their place among all the inputs, full shape with a
// leading 1), the same for every image.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/dispatch.h"
#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

// Output elements [begin, end) of rows of `out_slab` elements, each row the inputs' slabs in turn:
// visit(input, row, offset in its slab, count, output offset) for each contiguous piece. The
// threads split the elements, not the rows: a channel Concat has one row per image, so at batch 1
// whole rows left the second thread idle (SqueezeNet's Concats, 1.5 MB each).
template <class Visit>
void for_each_piece(size_t begin, size_t end, size_t out_slab, const std::vector<size_t>& slabs, Visit visit) {
  size_t row = begin / out_slab, at = begin % out_slab, i = 0, start = 0;  // slab i starts at `start`
  while (start + slabs[i] <= at) start += slabs[i++];
  for (size_t pos = begin; pos < end;) {
    const size_t within = at - start;
    const size_t n = std::min(slabs[i] - within, end - pos);
    if (n > 0) visit(i, row, within, n, pos);
    pos += n;
    at += n;
    if (at - start == slabs[i]) {
      start += slabs[i];
      if (++i == slabs.size()) {
        i = start = at = 0;
        ++row;
      }
    }
  }
}

class ConcatStep : public PlanStep {
 public:
  // outer: product of the per-image dims before the axis; slabs[i]: floats of input i per outer index.
  // source[i]: the value index of part i, or -1 for a constant (consts[i], per image).
  ConcatStep(size_t outer, std::vector<size_t> slabs, std::vector<int64_t> source, std::vector<std::vector<float>> consts)
      : outer_(outer), slabs_(std::move(slabs)), source_(std::move(source)), consts_(std::move(consts)) {
    for (size_t s : slabs_) out_slab_ += s;
  }
  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    for_chunks(batch * outer_ * out_slab_, kElementwiseGrain, max_threads, [&](size_t b, size_t e) {
      for_each_piece(b, e, out_slab_, slabs_, [&](size_t i, size_t r, size_t within, size_t n, size_t at) {
        const float* x = source_[i] >= 0 ? io.in[source_[i]] + r * slabs_[i] : consts_[i].data() + (r % outer_) * slabs_[i];
        std::memcpy(io.out[0] + at, x + within, n * sizeof(float));
      });
    });
  }
  size_t weight_bytes() const override {
    size_t bytes = 0;
    for (const auto& c : consts_) bytes += c.size() * sizeof(float);
    return bytes;
  }

 private:
  size_t outer_;
  std::vector<size_t> slabs_;
  std::vector<int64_t> source_;
  std::vector<std::vector<float>> consts_;
  size_t out_slab_ = 0;
};

// QLinearConcat on uint8 values: each input's codes go through its 256-entry requantization table
// (the dispatch table's lookup_u8_row; a plain copy where its parameters are the output's).
// `outer` rows of each input's slab in turn.
class ConcatU8Step : public PlanStep {
 public:
  ConcatU8Step(size_t outer, std::vector<size_t> slabs, std::vector<std::vector<uint8_t>> tables, std::string detail)
      : outer_(outer), slabs_(std::move(slabs)), tables_(std::move(tables)), detail_(std::move(detail)) {
    for (size_t s : slabs_) out_slab_ += s;
  }
  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const auto lookup = dispatch().s8_conv.lookup_u8_row;
    uint8_t* out = reinterpret_cast<uint8_t*>(io.out[0]);
    for_chunks(batch * outer_ * out_slab_, 4 * kElementwiseGrain, max_threads, [&](size_t b, size_t e) {
      for_each_piece(b, e, out_slab_, slabs_, [&](size_t i, size_t r, size_t within, size_t n, size_t at) {
        const uint8_t* x = reinterpret_cast<const uint8_t*>(io.in[i]) + r * slabs_[i] + within;
        if (tables_[i].empty()) {
          std::memcpy(out + at, x, n);
        } else {
          lookup(tables_[i].data(), x, out + at, n);
        }
      });
    });
  }
  std::string detail() const override { return detail_; }

 private:
  size_t outer_;
  std::vector<size_t> slabs_;
  std::vector<std::vector<uint8_t>> tables_;
  size_t out_slab_ = 0;
  std::string detail_;
};

}  // namespace

// Attrs: axis (ONNX numbering), nhwc (1: images [C, H, W] stored NHWC, axis 1), x_scales,
// x_zero_points (stored, one per input), y_scale, y_zero_point (stored).
std::unique_ptr<PlanStep> make_concat_u8(const StepContext& ctx) {
  ctx.expect_inputs(1, 1024);
  ctx.expect_outputs(1);
  const auto& in = ctx.in();
  for (size_t i = 0; i < in.size(); ++i) ctx.expect_input_dtype(i, PlanDType::kUint8);
  ctx.expect_output_dtype(0, PlanDType::kUint8);
  const size_t rank = in[0].size();
  const size_t a = static_cast<size_t>(ctx.integer("axis", 1, static_cast<int64_t>(rank)) - 1);
  const bool nhwc = ctx.integer_or("nhwc", 0, 1, 0) == 1;
  if (nhwc && (rank != 3 || a != 0)) ctx.fail("attrs.nhwc", "images [C, H, W] concatenated along channels", shape_text(in[0]));
  PlanShape out = in[0];
  out[a] = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    bool ok = in[i].size() == rank;
    for (size_t d = 0; ok && d < rank; ++d) ok = d == a || in[i][d] == in[0][d];
    if (!ok) ctx.fail("inputs[" + std::to_string(i) + "]", "per-image shape " + shape_text(in[0]) + " except along axis " + std::to_string(a + 1), shape_text(in[i]));
    out[a] += in[i][a];
  }
  ctx.expect_output_shape(0, out);
  const auto zps = ctx.integers_or("x_zero_points", in.size(), 0, 255, {});
  const int64_t yz = ctx.integer("y_zero_point", 0, 255);
  const float ys = static_cast<float>(ctx.number_or("y_scale", 0));
  auto it = ctx.spec().attrs.find("x_scales");
  if (it == ctx.spec().attrs.end() || it->second.kind != PlanAttr::kList || it->second.list.size() != in.size()) {
    ctx.fail("attrs.x_scales", std::to_string(in.size()) + " scales", "another value");
  }
  if (!(ys > 0) || !std::isfinite(ys)) ctx.fail("attrs.y_scale", "a finite scale > 0", std::to_string(ys));
  std::vector<std::vector<uint8_t>> tables(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const float s = static_cast<float>(it->second.list[i]);
    if (!(s > 0) || !std::isfinite(s)) ctx.fail("attrs.x_scales", "finite scales > 0", std::to_string(s));
    if (s == ys && zps[i] == yz) continue;  // the output's parameters: a copy
    tables[i].resize(256);
    for (int c = 0; c < 256; ++c) {
      const float real = s * static_cast<float>(c - zps[i]);
      const float q = std::nearbyint(real / ys) + static_cast<float>(yz);
      tables[i][c] = static_cast<uint8_t>(std::min(255.0f, std::max(0.0f, q)));
    }
  }
  size_t outer = 1, inner = 1;
  std::vector<size_t> slabs;
  if (nhwc) {
    outer = in[0][1] * in[0][2];
    for (const PlanShape& x : in) slabs.push_back(x[0]);
  } else {
    for (size_t d = 0; d < a; ++d) outer *= out[d];
    for (size_t d = a + 1; d < rank; ++d) inner *= out[d];
    for (const PlanShape& x : in) slabs.push_back(x[a] * inner);
  }
  return std::make_unique<ConcatU8Step>(outer, std::move(slabs), std::move(tables), nhwc ? "u8 NHWC channels" : "u8 axis " + std::to_string(a + 1));
}

std::unique_ptr<PlanStep> make_concat(const StepContext& ctx) {
  ctx.expect_inputs(1, 1024);
  ctx.expect_outputs(1);
  // The parts in order: values, with the constants "c<k>" put at their places k.
  std::vector<PlanShape> in;
  std::vector<int64_t> source;
  std::vector<std::vector<float>> consts;
  // Takes the constant for the next place, if there is one.
  auto constant = [&]() {
    const std::string key = "c" + std::to_string(in.size());
    if (!ctx.find_weight(key.c_str())) return false;
    const PlanTensor& w = ctx.weight(key.c_str());
    if (w.shape.empty() || w.shape[0] != 1) ctx.fail("weights." + key, "a constant with a leading batch dimension of 1", shape_text(w.shape));
    in.emplace_back(w.shape.begin() + 1, w.shape.end());
    source.push_back(-1);
    consts.emplace_back(w.data, w.data + w.length);
    return true;
  };
  for (size_t next = 0; next < ctx.in().size();) {
    if (constant()) continue;
    in.push_back(ctx.in()[next]);
    source.push_back(static_cast<int64_t>(next++));
    consts.emplace_back();
  }
  while (constant()) {
  }
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
  return std::make_unique<ConcatStep>(outer, std::move(slabs), std::move(source), std::move(consts));
}

}  // namespace runtime
}  // namespace kiln
