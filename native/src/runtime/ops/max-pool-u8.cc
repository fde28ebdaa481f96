// MaxPool on a uint8 NHWC value (max is monotone in the stored code, so quantization parameters
// pass through unchanged; int8 values stored with the sign bit flipped order the same way).
#include <algorithm>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kiln/s8-conv.h"
#include "runtime/ops/ops.h"
#include "runtime/ops/pool-u8.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

// out[i] = max(a[i], b[i], c[i], d[i]) for n bytes (16 at a time: SSE2 is baseline on x86-64).
inline void max4(const uint8_t* a, const uint8_t* b, const uint8_t* c, const uint8_t* d, uint8_t* out, size_t n) {
  size_t i = 0;
#if defined(__SSE2__)
  for (; i + 16 <= n; i += 16) {
    auto ld = [&](const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)); };
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm_max_epu8(_mm_max_epu8(ld(a), ld(b)), _mm_max_epu8(ld(c), ld(d))));
  }
#endif
  for (; i < n; ++i) out[i] = std::max(std::max(a[i], b[i]), std::max(c[i], d[i]));
}

class MaxPoolU8Step : public PlanStep {
 public:
  MaxPoolU8Step(const PoolU8& pool, std::string detail) : pool_(pool), detail_(std::move(detail)) {}
  void run(const StepBuffers& io, size_t batch, float*, size_t threads) const override {
    pool_.run(reinterpret_cast<const uint8_t*>(io.in[0]), reinterpret_cast<uint8_t*>(io.out[0]), batch, threads);
  }
  std::string detail() const override { return "u8 NHWC " + detail_; }

 private:
  PoolU8 pool_;
  std::string detail_;
};

}  // namespace

PoolU8::PoolU8(const Pool2d& pool, size_t channels) : channels_(channels) {
  const PoolAxis& h = pool.height_axis();
  const PoolAxis& w = pool.width_axis();
  g_.planes = channels;
  g_.in_height = static_cast<size_t>(h.in);
  g_.in_width = static_cast<size_t>(w.in);
  g_.out_height = static_cast<size_t>(h.out);
  g_.out_width = static_cast<size_t>(w.out);
  g_.kernel_h = static_cast<size_t>(h.kernel);
  g_.kernel_w = static_cast<size_t>(w.kernel);
  g_.stride_h = static_cast<size_t>(h.stride);
  g_.stride_w = static_cast<size_t>(w.stride);
  g_.pad_top = static_cast<size_t>(h.pad_begin);
  g_.pad_bottom = static_cast<size_t>(h.pad_end);
  g_.pad_left = static_cast<size_t>(w.pad_begin);
  g_.pad_right = static_cast<size_t>(w.pad_end);
  g_.dilation_h = static_cast<size_t>(h.dilation);
  g_.dilation_w = static_cast<size_t>(w.dilation);
  pairs_ = g_.kernel_h == 2 && g_.kernel_w == 2 && g_.stride_h == 2 && g_.stride_w == 2 && g_.pad_top == 0 && g_.pad_left == 0 &&
           g_.pad_bottom == 0 && g_.pad_right == 0 && g_.dilation_h == 1 && g_.dilation_w == 1 &&
           2 * g_.out_height <= g_.in_height && 2 * g_.out_width <= g_.in_width;
}

void PoolU8::run(const uint8_t* in, uint8_t* out, size_t batch, size_t threads) const {
  if (!pairs_) {
    max_pool2d_u8_nhwc(g_, batch, channels_, in, out, threads);
    return;
  }
  const size_t c = channels_, in_row = g_.in_width * c, out_row = g_.out_width * c;
  const size_t rows = batch * g_.out_height;
  for_chunks(rows, std::max<size_t>(1, kElementwiseGrain / std::max<size_t>(out_row, 1)), threads, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const size_t b = r / g_.out_height, oh = r % g_.out_height;
      const uint8_t* top = in + (b * g_.in_height + 2 * oh) * in_row;
      const uint8_t* bottom = top + in_row;
      uint8_t* y = out + r * out_row;
      for (size_t ow = 0; ow < g_.out_width; ++ow) {
        const size_t x = 2 * ow * c;
        max4(top + x, top + x + c, bottom + x, bottom + x + c, y + ow * c, c);
      }
    }
  });
}

Pool2d parse_u8_image_pool(const StepContext& ctx, bool max) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_input_rank(0, 3);
  ctx.expect_input_dtype(0, PlanDType::kUint8);
  ctx.expect_output_dtype(0, PlanDType::kUint8);
  const PlanShape& x = ctx.in()[0];
  const Pool2d pool = Pool2d::parse(ctx, "", x, max);
  ctx.expect_output_shape(0, pool.output_shape(x[0], 2));
  return pool;
}

std::unique_ptr<PlanStep> make_max_pool_u8(const StepContext& ctx) {
  const Pool2d pool = parse_u8_image_pool(ctx, true);
  const PlanShape& x = ctx.in()[0];
  return std::make_unique<MaxPoolU8Step>(PoolU8(pool, x[0]), pool.detail());
}

}  // namespace runtime
}  // namespace kiln
