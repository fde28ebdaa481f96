// QLinearAveragePool on uint8 NHWC images (DenseNet's transitions between int8 blocks): per
// output pixel and channel, y = sat(round_half_even(float32(float32(float32(sum(x - x_zp)) /
// divisor) * x_scale) / y_scale) + y_zp), the sum over the window's taps inside the image, the
// divisor the taps inside it, or inside the padded frame with count_include_pad (docs/int8-ir.md;
// QLinearGlobalAveragePool's order of roundings). The sum is exact in int32: the window is capped
// below so that 255 * taps stays far below 2^24, where float32(sum) is exact too.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "runtime/ops/ops.h"
#include "runtime/ops/pool-u8.h"
#include "runtime/ops/pool2d.h"
#include "runtime/ops/quant-attrs.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

constexpr int64_t kMaxTaps = 1 << 15;  // 255 * 2^15 < 2^24

struct U8AvgQuant {
  float x_scale, y_scale;
  int32_t x_zero_point, y_zero_point;
};

// y[c] = the code of (sum[c] - x_zp * inside) / divisor for n channels. Rounding through
// cvtps2dq (round half to even under the default MXCSR) on SSE2, which every x86-64 has.
void requantize(const int32_t* sum, int32_t inside, int64_t divisor, const U8AvgQuant& q, uint8_t* y, size_t n) {
  const int32_t offset = q.x_zero_point * inside;
  const float d = static_cast<float>(divisor);
  size_t c = 0;
#if defined(__SSE2__)
  const __m128i off = _mm_set1_epi32(offset), yz = _mm_set1_epi32(q.y_zero_point);
  const __m128 dv = _mm_set1_ps(d), xs = _mm_set1_ps(q.x_scale), ys = _mm_set1_ps(q.y_scale);
  // Quotients beyond +-512 saturate either way; the clamp keeps cvtps2dq in range.
  const __m128 lo = _mm_set1_ps(-512.0f), hi = _mm_set1_ps(512.0f);
  for (; c + 4 <= n; c += 4) {
    const __m128i s = _mm_sub_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sum + c)), off);
    const __m128 real = _mm_mul_ps(_mm_div_ps(_mm_cvtepi32_ps(s), dv), xs);
    const __m128 v = _mm_min_ps(_mm_max_ps(_mm_div_ps(real, ys), lo), hi);
    const __m128i r = _mm_add_epi32(_mm_cvtps_epi32(v), yz);
    alignas(16) int32_t out[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(out), r);
    for (int k = 0; k < 4; ++k) y[c + k] = static_cast<uint8_t>(std::min(255, std::max(0, out[k])));
  }
#endif
  for (; c < n; ++c) {
    const float real = static_cast<float>(sum[c] - offset) / d * q.x_scale;
    const float v = std::nearbyint(real / q.y_scale) + static_cast<float>(q.y_zero_point);
    y[c] = static_cast<uint8_t>(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
  }
}

class AvgPoolU8Step : public PlanStep {
 public:
  AvgPoolU8Step(const Pool2d& pool, size_t channels, const U8AvgQuant& q)
      : h_(pool.height_axis()), w_(pool.width_axis()), include_pad_(pool.include_pad()), channels_(channels), q_(q), detail_(pool.detail()) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const auto* x = reinterpret_cast<const uint8_t*>(io.in[0]);
    auto* y = reinterpret_cast<uint8_t*>(io.out[0]);
    const size_t c = channels_, oh = static_cast<size_t>(h_.out), ow = static_cast<size_t>(w_.out);
    const size_t in_image = static_cast<size_t>(h_.in * w_.in) * c, out_row = ow * c;
    const size_t rows = batch * oh;
    const size_t taps = static_cast<size_t>(h_.kernel * w_.kernel);
    for_chunks(rows, std::max<size_t>(1, kElementwiseGrain / std::max<size_t>(out_row * taps, 1)), max_threads, [&](size_t r0, size_t r1) {
      std::vector<int32_t> sum(c);
      for (size_t r = r0; r < r1; ++r) {
        const size_t n = r / oh;
        const int64_t oy = static_cast<int64_t>(r % oh);
        const uint8_t* image = x + n * in_image;
        for (size_t ox = 0; ox < ow; ++ox) {
          pixel(image, oy, static_cast<int64_t>(ox), sum.data(), y + r * out_row + ox * c);
        }
      }
    });
  }
  std::string detail() const override { return "u8 NHWC " + detail_; }

 private:
  // One output pixel's channel vector.
  void pixel(const uint8_t* image, int64_t oy, int64_t ox, int32_t* sum, uint8_t* y) const {
    const size_t c = channels_;
    std::fill(sum, sum + c, 0);
    int32_t inside = 0;
    const int64_t h0 = oy * h_.stride - h_.pad_begin, w0 = ox * w_.stride - w_.pad_begin;
    for (int64_t i = 0; i < h_.kernel; ++i) {
      const int64_t h = h0 + i * h_.dilation;
      if (h < 0 || h >= h_.in) continue;
      for (int64_t j = 0; j < w_.kernel; ++j) {
        const int64_t w = w0 + j * w_.dilation;
        if (w < 0 || w >= w_.in) continue;
        const uint8_t* p = image + static_cast<size_t>(h * w_.in + w) * c;
        for (size_t k = 0; k < c; ++k) sum[k] += p[k];
        ++inside;
      }
    }
    const int64_t divisor = include_pad_ ? h_.framed_taps(h0) * w_.framed_taps(w0) : inside;
    if (divisor == 0) {
      // A window over padding only (ceil_mode overhang): the real value 0.
      std::fill(sum, sum + c, q_.x_zero_point);
      requantize(sum, 1, 1, q_, y, c);
      return;
    }
    requantize(sum, inside, divisor, q_, y, c);
  }

  PoolAxis h_, w_;
  bool include_pad_;
  size_t channels_;
  U8AvgQuant q_;
  std::string detail_;
};

}  // namespace

// Input: uint8 [C, H, W] stored NHWC; output uint8 [C, OH, OW] stored NHWC. Attrs: the pool's
// (kernel, strides, pads, dilations, ceilMode, countIncludePad), x_scale, x_zero_point, y_scale,
// y_zero_point (stored codes).
std::unique_ptr<PlanStep> make_avg_pool_u8(const StepContext& ctx) {
  const Pool2d pool = parse_u8_image_pool(ctx, false);
  const PlanShape& x = ctx.in()[0];
  const int64_t taps = pool.height_axis().kernel * pool.width_axis().kernel;
  if (taps > kMaxTaps) ctx.fail("attrs.kernel", "a window of at most " + std::to_string(kMaxTaps) + " taps", std::to_string(taps));
  U8AvgQuant q;
  q.x_scale = scale_attr(ctx, "x_scale");
  q.x_zero_point = zero_point_attr(ctx, "x_zero_point");
  q.y_scale = scale_attr(ctx, "y_scale");
  q.y_zero_point = zero_point_attr(ctx, "y_zero_point");
  return std::make_unique<AvgPoolU8Step>(pool, x[0], q);
}

}  // namespace runtime
}  // namespace kiln
