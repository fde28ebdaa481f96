// LookupU8: a uint8 value mapped code by code through a 256-entry table (QLinearLookup in the int8
// IR: HardSwish, SiLU, Sigmoid, ... between two quantized values, as onnxruntime's QLinearSigmoid
// and QLinearLeakyRelu do). The table already holds f(dequantize(code)) requantized to the output's
// parameters, so the step is exact whatever f is, and the value keeps its layout (NHWC or NCHW):
// this replaces a DequantizeLinear, the float op and a QuantizeLinear, two of them layout changes.
// The rows run on the dispatch table's lookup_u8_row (s8-conv/quantize-rows.h).
#include <cstdint>
#include <sstream>

#include "common/dispatch.h"
#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

class LookupU8Step : public PlanStep {
 public:
  LookupU8Step(size_t elements, const std::vector<int64_t>& table, std::string function)
      : elements_(elements), function_(std::move(function)) {
    for (size_t i = 0; i < 256; ++i) table_[i] = static_cast<uint8_t>(table[i]);
  }
  void run(const StepBuffers& io, size_t batch, float*, size_t max_threads) const override {
    const uint8_t* x = reinterpret_cast<const uint8_t*>(io.in[0]);
    uint8_t* y = reinterpret_cast<uint8_t*>(io.out[0]);
    const uint8_t* t = table_;
    // Bytes, not floats: four times the float grain keeps a chunk's cost alike.
    const auto row = dispatch().s8_conv.lookup_u8_row;
    for_chunks(batch * elements_, 4 * kElementwiseGrain, max_threads, [&](size_t b, size_t e) { row(t, x + b, y + b, e - b); });
  }
  std::string detail() const override { return "u8 table " + function_; }
  bool in_place() const override { return true; }

 private:
  size_t elements_;
  uint8_t table_[256];
  std::string function_;
};

}  // namespace

// Attrs: table (256 stored output codes, indexed by the stored input code), function (a label for
// info().steps). Input and output: uint8 values of one per-image shape; the output may be the input
// (in place: each code is read before it is written).
std::unique_ptr<PlanStep> make_lookup_u8(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_input_dtype(0, PlanDType::kUint8);
  ctx.expect_output_dtype(0, PlanDType::kUint8);
  ctx.expect_output_shape(0, ctx.in()[0]);
  if (!ctx.has("table")) ctx.fail("attrs.table", "256 output codes in [0, 255]", "nothing");
  const std::vector<int64_t> table = ctx.integers_or("table", 256, 0, 255, {});
  return std::make_unique<LookupU8Step>(shape_size(ctx.in()[0]), table, ctx.text_or("function", "lookup"));
}

}  // namespace runtime
}  // namespace kiln
