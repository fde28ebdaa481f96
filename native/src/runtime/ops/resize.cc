// Resize (and the deprecated Upsample) of the last two per-image dimensions (H, W; a rank-1 image
// resizes W only): nearest, linear and cubic, every coordinate_transformation_mode, every
// nearest_mode, onnxruntime's arithmetic (float coordinates); antialiased linear and cubic
// downscales and tf_crop_and_resize's extrapolation follow the ONNX reference. The
// per-axis index and weight tables are built once here; the rows run on the dispatch table's
// resize kernels (resize/resize-rows.h): a vertical blend of the taps' rows, then a horizontal
// gather, and for nearest a gather (or a 2x duplication) per new input row, repeated rows copied.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>

#include "common/dispatch.h"
#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

enum class Mode { kNearest, kLinear, kCubic };

// One axis's taps: output position j reads input idx[j * taps + t] with weight w[j * taps + t].
struct AxisTable {
  size_t in = 1, out = 1, taps = 1;
  std::vector<int32_t> idx;
  std::vector<float> w;
  bool doubles = false;  // nearest, out = 2 in, idx[j] = j / 2
  // tf_crop_and_resize: output positions whose coordinate falls outside the input (they take the
  // extrapolation value); empty otherwise.
  std::vector<uint8_t> outside;
};

// The region of the input a tf_crop_and_resize reads (fractions of length - 1), and whether the
// axis is cropped at all.
struct Crop {
  bool on = false;
  float start = 0, end = 1;
};

// The antialias filters of the ONNX reference (op_resize.py): a triangle (linear) or Keys cubic
// (cubic) tent stretched by 1/scale on a downscale.
double antialias_filter(Mode mode, double x, double a) {
  x = std::fabs(x);
  if (mode == Mode::kLinear) return std::max(0.0, 1 - x);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

// The input coordinate of output position x (onnxruntime's GetOriginalCoordinateFromResizedCoordinate).
float original_coordinate(const std::string& mode, float x, float scale, float length_resized, float length_original) {
  if (mode == "half_pixel") return (x + 0.5f) / scale - 0.5f;
  if (mode == "pytorch_half_pixel") return length_resized > 1 ? (x + 0.5f) / scale - 0.5f : 0.0f;
  if (mode == "align_corners") return length_resized == 1 ? 0.0f : x * (length_original - 1) / (length_resized - 1);
  if (mode == "tf_half_pixel_for_nn") return (x + 0.5f) / scale;
  if (mode == "half_pixel_symmetric") {
    const float adjustment = length_resized / (scale * length_original);
    const float center = length_original / 2;
    const float offset = center * (1 - adjustment);
    return offset + (x + 0.5f) / scale - 0.5f;
  }
  return x / scale;  // asymmetric
}

int64_t nearest_pixel(const std::string& mode, float x) {
  if (mode == "round_prefer_ceil") return static_cast<int64_t>(std::round(x));
  if (mode == "floor") return static_cast<int64_t>(std::floor(x));
  if (mode == "ceil") return static_cast<int64_t>(std::ceil(x));
  // round_prefer_floor
  if (x == static_cast<float>(static_cast<int64_t>(x)) + 0.5f) return static_cast<int64_t>(std::floor(x));
  return static_cast<int64_t>(std::round(x));
}

// The taps of an antialiased downscale (scale < 1): the filter's support (1 linear, 2 cubic)
// widened to support / scale each side, the weights normalized to sum 1, indices clamped to the
// edge, as the ONNX reference computes them.
void antialias_taps(AxisTable& a, Mode mode, float scale, float x, size_t j, int64_t start, double cubic_a, bool exclude_outside) {
  const int64_t last = static_cast<int64_t>(a.in) - 1;
  // The reference prefers the pixel left of x: an integer x counts as ratio 1 from x - 1.
  double base = std::floor(static_cast<double>(x));
  double ratio = static_cast<double>(x) - base;
  if (ratio == 0) {
    ratio = 1;
    base -= 1;
  }
  std::vector<double> c(a.taps);
  double sum = 0;
  for (size_t t = 0; t < a.taps; ++t) {
    const double k = static_cast<double>(start + static_cast<int64_t>(t));
    const int64_t i = static_cast<int64_t>(base) + start + static_cast<int64_t>(t);
    c[t] = antialias_filter(mode, (k - ratio) * static_cast<double>(scale), cubic_a);
    if (exclude_outside && (i < 0 || i > last)) c[t] = 0;
    sum += c[t];
  }
  for (size_t t = 0; t < a.taps; ++t) {
    const int64_t i = static_cast<int64_t>(base) + start + static_cast<int64_t>(t);
    a.idx[j * a.taps + t] = static_cast<int32_t>(std::max<int64_t>(0, std::min(i, last)));
    a.w[j * a.taps + t] = static_cast<float>(sum != 0 ? c[t] / sum : 0);
  }
}

AxisTable axis_table(Mode mode, size_t in, size_t out, float scale, const std::string& coord, const std::string& nearest,
                     float cubic_a, bool exclude_outside, bool antialias = false, Crop crop = {}) {
  AxisTable a;
  a.in = in;
  a.out = out;
  a.taps = mode == Mode::kNearest ? 1 : mode == Mode::kLinear ? 2 : 4;
  // At scale >= 1 the antialias filter is the plain one (the reference's min(scale, 1)).
  const bool widen = antialias && mode != Mode::kNearest && scale < 1;
  int64_t start = 0;
  if (widen) {
    const double support = mode == Mode::kLinear ? 1 : 2;
    start = static_cast<int64_t>(std::floor(-support / static_cast<double>(scale))) + 1;
    a.taps = static_cast<size_t>(2 - 2 * start);
  }
  a.idx.resize(out * a.taps);
  a.w.resize(out * a.taps);
  if (crop.on) a.outside.assign(out, 0);
  const int64_t last = static_cast<int64_t>(in) - 1;
  auto clamp = [&](int64_t i) { return static_cast<int32_t>(std::max<int64_t>(0, std::min(i, last))); };
  for (size_t j = 0; j < out; ++j) {
    float x;
    if (crop.on) {
      // onnxruntime's and the reference's tf_crop_and_resize coordinate; positions outside the
      // input take the extrapolation value (their taps stay in range, their result is replaced).
      const float len = static_cast<float>(last);
      x = out > 1 ? crop.start * len + static_cast<float>(j) * (crop.end - crop.start) * len / static_cast<float>(out - 1)
                  : 0.5f * (crop.start + crop.end) * len;
      if (x < 0 || x > len) {
        a.outside[j] = 1;
        x = 0;
      }
    } else {
      x = original_coordinate(coord, static_cast<float>(j), scale, static_cast<float>(out), static_cast<float>(in));
    }
    if (widen) {
      antialias_taps(a, mode, scale, x, j, start, cubic_a, exclude_outside);
    } else if (mode == Mode::kNearest) {
      a.idx[j] = clamp(in == 1 ? 0 : nearest_pixel(nearest, x));
      a.w[j] = 1;
    } else if (mode == Mode::kLinear) {
      x = std::max(0.0f, std::min(x, static_cast<float>(last)));
      const int64_t x1 = std::min<int64_t>(static_cast<int64_t>(x), last);
      const int64_t x2 = std::min<int64_t>(x1 + 1, last);
      float d1 = std::fabs(x - static_cast<float>(x1)), d2 = std::fabs(x - static_cast<float>(x2));
      if (x1 == x2) d1 = d2 = 0.5f;
      a.idx[2 * j] = static_cast<int32_t>(x1);
      a.idx[2 * j + 1] = static_cast<int32_t>(x2);
      a.w[2 * j] = d2;
      a.w[2 * j + 1] = d1;
    } else {
      const float f = std::floor(x);
      const float s = x - f;
      const float A = cubic_a;
      float c[4] = {
          ((A * (s + 1) - 5 * A) * (s + 1) + 8 * A) * (s + 1) - 4 * A,
          ((A + 2) * s - (A + 3)) * s * s + 1,
          ((A + 2) * (1 - s) - (A + 3)) * (1 - s) * (1 - s) + 1,
          ((A * (2 - s) - 5 * A) * (2 - s) + 8 * A) * (2 - s) - 4 * A,
      };
      const int64_t base = static_cast<int64_t>(f) - 1;
      if (exclude_outside) {
        float sum = 0;
        for (int t = 0; t < 4; ++t) {
          const int64_t i = base + t;
          if (i < 0 || i > last) c[t] = 0;
          sum += c[t];
        }
        for (int t = 0; t < 4; ++t) c[t] = sum != 0 ? c[t] / sum : 0;
      }
      for (int t = 0; t < 4; ++t) {
        a.idx[4 * j + t] = clamp(base + t);
        a.w[4 * j + t] = c[t];
      }
    }
  }
  if (mode == Mode::kNearest && out == 2 * in && !crop.on) {
    a.doubles = true;
    for (size_t j = 0; j < out; ++j) a.doubles = a.doubles && a.idx[j] == static_cast<int32_t>(j / 2);
  }
  return a;
}

class ResizeStep : public PlanStep {
 public:
  ResizeStep(Mode mode, size_t planes, AxisTable h, AxisTable w, float extrapolation, std::string detail)
      : mode_(mode), planes_(planes), h_(std::move(h)), w_(std::move(w)), extrapolation_(extrapolation), detail_(std::move(detail)) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const F32ResizeKernels& k = dispatch().f32_resize;
    const size_t in_plane = h_.in * w_.in, out_plane = h_.out * w_.out;
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / std::max<size_t>(1, out_plane));
    for_chunks(batch * planes_, grain, max_threads, [&](size_t b, size_t e) {
      thread_local std::vector<float> blended;
      thread_local std::vector<const float*> rows;
      if (mode_ != Mode::kNearest && blended.size() < w_.in) blended.resize(w_.in);
      if (rows.size() < h_.taps) rows.resize(h_.taps);
      for (size_t p = b; p < e; ++p) {
        const float* x = io.in[0] + p * in_plane;
        float* y = io.out[0] + p * out_plane;
        if (mode_ == Mode::kNearest) {
          nearest_plane(k, x, y);
        } else {
          for (size_t oh = 0; oh < h_.out; ++oh) {
            for (size_t t = 0; t < h_.taps; ++t) rows[t] = x + static_cast<size_t>(h_.idx[oh * h_.taps + t]) * w_.in;
            k.blend_rows(rows.data(), h_.w.data() + oh * h_.taps, h_.taps, w_.in, blended.data());
            k.taps_row(blended.data(), w_.idx.data(), w_.w.data(), w_.taps, w_.out, y + oh * w_.out);
          }
        }
        extrapolate(y);
      }
    });
  }
  std::string detail() const override { return detail_; }

 private:
  // tf_crop_and_resize: rows and columns whose coordinate left the input take the extrapolation value.
  void extrapolate(float* y) const {
    for (size_t oh = 0; oh < h_.out; ++oh) {
      float* row = y + oh * w_.out;
      if (!h_.outside.empty() && h_.outside[oh]) {
        std::fill(row, row + w_.out, extrapolation_);
        continue;
      }
      if (w_.outside.empty()) continue;
      for (size_t ow = 0; ow < w_.out; ++ow) {
        if (w_.outside[ow]) row[ow] = extrapolation_;
      }
    }
  }

  void nearest_plane(const F32ResizeKernels& k, const float* x, float* y) const {
    for (size_t oh = 0; oh < h_.out; ++oh) {
      float* row = y + oh * w_.out;
      if (oh > 0 && h_.idx[oh] == h_.idx[oh - 1]) {
        std::memcpy(row, row - w_.out, w_.out * sizeof(float));
        continue;
      }
      const float* src = x + static_cast<size_t>(h_.idx[oh]) * w_.in;
      if (w_.doubles) k.double_row(src, w_.in, row);
      else k.gather_row(src, w_.idx.data(), w_.out, row);
    }
  }

  Mode mode_;
  size_t planes_;
  AxisTable h_, w_;
  float extrapolation_;
  std::string detail_;
};

// Nearest resize of a uint8 NHWC image value (a pass-through op of the int8 region: the stored
// codes are copied, so quantization parameters do not change): one pixel (C bytes) per output
// position, repeated rows copied whole.
class ResizeU8Step : public PlanStep {
 public:
  ResizeU8Step(size_t channels, AxisTable h, AxisTable w, std::string detail)
      : c_(channels), h_(std::move(h)), w_(std::move(w)), detail_(std::move(detail)) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const uint8_t* in = reinterpret_cast<const uint8_t*>(io.in[0]);
    uint8_t* out = reinterpret_cast<uint8_t*>(io.out[0]);
    const size_t in_row = w_.in * c_, out_row = w_.out * c_;
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / std::max<size_t>(1, out_row));
    for_chunks(batch * h_.out, grain, max_threads, [&](size_t b, size_t e) {
      for (size_t r = b; r < e; ++r) {
        const size_t n = r / h_.out, oh = r % h_.out;
        uint8_t* y = out + r * out_row;
        if (oh > 0 && r > b && h_.idx[oh] == h_.idx[oh - 1]) {
          std::memcpy(y, y - out_row, out_row);
          continue;
        }
        const uint8_t* x = in + (n * h_.in + static_cast<size_t>(h_.idx[oh])) * in_row;
        for (size_t ow = 0; ow < w_.out; ++ow) std::memcpy(y + ow * c_, x + static_cast<size_t>(w_.idx[ow]) * c_, c_);
      }
    });
  }
  std::string detail() const override { return "u8 NHWC " + detail_; }

 private:
  size_t c_;
  AxisTable h_, w_;
  std::string detail_;
};

/** The attributes both Resize steps read: coordinate and nearest rounding modes, and the H and W scales. */
struct ResizeAttrs {
  std::string coord;
  std::string nearest;
  // The scale of H and W (float32 values, what the coordinates divide by).
  std::vector<double> scales;
};

ResizeAttrs read_resize_attrs(const StepContext& ctx) {
  ResizeAttrs a;
  a.coord = ctx.choice_or(
      "coordinate_transformation_mode",
      {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn", "half_pixel_symmetric", "tf_crop_and_resize"},
      "half_pixel");
  a.nearest = ctx.choice_or("nearest_mode", {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}, "round_prefer_floor");
  a.scales = {1.0, 1.0};
  auto it = ctx.spec().attrs.find("scales");
  if (it != ctx.spec().attrs.end()) {
    if (it->second.kind != PlanAttr::kList || it->second.list.size() != 2) ctx.fail("attrs.scales", "2 scales (H, W)", "another value");
    a.scales = it->second.list;
    for (double s : a.scales) {
      if (!(s > 0) || !std::isfinite(s)) ctx.fail("attrs.scales", "positive finite scales", std::to_string(s));
    }
  }
  return a;
}

}  // namespace

std::unique_ptr<PlanStep> make_resize_u8(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_input_rank(0, 3);
  ctx.expect_input_dtype(0, PlanDType::kUint8);
  ctx.expect_output_dtype(0, PlanDType::kUint8);
  const PlanShape& x = ctx.in()[0];
  const PlanShape& y = ctx.out()[0];
  // Logical [C, H, W], stored NHWC; nearest only (any other mode would not copy stored codes).
  ctx.choice_or("mode", {"nearest"}, "nearest");
  const ResizeAttrs attrs = read_resize_attrs(ctx);
  const std::string& coord = attrs.coord;
  const std::string& nearest = attrs.nearest;
  const std::vector<double>& scales = attrs.scales;
  // Its extrapolation value is no stored code.
  if (coord == "tf_crop_and_resize") ctx.fail("attrs.coordinate_transformation_mode", "a mode other than tf_crop_and_resize on uint8", coord);
  if (y.size() != 3 || y[0] != x[0] || y[1] == 0 || y[2] == 0) ctx.fail("outputs[0]", "[" + std::to_string(x[0]) + ", H', W']", shape_text(y));
  AxisTable h = axis_table(Mode::kNearest, x[1], y[1], static_cast<float>(scales[0]), coord, nearest, -0.75f, false);
  AxisTable w = axis_table(Mode::kNearest, x[2], y[2], static_cast<float>(scales[1]), coord, nearest, -0.75f, false);
  std::ostringstream detail;
  detail << "nearest " << x[1] << "x" << x[2] << "->" << y[1] << "x" << y[2] << " " << coord << " " << nearest;
  return std::make_unique<ResizeU8Step>(x[0], std::move(h), std::move(w), detail.str());
}

std::unique_ptr<PlanStep> make_resize(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  const PlanShape& x = ctx.in()[0];
  const PlanShape& y = ctx.out()[0];
  const size_t rank = x.size();
  if (rank < 1) ctx.fail("inputs[0]", "a per-image rank of at least 1", shape_text(x));
  const std::string mode_text = ctx.choice_or("mode", {"nearest", "linear", "cubic"}, "nearest");
  const Mode mode = mode_text == "nearest" ? Mode::kNearest : mode_text == "linear" ? Mode::kLinear : Mode::kCubic;
  const float cubic_a = static_cast<float>(ctx.number_or("cubic_coeff_a", -0.75));
  const bool exclude_outside = ctx.integer_or("exclude_outside", 0, 1, 0) == 1;
  const ResizeAttrs attrs = read_resize_attrs(ctx);
  const std::string& coord = attrs.coord;
  const std::string& nearest = attrs.nearest;
  const std::vector<double>& scales = attrs.scales;
  // The leading dims are planes; H is 1 for a rank-1 image.
  const size_t in_h = rank >= 2 ? x[rank - 2] : 1, in_w = x[rank - 1];
  if (y.size() != rank) ctx.fail("outputs[0]", "the input's rank", shape_text(y));
  for (size_t d = 0; d + 2 < rank; ++d) {
    if (y[d] != x[d]) ctx.fail("outputs[0]", "the input's leading dims " + shape_text(x), shape_text(y));
  }
  const size_t out_h = rank >= 2 ? y[rank - 2] : 1, out_w = y[rank - 1];
  if (in_h == 0 || in_w == 0 || out_h == 0 || out_w == 0) ctx.fail("inputs[0]", "non-empty images", shape_text(x));
  if (rank < 2 && scales[0] != 1.0) ctx.fail("attrs.scales", "an H scale of 1 for a rank-1 image", std::to_string(scales[0]));
  size_t planes = 1;
  for (size_t d = 0; d + 2 < rank; ++d) planes *= x[d];
  const bool antialias = ctx.integer_or("antialias", 0, 1, 0) == 1;
  Crop crop_h, crop_w;
  float extrapolation = 0;
  if (coord == "tf_crop_and_resize") {
    auto it = ctx.spec().attrs.find("roi");
    if (it == ctx.spec().attrs.end() || it->second.kind != PlanAttr::kList || it->second.list.size() != 4) {
      ctx.fail("attrs.roi", "4 values (H start, W start, H end, W end)", "another value");
    }
    const std::vector<double>& roi = it->second.list;
    for (double v : roi) {
      if (!std::isfinite(v)) ctx.fail("attrs.roi", "finite values", std::to_string(v));
    }
    crop_h = {true, static_cast<float>(roi[0]), static_cast<float>(roi[2])};
    crop_w = {true, static_cast<float>(roi[1]), static_cast<float>(roi[3])};
    extrapolation = static_cast<float>(ctx.number_or("extrapolation_value", 0.0));
  }
  AxisTable h = axis_table(mode, in_h, out_h, static_cast<float>(scales[0]), coord, nearest, cubic_a, exclude_outside, antialias, crop_h);
  AxisTable w = axis_table(mode, in_w, out_w, static_cast<float>(scales[1]), coord, nearest, cubic_a, exclude_outside, antialias, crop_w);
  std::ostringstream detail;
  detail << mode_text << " " << in_h << "x" << in_w << "->" << out_h << "x" << out_w << " " << coord;
  if (mode == Mode::kNearest) detail << " " << nearest;
  if (antialias && mode != Mode::kNearest) detail << " antialias";
  return std::make_unique<ResizeStep>(mode, planes, std::move(h), std::move(w), extrapolation, detail.str());
}

}  // namespace runtime
}  // namespace kiln
