// QLinearGemm (uint8 [K] per image times int8 weights packed once, int32 bias, requantized to
// uint8 with a fused ReLU or dequantized to float32) and DynamicQGemm (float input quantized per
// call to uint8 from the min/max of the whole batch, exactly as ONNX DynamicQuantizeLinear, then
// the int8 product dequantized and a float bias added).
//
// With attr `sparse` = 'always' | 'auto', QLinearGemm weights at least half zeros may run on the
// sparse int8 kernels (kiln/s8-sparse.h, 1x4 blocks of 4 consecutive input features), with the same
// bits. The sparse kernel differs below and from S8SparseGemm::kLanesFrom images (blocks gathered
// per image, or the batch in lanes), so 'auto' times both sides of that line (1 and 64 images)
// and may keep sparse for one only.
//
// The lowering permutes the weight's K rows when the input is a Flatten of an NHWC value, so the
// product reads the NHWC order directly.
//
// QLinearGemm's input may have more than one dimension per image, [..., K] (a Linear over the
// last axis, as ConvNeXt's MatMul on [H, W, C]): every row of K is multiplied, so a batch of B
// images is one product of B x rows rows, the output [..., N].
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "common/dispatch.h"
#include "kiln/cpu.h"
#include "kiln/s8-conv.h"
#include "kiln/s8-gemm.h"
#include "kiln/s8-sparse.h"
#include "runtime/ops/ops.h"
#include "runtime/ops/quant-attrs.h"
#include "runtime/ops/s8-sparse-choice.h"
#include "runtime/ops/sparse-mode.h"
#include "runtime/sparse-choice.h"

namespace kiln {
namespace runtime {
namespace {

constexpr int64_t kMaxDim = int64_t{1} << 31;

struct GemmWeights {
  size_t k = 0, n = 0;
  bool trans = true;
  const int8_t* w = nullptr;
  std::vector<float> w_scale;  // n values
};

// Reads W (int8, [N, K] with transB = 1, else [K, N]) and w_scale ([N] or [1], expanded to N).
GemmWeights read_weights(const StepContext& ctx, size_t k) {
  GemmWeights gw;
  gw.k = k;
  gw.trans = ctx.integer_or("transB", 0, 1, 0) == 1;
  gw.n = static_cast<size_t>(ctx.integer("out_features", 1, kMaxDim));
  const PlanTensor& w = ctx.typed_weight("W", PlanDType::kInt8, gw.trans ? std::vector<size_t>{gw.n, k} : std::vector<size_t>{k, gw.n});
  gw.w = static_cast<const int8_t*>(w.raw);
  const PlanTensor* ws = &weight_scales(ctx, gw.n);
  gw.w_scale.assign(gw.n, ws->data[0]);
  if (ws->length == gw.n) gw.w_scale.assign(ws->data, ws->data + gw.n);
  return gw;
}

class QLinearGemmStep : public PlanStep {
 public:
  QLinearGemmStep(const GemmWeights& gw, size_t rows, const int32_t* bias, float a_scale, uint8_t a_zp, bool float_output,
                  float y_scale, uint8_t y_zp, bool relu, SparseMode sparse_mode)
      : packed_(gw.trans, gw.k, gw.n, gw.w, gw.trans ? gw.k : gw.n), rows_(rows), a_zp_(a_zp), float_output_(float_output), relu_(relu) {
    if (bias) bias_.assign(bias, bias + gw.n);
    scale_.resize(gw.n);
    for (size_t o = 0; o < gw.n; ++o) {
      const float s = a_scale * gw.w_scale[o];
      scale_[o] = float_output ? s : s / y_scale;
    }
    rq_.scale = scale_.data();
    rq_.zero_point = y_zp;
    rq_.min = relu ? y_zp : 0;
    rq_.max = 255;
    dq_.scale = scale_.data();
    if (sparse_mode != SparseMode::kNever) choose_sparse(gw, bias, sparse_mode);
  }

  void run(const StepBuffers& io, size_t batch, float* scratch, size_t threads) const override {
    const size_t rows = batch * rows_;
    run_with(io, rows, scratch, threads, sparse_ && (rows >= S8SparseGemm::kLanesFrom ? sparse_lanes_ : sparse_gather_));
  }
  size_t scratch_floats(size_t batch, size_t threads) const override {
    return sparse_ ? round_up_floats(sparse_->scratch_bytes(batch * rows_, threads)) : 0;
  }

 private:
  void choose_sparse(const GemmWeights& gw, const int32_t* bias, SparseMode mode) {
    if (gw.k > S8SparseGemm::kMaxDepth) return;  // the dense path takes any K
    zero_fraction_ = s8_sparse_choice::zero_fraction(gw.w, gw.k * gw.n);
    if (zero_fraction_ < s8_sparse_choice::kFloor) return;
    considered_ = true;
    sparse_ = std::make_unique<const S8SparseGemm>(gw.k, gw.n, gw.w, gw.trans, bias, scale_.data(), a_zp_, float_output_,
                                                   rq_.zero_point, rq_.min, rq_.max);
    sparse_gather_ = sparse_lanes_ = true;
    if (mode == SparseMode::kAuto) {
      // Remembered per process (runtime/sparse-choice.h), keyed by what the timing depends on.
      uint64_t hash = hash_bytes(gw.w, gw.k * gw.n);
      if (bias) hash = hash_bytes(bias, gw.n * sizeof(int32_t), hash);
      auto key = [&](size_t batch) {
        std::ostringstream s;
        s << "QLinearGemm " << gw.k << "x" << gw.n << " t" << gw.trans << " f" << float_output_ << " batch " << batch
          << " isa " << isa_name(dispatch().isa) << " w " << hash;
        return s.str();
      };
      sparse_gather_ = cached_sparse_choice(key(1), [this] { return probe(1); });
      sparse_lanes_ = cached_sparse_choice(key(64), [this] { return probe(64); });
      if (!sparse_gather_ && !sparse_lanes_) sparse_.reset();
    }
  }

  // Both paths on `batch` synthetic rows, one thread: true when the sparse one is faster.
  bool probe(size_t batch) const {
    const size_t k = packed_.depth(), n = packed_.cols();
    std::vector<uint8_t> x(batch * k);
    std::vector<float> y(batch * n);  // room for either output type
    fill_probe(x.data(), x.size());
    std::vector<float> scratch(scratch_floats(batch, 1) + 16);
    const float* in[1] = {reinterpret_cast<const float*>(x.data())};
    float* out[1] = {y.data()};
    const StepBuffers io{in, out};
    return sparse_is_faster([&] { run_with(io, batch, scratch.data(), 1, false); },
                                              [&] { run_with(io, batch, scratch.data(), 1, true); });
  }

  void run_with(const StepBuffers& io, size_t batch, float* scratch, size_t threads, bool sparse) const {
    const auto* a = reinterpret_cast<const uint8_t*>(io.in[0]);
    const size_t k = packed_.depth(), n = packed_.cols();
    const int32_t* bias = bias_.empty() ? nullptr : bias_.data();
    if (sparse) {
      sparse_->run(dispatch(), a, io.out[0], batch, reinterpret_cast<uint8_t*>(scratch), threads);
      if (!float_output_) return;
    } else if (!float_output_) {
      s8gemm_requantize(batch, a, k, a_zp_, packed_, bias, rq_, reinterpret_cast<uint8_t*>(io.out[0]), n, threads);
      return;
    }
    float* y = io.out[0];
    if (!sparse) s8gemm_dequantize(batch, a, k, a_zp_, packed_, bias, dq_, y, n, threads);
    if (relu_) {
      for (size_t i = 0; i < batch * n; ++i) y[i] = y[i] < 0 ? 0.0f : y[i];
    }
  }

 public:
  size_t weight_bytes() const override {
    return packed_.bytes() + bias_.size() * 4 + scale_.size() * 4 + (sparse_ ? sparse_->weight_bytes() : 0);
  }
  std::string detail() const override {
    std::ostringstream s;
    s << "u8 " << packed_.depth() << "->" << packed_.cols();
    if (rows_ > 1) s << " over " << rows_ << " rows";
    s << (relu_ ? " relu" : "") << (float_output_ ? " -> f32" : " -> u8");
    if (considered_) {
      const int pct = s8_sparse_choice::percent(zero_fraction_);
      if (sparse_) {
        s << " sparse s8 1x4 " << pct << "% (" << sparse_->packed().blocks() << " of "
          << sparse_->packed().rows() * sparse_->packed().groups() << " blocks)";
        if (!sparse_gather_) s << " from " << S8SparseGemm::kLanesFrom << " images, dense below";
        if (!sparse_lanes_) s << " below " << S8SparseGemm::kLanesFrom << " images, dense from there";
      } else {
        s << " dense, " << pct << "% zeros";
      }
    }
    return s.str();
  }

 private:
  PackedS8B packed_;
  size_t rows_;  // rows of K per image
  std::vector<int32_t> bias_;
  std::vector<float> scale_;
  uint8_t a_zp_;
  bool float_output_, relu_;
  S8Requantization rq_;
  S8Dequantization dq_;
  std::unique_ptr<const S8SparseGemm> sparse_;
  bool sparse_gather_ = false, sparse_lanes_ = false;  // sparse below / from kLanesFrom images
  bool considered_ = false;
  double zero_fraction_ = 0;
};

// ONNX DynamicQuantizeLinear's parameters for the range [min(x, 0), max(x, 0)], computed in
// double and rounded to float32 exactly as src/quant/qparams.ts does (scale 1, zero point 0 for
// a degenerate range).
void dynamic_params(float lo_f, float hi_f, float* scale, uint8_t* zero_point) {
  const double lo = std::min<double>(lo_f, 0), hi = std::max<double>(hi_f, 0);
  const float s = static_cast<float>((hi - lo) / 255.0);
  if (!std::isfinite(s)) throw std::range_error("Expected finite activations for DynamicQGemm but received a range whose scale overflows float32");
  if (s < std::numeric_limits<float>::min()) {
    *scale = 1;
    *zero_point = 0;
    return;
  }
  const double zp = std::nearbyint(-lo / static_cast<double>(s));
  *scale = s;
  *zero_point = static_cast<uint8_t>(std::min(255.0, std::max(0.0, zp)));
}

class DynamicQGemmStep : public PlanStep {
 public:
  DynamicQGemmStep(const GemmWeights& gw, const float* bias, bool relu)
      : packed_(gw.trans, gw.k, gw.n, gw.w, gw.trans ? gw.k : gw.n), w_scale_(gw.w_scale), relu_(relu) {
    if (bias) bias_.assign(bias, bias + gw.n);
  }

  void run(const StepBuffers& io, size_t batch, float* scratch, size_t threads) const override {
    const size_t k = packed_.depth(), n = packed_.cols(), total = batch * k;
    const float* x = io.in[0];
    float lo = 0, hi = 0;  // NaN compares false and is skipped, as in the reference
    for (size_t i = 0; i < total; ++i) {
      if (x[i] < lo) lo = x[i];
      if (x[i] > hi) hi = x[i];
    }
    float scale;
    uint8_t zp;
    dynamic_params(lo, hi, &scale, &zp);
    float* scales = scratch;
    auto* q = reinterpret_cast<uint8_t*>(scratch + round16(n));
    for (size_t o = 0; o < n; ++o) scales[o] = scale * w_scale_[o];
    quantize_u8_nchw_to_nhwc(x, q, 1, 1, total, scale, zp, threads);
    S8Dequantization dq;
    dq.scale = scales;
    float* y = io.out[0];
    s8gemm_dequantize(batch, q, k, zp, packed_, nullptr, dq, y, n, threads);
    if (!bias_.empty() || relu_) {
      for (size_t r = 0; r < batch; ++r) {
        float* row = y + r * n;
        for (size_t o = 0; o < n; ++o) {
          float v = bias_.empty() ? row[o] : row[o] + bias_[o];
          row[o] = relu_ && v < 0 ? 0.0f : v;
        }
      }
    }
  }
  size_t scratch_floats(size_t batch, size_t) const override { return round16(packed_.cols()) + round_up_floats(batch * packed_.depth()); }
  size_t weight_bytes() const override { return packed_.bytes() + (bias_.size() + w_scale_.size()) * 4; }
  std::string detail() const override {
    std::ostringstream s;
    s << "f32 -> dynamic u8 " << packed_.depth() << "->" << packed_.cols() << (relu_ ? " relu" : "") << " -> f32";
    return s.str();
  }

 private:
  static size_t round16(size_t n) { return (n + 15) / 16 * 16; }
  PackedS8B packed_;
  std::vector<float> w_scale_, bias_;
  bool relu_;
};

size_t input_features(const StepContext& ctx) {
  ctx.expect_input_rank(0, 1);
  return ctx.in()[0][0];
}

}  // namespace

std::unique_ptr<PlanStep> make_qlinear_gemm(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_input_dtype(0, PlanDType::kUint8);
  const bool float_output = !ctx.has("y_scale");
  ctx.expect_output_dtype(0, float_output ? PlanDType::kFloat32 : PlanDType::kUint8);
  const PlanShape& in = ctx.in()[0];
  if (in.empty()) ctx.fail("input 0", "a per-image shape [..., K]", "a scalar");
  size_t rows = 1;
  for (size_t i = 0; i + 1 < in.size(); ++i) rows *= in[i];
  const GemmWeights gw = read_weights(ctx, in.back());
  const PlanTensor* b = ctx.typed_weight_opt("B", PlanDType::kInt32, {gw.n});
  PlanShape out_shape(in.begin(), in.end() - 1);
  out_shape.push_back(gw.n);
  ctx.expect_output_shape(0, out_shape);
  const float a_scale = scale_attr(ctx, "a_scale");
  const uint8_t a_zp = zero_point_attr(ctx, "a_zero_point");
  const bool relu = ctx.integer_or("relu", 0, 1, 0) == 1;
  const float y_scale = float_output ? 1.0f : scale_attr(ctx, "y_scale");
  const uint8_t y_zp = float_output ? 0 : zero_point_attr(ctx, "y_zero_point");
  const SparseMode sparse_mode = parse_sparse_mode(ctx);
  return std::make_unique<QLinearGemmStep>(gw, rows, b ? static_cast<const int32_t*>(b->raw) : nullptr, a_scale, a_zp, float_output, y_scale,
                                           y_zp, relu, sparse_mode);
}

std::unique_ptr<PlanStep> make_dynamic_qgemm(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_input_dtype(0, PlanDType::kFloat32);
  ctx.expect_output_dtype(0, PlanDType::kFloat32);
  const GemmWeights gw = read_weights(ctx, input_features(ctx));
  const PlanTensor* b = ctx.typed_weight_opt("B", PlanDType::kFloat32, {gw.n});
  ctx.expect_output_shape(0, {gw.n});
  const bool relu = ctx.integer_or("relu", 0, 1, 0) == 1;
  return std::make_unique<DynamicQGemmStep>(gw, b ? b->data : nullptr, relu);
}

}  // namespace runtime
}  // namespace kiln
