// The inference plan: a compiled, immutable sequence of native steps over a value table.
//
// A plan is built once from a PlanSpec (what src/runtime/compile.ts produces, read by
// native/addon/plan.cc): every value has a PER-IMAGE shape, so the batch is a run-time parameter.
// Building validates the whole spec (op kinds, ids, shapes, weight lengths) and throws PlanError on
// anything wrong; it prepacks weights once and lays out a scratch arena by liveness (values whose
// lifetimes do not overlap share memory; reshapes alias their input; elementwise steps may run in
// place). Plan inputs are read from the caller's buffers and plan outputs written straight into
// the caller's buffers. A large batch may go through the steps a few images at a time
// (images_per_pass).
//
// run() is const and thread-safe: several runs may be in flight on one plan; each takes an arena
// from a small pool (allocation happens only when a run needs more arenas or a bigger batch than
// any before it).
//
// Nothing here knows about Node.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln {

// A malformed spec. The message follows the library's shape: "Expected X for NAME but received Y".
class PlanError : public std::invalid_argument {
 public:
  explicit PlanError(const std::string& message) : std::invalid_argument(message) {}
};

// Dimensions of one image's slice of a value (the batch dimension is implicit and outermost).
using PlanShape = std::vector<size_t>;

// Element type of a plan value (uint8 values hold quantized activations, NHWC for images; int8
// activations are stored as uint8 with the sign bit flipped, i.e. zero point + 128) or of a weight.
// kBool values (comparisons, masks) are one byte 0/1 per element; no int8 step takes them.
enum class PlanDType { kFloat32, kUint8, kInt8, kInt32, kBool };
const char* plan_dtype_name(PlanDType t);
size_t plan_dtype_bytes(PlanDType t);

// A constant tensor borrowed from the caller while the plan is built (weights are copied or
// prepacked; the plan keeps no pointer into it).
struct PlanTensor {
  const float* data = nullptr;  // float32 weights (null for the other dtypes)
  const void* raw = nullptr;    // the elements, whatever the dtype
  PlanDType dtype = PlanDType::kFloat32;
  size_t length = 0;
  std::vector<size_t> shape;  // full shape; the product must equal length
};

// An attribute: a number, a list of numbers, or a string.
struct PlanAttr {
  enum Kind { kNumber, kList, kString } kind = kNumber;
  double number = 0;
  std::vector<double> list;
  std::string text;
};

struct PlanStepSpec {
  std::string op;    // "Conv", "Gemm", "Relu", ... (see plan_ops())
  std::string name;  // the graph node's name, for messages and plan_info
  std::vector<int64_t> inputs;   // value ids
  std::vector<int64_t> outputs;  // value ids
  std::map<std::string, PlanAttr> attrs;
  std::map<std::string, PlanTensor> weights;
};

struct PlanSpec {
  std::vector<PlanShape> values;  // per-image shape of every value
  std::vector<PlanDType> value_dtypes;  // per value (float32 or uint8); empty = all float32
  std::vector<int64_t> inputs;    // value ids fed by the caller, in run() order
  std::vector<int64_t> outputs;   // value ids returned to the caller, in run() order
  std::vector<PlanStepSpec> steps;  // in execution order; each value is written by one step
  size_t max_threads = 0;         // threads a run may use (0 = the whole pool)
  size_t images_per_pass = 0;     // images that go through the steps at once (0 = Plan's choice)
  double macs_per_image = 0;      // the graph's multiply-adds per image (0 = unknown), for that choice
  // false: the kernel pool's helpers stop polling for more work when a run ends (park_helpers in
  // thread-pool.h), leaving the cores to the process's other threads between runs.
  bool allow_spinning = true;
};

// Op kinds a spec may use.
const std::vector<std::string>& plan_ops();

struct PlanInfo {
  size_t arena_floats_per_image = 0;  // value storage (uint8 values round up to whole floats);
                                      // the arena is this * batch + scratch
  size_t weight_bytes = 0;
  size_t arena_bytes_held = 0;        // scratch arenas kept for later runs, idle or in use: grows
                                      // to (runs ever in flight at once) x (largest batch's arena)
  std::vector<std::string> steps;     // "op name: detail" per step, aliases included
};

struct PlanProfile {
  std::vector<uint64_t> step_ns;
  uint64_t runs = 0;
  uint64_t images = 0;
};

class PlanImpl;

class Plan {
 public:
  // Validates and builds; throws PlanError on a bad spec.
  explicit Plan(const PlanSpec& spec);
  ~Plan();
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  size_t num_inputs() const;
  size_t num_outputs() const;
  // Elements per image of input / output i.
  size_t input_size(size_t i) const;
  size_t output_size(size_t i) const;

  // Arena bytes a run at `batch` uses (value storage plus the largest step scratch, for the
  // images of one pass).
  size_t arena_bytes(size_t batch) const;
  // Images of a `batch` that go through the steps at once. A batch whose values outgrow the
  // caches runs in passes of a few images per thread, each through every step, so that one
  // layer's output is still in cache when the next reads it; not where every pass would stream
  // weights from memory that cost more than the activations it keeps in cache, nor where the
  // plan's first steps read lent inputs (inputs_read_first()). spec.images_per_pass, when set,
  // decides instead. The results are the same bits either way: every step's result for an image
  // does not depend on the images beside it.
  size_t images_per_pass(size_t batch) const;
  PlanInfo info() const;

  // Per-step timing of the runs made while profiling is on (off by default: a run then reads no
  // clock). Safe while runs are in flight: each step's time is added atomically.
  void set_profiling(bool on) const;
  // Nanoseconds spent in each step (info().steps order; views take none), the runs timed and the
  // images they ran, since the last reset.
  PlanProfile profile(bool reset) const;

  // inputs[i] holds batch * input_size(i) floats (read only); outputs[i] receives
  // batch * output_size(i) floats. Buffers must not overlap each other. Plan inputs and outputs
  // are float32 values (quantization happens inside the plan).
  void run(const float* const* inputs, float* const* outputs, size_t batch) const;

  // True when the plan's inputs are read only by its first steps, each a single cheap pass over
  // them (QuantizeLinear: an int8 model's entry). A caller that can vouch for its input arrays
  // only for a short while (the addon, while the JS thread waits) may then lend them to the run
  // instead of copying them: run(InputLoan&, ...).
  bool inputs_read_first() const;

  // PlanSpec::allow_spinning.
  bool allows_spinning() const;

  // Inputs lent to one run. take() is called once, when the run is ready to read them (its memory
  // set up): it returns the arrays to read, either the lender's own, lent until release(), or
  // copies of them (lent false). release() is called once no step will read them again: right
  // after the first steps where inputs_read_first(), else when the run ends; in every case before
  // run() returns or throws. Both are called on the thread running the plan.
  class InputLoan {
   public:
    struct Taken {
      const float* const* inputs;
      bool lent;
    };
    virtual Taken take() = 0;
    virtual void release() = 0;

   protected:
    ~InputLoan() = default;
  };
  // run() on lent inputs. While they are lent, the steps before the release run on the calling
  // thread alone: the lender's thread is waiting, perhaps on the other core.
  void run(InputLoan& inputs, float* const* outputs, size_t batch) const;

 private:
  std::unique_ptr<PlanImpl> impl_;
};

}  // namespace kiln
