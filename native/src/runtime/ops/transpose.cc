// Transpose of the per-image dimensions (the batch stays first): a strided gather per image, of
// float32 values (Transpose) or of uint8 codes (TransposeNdU8: a quantized value, as ShuffleNet's
// channel shuffle between int8 convolutions).
#include <sstream>
#include <type_traits>

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
        for (size_t i = 0; i < inner; ++i) y[i] = x[i * inner_stride];
      }
    });
  }
  std::string detail() const override { return detail_; }

 private:
  std::vector<size_t> dims_, strides_;
  size_t image_;
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
  return std::make_unique<TransposeStep<T>>(out, strides, shape_size(x), detail.str());
}

}  // namespace

std::unique_ptr<PlanStep> make_transpose(const StepContext& ctx) { return transpose_step<float>(ctx, ""); }

std::unique_ptr<PlanStep> make_transpose_nd_u8(const StepContext& ctx) {
  ctx.expect_input_dtype(0, PlanDType::kUint8);
  ctx.expect_output_dtype(0, PlanDType::kUint8);
  return transpose_step<uint8_t>(ctx, "u8 ");
}

}  // namespace runtime
}  // namespace kiln
