// Transpose of the per-image dimensions (the batch stays first): a strided gather per image, or
// for floats whose permutation is a matrix transpose (NCHW <-> NHWC) blocks through registers; of
// float32 values (Transpose) or of uint8 codes (TransposeNdU8: a quantized value, as ShuffleNet's
// channel shuffle between int8 convolutions), and ChannelShuffleU8: that shuffle (Reshape to
// [g, C/g, H, W], swap the two, Reshape back) on uint8 codes stored NHWC, one byte gather per
// pixel (two-way: an interleave of the two halves, SSE2 unpacks in the baseline build).
#include <cstring>
#include <sstream>
#include <type_traits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/dispatch.h"
#include "conv/rows-to-planes.h"
#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

template <class T>
class TransposeStep : public PlanStep {
 public:
  // dims: output per-image dims; strides: input stride of each output dim.
  TransposeStep(std::vector<size_t> dims, std::vector<size_t> strides, size_t image, std::string detail)
      : dims_(std::move(dims)), strides_(std::move(strides)), image_(image), detail_(std::move(detail)) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const size_t rank = dims_.size();
    const size_t inner = dims_[rank - 1], inner_stride = strides_[rank - 1];
    const size_t rows_per_image = image_ / inner;
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / inner);
    for_chunks(batch * rows_per_image, grain, max_threads, [&](size_t b, size_t e) {
      for (size_t r = b; r < e; ++r) {
        const size_t n = r / rows_per_image;
        size_t rest = r % rows_per_image, offset = 0;
        for (size_t d = rank - 1; d-- > 0;) {
          offset += (rest % dims_[d]) * strides_[d];
          rest /= dims_[d];
        }
        const T* x = reinterpret_cast<const T*>(io.in[0]) + n * image_ + offset;
        T* y = reinterpret_cast<T*>(io.out[0]) + r * inner;
        if (inner_stride == 1) {
          std::memcpy(y, x, inner * sizeof(T));
        } else {
          for (size_t i = 0; i < inner; ++i) y[i] = x[i * inner_stride];
        }
      }
    });
  }
  std::string detail() const override { return detail_; }

 private:
  std::vector<size_t> dims_, strides_;
  size_t image_;
  std::string detail_;
};

// A per-image matrix transpose of floats, [rows x cols] -> [cols x rows]: NCHW <-> NHWC, as
// ConvNeXt moves each block between its depthwise convolution and its LayerNorm and Linear
// layers. The gather above reads each output row's elements a whole plane apart; here 16 x 16
// blocks go through registers (the AVX-512 table's layout kernels, which read and write whole
// 16-float rows, so one side must be a multiple of 16), or 4 x 4 blocks (SSE2, any shape), in
// bands of 16 rows whose source stays in cache. ConvNeXt-Tiny at batch 16, one thread: its 46
// Transposes took 77.6 ms of a 1,103 ms run (ORT's 19: 10.6 ms).
class TransposeF32MatrixStep : public PlanStep {
 public:
  TransposeF32MatrixStep(size_t rows, size_t cols, std::string detail) : rows_(rows), cols_(cols), detail_(std::move(detail)) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const F32DirectConvKernels& k = dispatch().f32_conv.direct;
    const size_t image = rows_ * cols_;
    const float* in = io.in[0];
    float* out = io.out[0];
    if (k.nchw_to_nhwc != nullptr && cols_ % kBlock != 0 && rows_ % kBlock == 0) {
      // Read as `rows` planes of `cols` pixels into rows of `rows` channels; one task per image.
      for_chunks(batch, 1, max_threads, [&](size_t b, size_t e) {
        for (size_t n = b; n < e; ++n) k.nchw_to_nhwc(in + n * image, cols_, rows_, rows_, out + n * image);
      });
      return;
    }
    const bool whole_rows = cols_ % kBlock == 0;
    const size_t bands = (rows_ + kBlock - 1) / kBlock;
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / (kBlock * cols_));
    for_chunks(batch * bands, grain, max_threads, [&](size_t b, size_t e) {
      for (size_t u = b; u < e; ++u) {
        const size_t n = u / bands, r0 = (u % bands) * kBlock, count = std::min(kBlock, rows_ - r0);
        const float* src = in + n * image + r0 * cols_;
        float* dst = out + n * image + r0;
        rows_to_planes(k, src, count, cols_, cols_, whole_rows, dst, rows_);
      }
    });
  }
  std::string detail() const override { return detail_; }

 private:
  static constexpr size_t kBlock = 16;
  size_t rows_, cols_;
  std::string detail_;
};

}  // namespace

namespace {

template <class T>
std::unique_ptr<PlanStep> transpose_step(const StepContext& ctx, const char* prefix) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  const PlanShape& x = ctx.in()[0];
  const size_t rank = x.size();
  // perm counts the batch (ONNX numbering) and must keep it first.
  std::vector<int64_t> fallback(rank + 1);
  for (size_t i = 0; i <= rank; ++i) fallback[i] = static_cast<int64_t>(rank - i);
  const auto perm = ctx.integers_or("perm", rank + 1, 0, static_cast<int64_t>(rank), fallback);
  std::vector<bool> seen(rank + 1, false);
  for (int64_t p : perm) {
    if (seen[p]) ctx.fail("attrs.perm", "a permutation", "a repeated axis " + std::to_string(p));
    seen[p] = true;
  }
  if (perm[0] != 0) ctx.fail("attrs.perm", "a permutation that keeps the batch axis 0 first", "perm[0] = " + std::to_string(perm[0]));
  if (rank == 0) {
    if constexpr (!std::is_same_v<T, float>) ctx.fail("inputs[0]", "a per-image rank of at least 1", "a scalar per image");
    ctx.expect_output_shape(0, x);
    return make_copy(ctx);
  }
  std::vector<size_t> in_stride(rank);
  size_t s = 1;
  for (size_t d = rank; d-- > 0;) {
    in_stride[d] = s;
    s *= x[d];
  }
  PlanShape out(rank);
  std::vector<size_t> strides(rank);
  std::ostringstream detail;
  detail << prefix << "perm";
  for (size_t d = 0; d < rank; ++d) {
    const size_t src = static_cast<size_t>(perm[d + 1] - 1);
    out[d] = x[src];
    strides[d] = in_stride[src];
    detail << " " << perm[d + 1];
  }
  ctx.expect_output_shape(0, out);
  // Output dims that stay neighbours in the input, in order, move as one: ShuffleNet's channel
  // shuffle (perm 0 2 1 3 4) copies whole H x W planes instead of W-long rows.
  std::vector<size_t> dims = {out[0]}, steps = {strides[0]};
  for (size_t d = 1; d < rank; ++d) {
    if (steps.back() == strides[d] * out[d]) {
      dims.back() *= out[d];
      steps.back() = strides[d];
    } else {
      dims.push_back(out[d]);
      steps.push_back(strides[d]);
    }
  }
  // Two dims left, the last read a whole row apart: out[i][j] = in[j][i], a matrix transpose.
  if (std::is_same_v<T, float> && dims.size() == 2 && steps[0] == 1 && steps[1] == dims[0] && dims[0] > 1 && dims[1] > 1) {
    return std::make_unique<TransposeF32MatrixStep>(dims[1], dims[0], detail.str());
  }
  return std::make_unique<TransposeStep<T>>(dims, steps, shape_size(x), detail.str());
}

class ChannelShuffleU8Step : public PlanStep {
 public:
  ChannelShuffleU8Step(size_t channels, size_t pixels, size_t groups)
      : channels_(channels), pixels_(pixels), groups_(groups) {}

  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const auto* x = reinterpret_cast<const uint8_t*>(io.in[0]);
    auto* y = reinterpret_cast<uint8_t*>(io.out[0]);
    const size_t c = channels_, g = groups_, per = c / g;
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / c);
    for_chunks(batch * pixels_, grain, max_threads, [&](size_t b, size_t e) {
      for (size_t p = b; p < e; ++p) {
        const uint8_t* in = x + p * c;
        uint8_t* out = y + p * c;
        size_t j = 0;
#if defined(__SSE2__)
        if (g == 2) {
          for (; j + 16 <= per; j += 16) {
            const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + j));
            const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + per + j));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * j), _mm_unpacklo_epi8(lo, hi));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * j + 16), _mm_unpackhi_epi8(lo, hi));
          }
        }
#endif
        for (; j < per; ++j) {
          for (size_t i = 0; i < g; ++i) out[j * g + i] = in[i * per + j];
        }
      }
    });
  }
  std::string detail() const override {
    return "u8 NHWC " + std::to_string(groups_) + " groups of " + std::to_string(channels_ / groups_) + " channels";
  }

 private:
  size_t channels_, pixels_, groups_;
};

}  // namespace

std::unique_ptr<PlanStep> make_channel_shuffle_u8(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_input_dtype(0, PlanDType::kUint8);
  ctx.expect_output_dtype(0, PlanDType::kUint8);
  const PlanShape& x = ctx.in()[0];
  if (x.size() != 3) ctx.fail("inputs[0]", "an image [C, H, W] stored NHWC", shape_text(x));
  ctx.expect_output_shape(0, x);
  const size_t groups = static_cast<size_t>(ctx.integer("groups", 1, static_cast<int64_t>(x[0])));
  if (x[0] % groups != 0) ctx.fail("attrs.groups", "a divisor of the " + std::to_string(x[0]) + " channels", std::to_string(groups));
  return std::make_unique<ChannelShuffleU8Step>(x[0], x[1] * x[2], groups);
}

std::unique_ptr<PlanStep> make_transpose(const StepContext& ctx) { return transpose_step<float>(ctx, ""); }

std::unique_ptr<PlanStep> make_transpose_nd_u8(const StepContext& ctx) {
  ctx.expect_input_dtype(0, PlanDType::kUint8);
  ctx.expect_output_dtype(0, PlanDType::kUint8);
  return transpose_step<uint8_t>(ctx, "u8 ");
}

}  // namespace runtime
}  // namespace kiln
