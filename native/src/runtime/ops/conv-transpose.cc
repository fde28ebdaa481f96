// ConvTranspose (NCHW, weight [Cin, Cout/group, KH, KW]): per image and group a GEMM
// cols = W_g^T * X_g with W_g^T packed once, then col2im scatters the columns into the output,
// which starts as the bias. output_padding only adds rows/columns at the end.
#include <algorithm>
#include <sstream>
#include <vector>

#include "kiln/f32-gemm.h"
#include "runtime/activation.h"
#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

// Bounds that keep the output-size arithmetic far from overflow (dims are < 2^31).
constexpr int64_t kMaxDim = int64_t{1} << 20;

struct Geometry {
  size_t cin = 0, h = 0, w = 0, cout = 0, oh = 0, ow = 0;
  size_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1, groups = 1;
  int64_t pt = 0, pl = 0;
};

class ConvTransposeStep : public PlanStep {
 public:
  ConvTransposeStep(const Geometry& g, const float* weight, const float* bias, Activation act) : g_(g), act_(act) {
    const size_t cin_g = g.cin / g.groups, cout_g = g.cout / g.groups;
    const size_t rows = cout_g * g.kh * g.kw;
    for (size_t grp = 0; grp < g.groups; ++grp) {
      packed_.emplace_back(true, rows, cin_g, weight + grp * cin_g * rows, rows);
    }
    bias_.assign(g.cout, 0.0f);
    if (bias) std::copy(bias, bias + g.cout, bias_.begin());
  }

  size_t scratch_floats(size_t, size_t) const override { return cols_per_group(); }

  void run(const StepBuffers& io, size_t batch, float* scratch, size_t max_threads) const override {
    const size_t cin_g = g_.cin / g_.groups, cout_g = g_.cout / g_.groups;
    const size_t in_plane = g_.h * g_.w, out_plane = g_.oh * g_.ow;
    for (size_t n = 0; n < batch; ++n) {
      float* y = io.out[0] + n * g_.cout * out_plane;
      for (size_t c = 0; c < g_.cout; ++c) std::fill(y + c * out_plane, y + (c + 1) * out_plane, bias_[c]);
      for (size_t grp = 0; grp < g_.groups; ++grp) {
        const float* x = io.in[0] + (n * g_.cin + grp * cin_g) * in_plane;
        sgemm_packed_a(packed_[grp], in_plane, false, x, in_plane, scratch, in_plane, GemmEpilogue(), max_threads);
        col2im(scratch, y + grp * cout_g * out_plane, cout_g);
      }
    }
    if (act_.kind != Activation::kNone) {
      float* y = io.out[0];
      for_chunks(batch * g_.cout * out_plane, kElementwiseGrain, max_threads, [&](size_t b, size_t e) { act_.apply(y + b, e - b); });
    }
  }
  size_t weight_bytes() const override {
    size_t bytes = bias_.size() * sizeof(float);
    for (const PackedA& p : packed_) bytes += p.bytes();
    return bytes;
  }
  std::string detail() const override {
    std::ostringstream s;
    s << g_.kh << "x" << g_.kw << " s" << g_.sh << "x" << g_.sw << " " << g_.cin << "->" << g_.cout;
    if (g_.groups > 1) s << " g" << g_.groups;
    if (act_.kind != Activation::kNone) s << " " << act_.name();
    return s.str();
  }

 private:
  size_t cols_per_group() const { return (g_.cout / g_.groups) * g_.kh * g_.kw * g_.h * g_.w; }

  void col2im(const float* cols, float* y, size_t cout_g) const {
    const size_t in_plane = g_.h * g_.w, out_plane = g_.oh * g_.ow;
    for (size_t co = 0; co < cout_g; ++co) {
      float* plane = y + co * out_plane;
      for (size_t ki = 0; ki < g_.kh; ++ki) {
        for (size_t kj = 0; kj < g_.kw; ++kj) {
          const float* col = cols + ((co * g_.kh + ki) * g_.kw + kj) * in_plane;
          for (size_t ih = 0; ih < g_.h; ++ih) {
            const int64_t oh = static_cast<int64_t>(ih * g_.sh + ki * g_.dh) - g_.pt;
            if (oh < 0 || oh >= static_cast<int64_t>(g_.oh)) continue;
            float* row = plane + static_cast<size_t>(oh) * g_.ow;
            const float* src = col + ih * g_.w;
            for (size_t iw = 0; iw < g_.w; ++iw) {
              const int64_t ow = static_cast<int64_t>(iw * g_.sw + kj * g_.dw) - g_.pl;
              if (ow >= 0 && ow < static_cast<int64_t>(g_.ow)) row[ow] += src[iw];
            }
          }
        }
      }
    }
  }

  Geometry g_;
  Activation act_;
  std::vector<PackedA> packed_;
  std::vector<float> bias_;
};

}  // namespace

std::unique_ptr<PlanStep> make_conv_transpose(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_input_rank(0, 3);
  const PlanShape& x = ctx.in()[0];
  const PlanTensor& w = ctx.weight("W");
  if (w.shape.size() != 4) ctx.fail("weights.W", "a 4-D weight [Cin, Cout/group, KH, KW]", shape_text(w.shape));
  const auto kernel = ctx.integers_or("kernel", 2, 1, kMaxDim, {int64_t(w.shape[2]), int64_t(w.shape[3])});
  const auto strides = ctx.integers_or("strides", 2, 1, kMaxDim, {1, 1});
  const auto pads = ctx.integers_or("pads", 4, 0, kMaxDim, {0, 0, 0, 0});
  const auto dilations = ctx.integers_or("dilations", 2, 1, kMaxDim, {1, 1});
  const auto out_pad = ctx.integers_or("outputPadding", 2, 0, kMaxDim, {0, 0});
  const int64_t group = ctx.integer_or("group", 1, kMaxDim, 1);
  Geometry g;
  g.cin = x[0];
  g.h = x[1];
  g.w = x[2];
  g.groups = static_cast<size_t>(group);
  if (g.cin % g.groups != 0) ctx.fail("attrs.group", "a divisor of the input channels (" + std::to_string(g.cin) + ")", std::to_string(group));
  g.cout = w.shape[1] * g.groups;
  g.kh = static_cast<size_t>(kernel[0]);
  g.kw = static_cast<size_t>(kernel[1]);
  g.sh = static_cast<size_t>(strides[0]);
  g.sw = static_cast<size_t>(strides[1]);
  g.dh = static_cast<size_t>(dilations[0]);
  g.dw = static_cast<size_t>(dilations[1]);
  g.pt = pads[0];
  g.pl = pads[1];
  ctx.weight("W", {g.cin, g.cout / g.groups, g.kh, g.kw});
  const PlanTensor* b = ctx.weight_opt("B", {g.cout});
  if (out_pad[0] >= std::max<int64_t>(strides[0], dilations[0]) || out_pad[1] >= std::max<int64_t>(strides[1], dilations[1])) {
    ctx.fail("attrs.outputPadding", "values smaller than the stride or the dilation", std::to_string(out_pad[0]) + ", " + std::to_string(out_pad[1]));
  }
  const int64_t oh = static_cast<int64_t>(g.sh * (g.h - 1) + (g.kh - 1) * g.dh + 1) + out_pad[0] - pads[0] - pads[2];
  const int64_t ow = static_cast<int64_t>(g.sw * (g.w - 1) + (g.kw - 1) * g.dw + 1) + out_pad[1] - pads[1] - pads[3];
  if (oh < 1 || ow < 1) ctx.fail("attrs.pads", "pads leaving a non-empty output", std::to_string(oh) + " x " + std::to_string(ow));
  g.oh = static_cast<size_t>(oh);
  g.ow = static_cast<size_t>(ow);
  ctx.expect_output_shape(0, {g.cout, g.oh, g.ow});
  shape_size({g.cout / g.groups, g.kh, g.kw, g.h, g.w});  // the column scratch must be addressable
  return std::make_unique<ConvTransposeStep>(g, w.data, b ? b->data : nullptr, Activation::parse(ctx));
}

}  // namespace runtime
}  // namespace kiln
