// What every plan step implements, and the context its factory validates the spec through.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "kiln/plan.h"

namespace kiln {
namespace runtime {

// Pointers to the buffers of one step for one run: inputs then outputs, each batch x per-image.
struct StepBuffers {
  const float* const* in = nullptr;
  float* const* out = nullptr;
};

class PlanStep {
 public:
  virtual ~PlanStep() = default;
  // `threads` is the number of threads the run may use (>= 1, fixed for the whole run).
  virtual void run(const StepBuffers& io, size_t batch, float* scratch, size_t threads) const = 0;
  // Floats of scratch run() needs at this batch and thread count (shared by all steps: only one
  // runs at a time).
  virtual size_t scratch_floats(size_t batch, size_t threads) const { return 0; }
  virtual size_t weight_bytes() const { return 0; }
  // One line for planInfo, e.g. "3x3 s1 32->64 relu".
  virtual std::string detail() const { return ""; }
  // Output 0 may share storage with input 0 (it reads each element before writing it).
  virtual bool in_place() const { return false; }
  // The input output 0 may share storage with (-1: none): input 0 where in_place(); a residual
  // convolution's second input, which it sums onto (ops/conv.cc). The step must tell from its
  // buffers at run time whether the plan took the offer.
  virtual int in_place_input() const { return in_place() ? 0 : -1; }
  // One pass over its inputs costing about what copying them would (QuantizeLinear): a plan whose
  // inputs only such steps read may read its caller's arrays in place (Plan::inputs_read_first).
  virtual bool input_pass() const { return false; }
};

// The spec of one step with its input/output shapes, and readers that throw PlanError naming the
// step and the attribute ("Expected ... for steps[3] (conv1).strides but received ...").
class StepContext {
 public:
  StepContext(const PlanStepSpec& spec, size_t index, std::vector<PlanShape> in,
              std::vector<PlanShape> out);

  const PlanStepSpec& spec() const { return spec_; }
  const std::string& where() const { return where_; }
  // Per-image shapes of the step's input and output values.
  const std::vector<PlanShape>& in() const { return in_; }
  const std::vector<PlanShape>& out() const { return out_; }

  [[noreturn]] void fail(const std::string& what, const std::string& expected,
                         const std::string& received) const;

  void expect_inputs(size_t lo, size_t hi) const;
  void expect_outputs(size_t n) const;
  // The declared shape of output i must equal `shape`.
  void expect_output_shape(size_t i, const PlanShape& shape) const;
  // The shape of input i must equal `shape`.
  void expect_input_shape(size_t i, const PlanShape& shape) const;
  // Input i must have rank `rank` per image (rank + 1 with the batch).
  void expect_input_rank(size_t i, size_t rank) const;

  // Element types of the step's values (float32 unless the spec says otherwise).
  void set_dtypes(std::vector<PlanDType> in, std::vector<PlanDType> out);
  PlanDType in_dtype(size_t i) const { return i < in_dtypes_.size() ? in_dtypes_[i] : PlanDType::kFloat32; }
  PlanDType out_dtype(size_t i) const { return i < out_dtypes_.size() ? out_dtypes_[i] : PlanDType::kFloat32; }
  void expect_input_dtype(size_t i, PlanDType t) const;
  void expect_output_dtype(size_t i, PlanDType t) const;

  bool has(const char* name) const;
  int64_t integer(const char* name, int64_t lo, int64_t hi) const;
  int64_t integer_or(const char* name, int64_t lo, int64_t hi, int64_t fallback) const;
  double number_or(const char* name, double fallback) const;  // finite
  // A list of `count` integers in [lo, hi] (count 0: any length); `fallback` when absent.
  std::vector<int64_t> integers_or(const char* name, size_t count, int64_t lo, int64_t hi,
                                   std::vector<int64_t> fallback) const;
  std::string text_or(const char* name, const std::string& fallback) const;
  // One of `options`.
  std::string choice_or(const char* name, const std::vector<std::string>& options,
                        const std::string& fallback) const;

  // A weight of any dtype, or null (check its dtype and shape).
  const PlanTensor* find_weight(const char* name) const;
  // A weight of the given dtype and shape.
  const PlanTensor& typed_weight(const char* name, PlanDType t, const std::vector<size_t>& shape) const;
  const PlanTensor* typed_weight_opt(const char* name, PlanDType t, const std::vector<size_t>& shape) const;
  // Float32 weights (these readers refuse other dtypes).
  const PlanTensor* weight_opt(const char* name) const;
  const PlanTensor& weight(const char* name) const;
  // The weight must have exactly this shape.
  const PlanTensor& weight(const char* name, const std::vector<size_t>& shape) const;
  // Null or a weight of exactly this shape.
  const PlanTensor* weight_opt(const char* name, const std::vector<size_t>& shape) const;

 private:
  const PlanAttr* attr(const char* name) const;
  const PlanStepSpec& spec_;
  std::string where_;
  std::vector<PlanShape> in_;
  std::vector<PlanShape> out_;
  std::vector<PlanDType> in_dtypes_, out_dtypes_;
};

using StepFactory = std::unique_ptr<PlanStep> (*)(const StepContext& ctx);

std::string shape_text(const std::vector<size_t>& shape);
size_t shape_size(const std::vector<size_t>& shape);  // throws PlanError on overflow

}  // namespace runtime
}  // namespace kiln
