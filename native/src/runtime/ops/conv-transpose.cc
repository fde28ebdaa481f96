// ConvTranspose, 2-D (NCHW, weight [Cin, Cout/group, KH, KW]) and 3-D (NCDHW, weight [Cin,
// Cout/group, KD, KH, KW]; a 2-D one is a 3-D one of depth 1): per image and group a GEMM
// cols = W_g^T * X_g with W_g^T packed once, then col2im scatters the columns into the output,
// which starts as the bias. output_padding only adds rows/columns at the end (also those of an ONNX
// output_shape larger than the transposed convolution makes: onnxruntime and the ONNX reference
// pad nothing then and leave the bias there).
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
  size_t cin = 0, d = 1, h = 0, w = 0, cout = 0, od = 1, oh = 0, ow = 0;
  size_t kd = 1, kh = 1, kw = 1, sd = 1, sh = 1, sw = 1, dd = 1, dh = 1, dw = 1, groups = 1;
  int64_t pf = 0, pt = 0, pl = 0;
  bool three_d = false;
};

class ConvTransposeStep : public PlanStep {
 public:
  ConvTransposeStep(const Geometry& g, const float* weight, const float* bias, Activation act) : g_(g), act_(act) {
    const size_t cin_g = g.cin / g.groups, cout_g = g.cout / g.groups;
    const size_t rows = cout_g * g.kd * g.kh * g.kw;
    for (size_t grp = 0; grp < g.groups; ++grp) {
      packed_.emplace_back(true, rows, cin_g, weight + grp * cin_g * rows, rows);
    }
    bias_.assign(g.cout, 0.0f);
    if (bias) std::copy(bias, bias + g.cout, bias_.begin());
  }

  size_t scratch_floats(size_t, size_t) const override { return cols_per_group(); }

  void run(const StepBuffers& io, size_t batch, float* scratch, size_t max_threads) const override {
    const size_t cin_g = g_.cin / g_.groups, cout_g = g_.cout / g_.groups;
    const size_t in_plane = g_.d * g_.h * g_.w, out_plane = g_.od * g_.oh * g_.ow;
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
    if (g_.three_d) s << g_.kd << "x";
    s << g_.kh << "x" << g_.kw << " s";
    if (g_.three_d) s << g_.sd << "x";
    s << g_.sh << "x" << g_.sw << " " << g_.cin << "->" << g_.cout;
    if (g_.groups > 1) s << " g" << g_.groups;
    if (act_.kind != Activation::kNone) s << " " << act_.name();
    return s.str();
  }

 private:
  size_t cols_per_group() const { return (g_.cout / g_.groups) * g_.kd * g_.kh * g_.kw * g_.d * g_.h * g_.w; }

  void col2im(const float* cols, float* y, size_t cout_g) const {
    const size_t in_plane = g_.d * g_.h * g_.w, out_slice = g_.oh * g_.ow, out_plane = g_.od * out_slice;
    for (size_t co = 0; co < cout_g; ++co) {
      float* plane = y + co * out_plane;
      for (size_t kz = 0; kz < g_.kd; ++kz) {
        for (size_t ki = 0; ki < g_.kh; ++ki) {
          for (size_t kj = 0; kj < g_.kw; ++kj) {
            const float* col = cols + (((co * g_.kd + kz) * g_.kh + ki) * g_.kw + kj) * in_plane;
            for (size_t iz = 0; iz < g_.d; ++iz) {
              const int64_t oz = static_cast<int64_t>(iz * g_.sd + kz * g_.dd) - g_.pf;
              if (oz < 0 || oz >= static_cast<int64_t>(g_.od)) continue;
              float* slice = plane + static_cast<size_t>(oz) * out_slice;
              for (size_t ih = 0; ih < g_.h; ++ih) {
                const int64_t oh = static_cast<int64_t>(ih * g_.sh + ki * g_.dh) - g_.pt;
                if (oh < 0 || oh >= static_cast<int64_t>(g_.oh)) continue;
                float* row = slice + static_cast<size_t>(oh) * g_.ow;
                const float* src = col + (iz * g_.h + ih) * g_.w;
                for (size_t iw = 0; iw < g_.w; ++iw) {
                  const int64_t ow = static_cast<int64_t>(iw * g_.sw + kj * g_.dw) - g_.pl;
                  if (ow >= 0 && ow < static_cast<int64_t>(g_.ow)) row[ow] += src[iw];
                }
              }
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
  const PlanShape& x = ctx.in()[0];
  if (x.size() != 3 && x.size() != 4) ctx.fail("inputs[0]", "a per-image shape [C, H, W] or [C, D, H, W]", shape_text(x));
  const size_t n = x.size() - 1;  // spatial dims: 2 or 3
  const PlanTensor& w = ctx.weight("W");
  if (w.shape.size() != n + 2) ctx.fail("weights.W", n == 2 ? "a 4-D weight [Cin, Cout/group, KH, KW]" : "a 5-D weight [Cin, Cout/group, KD, KH, KW]", shape_text(w.shape));
  const std::vector<int64_t> weight_kernel(w.shape.begin() + 2, w.shape.end());
  const auto kernel = ctx.integers_or("kernel", n, 1, kMaxDim, weight_kernel);
  const auto strides = ctx.integers_or("strides", n, 1, kMaxDim, std::vector<int64_t>(n, 1));
  const auto pads = ctx.integers_or("pads", 2 * n, 0, kMaxDim, std::vector<int64_t>(2 * n, 0));
  const auto dilations = ctx.integers_or("dilations", n, 1, kMaxDim, std::vector<int64_t>(n, 1));
  const auto out_pad = ctx.integers_or("outputPadding", n, 0, kMaxDim, std::vector<int64_t>(n, 0));
  const int64_t group = ctx.integer_or("group", 1, kMaxDim, 1);
  // The leading spatial axis is depth for 3-D; a 2-D one gets a depth of 1.
  auto at = [&](const std::vector<int64_t>& v, size_t axis3) -> int64_t { return n == 3 ? v[axis3] : axis3 == 0 ? 1 : v[axis3 - 1]; };
  auto pad_at = [&](size_t axis3, bool end) -> int64_t { return n == 3 ? pads[axis3 + (end ? 3 : 0)] : axis3 == 0 ? 0 : pads[axis3 - 1 + (end ? 2 : 0)]; };
  Geometry g;
  g.three_d = n == 3;
  g.cin = x[0];
  g.d = n == 3 ? x[1] : 1;
  g.h = x[n - 1];
  g.w = x[n];
  g.groups = static_cast<size_t>(group);
  if (g.cin % g.groups != 0) ctx.fail("attrs.group", "a divisor of the input channels (" + std::to_string(g.cin) + ")", std::to_string(group));
  g.cout = w.shape[1] * g.groups;
  g.kd = static_cast<size_t>(at(kernel, 0));
  g.kh = static_cast<size_t>(at(kernel, 1));
  g.kw = static_cast<size_t>(at(kernel, 2));
  g.sd = static_cast<size_t>(at(strides, 0));
  g.sh = static_cast<size_t>(at(strides, 1));
  g.sw = static_cast<size_t>(at(strides, 2));
  g.dd = static_cast<size_t>(at(dilations, 0));
  g.dh = static_cast<size_t>(at(dilations, 1));
  g.dw = static_cast<size_t>(at(dilations, 2));
  g.pf = pad_at(0, false);
  g.pt = pad_at(1, false);
  g.pl = pad_at(2, false);
  if (n == 3) ctx.weight("W", {g.cin, g.cout / g.groups, g.kd, g.kh, g.kw});
  else ctx.weight("W", {g.cin, g.cout / g.groups, g.kh, g.kw});
  const PlanTensor* b = ctx.weight_opt("B", {g.cout});
  for (size_t a = 0; a < n; ++a) {
    if (out_pad[a] >= std::max(strides[a], dilations[a])) {
      ctx.fail("attrs.outputPadding", "values smaller than the stride or the dilation", std::to_string(out_pad[a]));
    }
  }
  int64_t out[3];
  const size_t in_sizes[3] = {g.d, g.h, g.w};
  const size_t k[3] = {g.kd, g.kh, g.kw}, st[3] = {g.sd, g.sh, g.sw}, dl[3] = {g.dd, g.dh, g.dw};
  for (size_t a = 0; a < 3; ++a) {
    const int64_t adj = n == 3 ? out_pad[a] : a == 0 ? 0 : out_pad[a - 1];
    out[a] = static_cast<int64_t>(st[a] * (in_sizes[a] - 1) + (k[a] - 1) * dl[a] + 1) + adj - pad_at(a, false) - pad_at(a, true);
    if (out[a] < 1 || out[a] > kMaxDim) ctx.fail("attrs.pads", "pads and outputPadding leaving a non-empty output of at most 2^20 per axis", std::to_string(out[a]));
  }
  g.od = static_cast<size_t>(out[0]);
  g.oh = static_cast<size_t>(out[1]);
  g.ow = static_cast<size_t>(out[2]);
  if (n == 3) ctx.expect_output_shape(0, {g.cout, g.od, g.oh, g.ow});
  else ctx.expect_output_shape(0, {g.cout, g.oh, g.ow});
  shape_size({g.cout / g.groups, g.kd, g.kh, g.kw, g.d, g.h, g.w});  // the column scratch must be addressable
  return std::make_unique<ConvTransposeStep>(g, w.data, b ? b->data : nullptr, Activation::parse(ctx));
}

}  // namespace runtime
}  // namespace kiln
