// Building a Plan from its spec (validation, step construction, storage planning) and running it.
#include <atomic>
#include <chrono>
#include "kiln/plan.h"

#include <algorithm>
#include <climits>
#include <limits>
#include <numeric>

#include "kiln/thread-pool.h"
#include "runtime/arena.h"
#include "runtime/memory-plan.h"
#include "runtime/op-registry.h"
#include "runtime/ops/ops.h"
#include "runtime/step.h"

namespace kiln {

using runtime::PlanStep;
using runtime::shape_size;
using runtime::shape_text;

namespace {

constexpr size_t kAlignFloats = 16;  // 64 bytes: every buffer starts on a cache line
constexpr size_t kMaxRank = 16;
constexpr size_t kMaxDim = (size_t{1} << 31) - 1;
constexpr size_t kMaxImageFloats = size_t{1} << 40;

size_t round_up(size_t n) { return (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats; }

[[noreturn]] void fail(const std::string& name, const std::string& expected, const std::string& received) {
  throw PlanError("Expected " + expected + " for " + name + " but received " + received);
}

std::string step_name(size_t i, const PlanStepSpec& s) {
  return "steps[" + std::to_string(i) + "]" + (s.name.empty() ? "" : " (" + s.name + ")");
}

// Union-find over values: values in one set share storage.
struct Sets {
  std::vector<int> parent;
  explicit Sets(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  int find(int v) {
    while (parent[v] != v) v = parent[v] = parent[parent[v]];
    return v;
  }
};

}  // namespace

class PlanImpl {
 public:
  struct Step {
    std::unique_ptr<PlanStep> impl;  // null for a view (no work at run time)
    std::vector<int> in_values, out_values;
    std::vector<int> in_groups, out_groups;
  };
  struct Group {
    size_t floats = 0;   // per image
    int input = -1;      // plan input index whose buffer holds it
    int output = -1;     // plan output index whose buffer holds it
    size_t offset = 0;   // per image, in the arena (internal groups)
  };

  explicit PlanImpl(const PlanSpec& spec);

  std::vector<PlanShape> values;
  std::vector<PlanDType> dtypes;
  std::vector<size_t> value_floats;  // storage per image (uint8 values round up to whole floats)
  std::vector<size_t> value_elements;
  std::vector<int> inputs, outputs;
  std::vector<Step> steps;
  std::vector<Group> groups;
  std::vector<std::string> labels;
  size_t arena_per_image = 0;
  size_t max_arity = 1;
  size_t max_threads = 0;
  size_t images_per_pass = 0;  // spec.images_per_pass: 0 = chosen per run
  double macs_per_image = 0;
  bool allow_spinning = true;
  size_t weight_bytes = 0;
  // Steps [0, input_prefix) are the only readers of the plan inputs, each an input pass (0: the
  // inputs are not read that way; Plan::inputs_read_first).
  size_t input_prefix = 0;
  mutable runtime::ArenaPool pool;
  // Profiling (Plan::set_profiling): one counter per step, added to by concurrent runs.
  mutable std::atomic<bool> profiling{false};
  mutable std::unique_ptr<std::atomic<uint64_t>[]> step_ns;
  mutable std::atomic<uint64_t> profiled_runs{0};
  mutable std::atomic<uint64_t> profiled_images{0};

 private:
  void check_values(const PlanSpec& spec);
  void build_steps(const PlanSpec& spec);
  void plan_storage();
  void find_input_prefix();
};

PlanImpl::PlanImpl(const PlanSpec& spec)
    : max_threads(spec.max_threads), images_per_pass(spec.images_per_pass), macs_per_image(spec.macs_per_image), allow_spinning(spec.allow_spinning) {
  check_values(spec);
  build_steps(spec);
  plan_storage();
  find_input_prefix();
  step_ns = std::make_unique<std::atomic<uint64_t>[]>(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) step_ns[i].store(0);
}

void PlanImpl::check_values(const PlanSpec& spec) {
  if (spec.values.size() > static_cast<size_t>(INT_MAX)) fail("values", "fewer values", std::to_string(spec.values.size()));
  values = spec.values;
  if (!spec.value_dtypes.empty() && spec.value_dtypes.size() != values.size()) {
    fail("valueTypes", std::to_string(values.size()) + " dtypes (one per value)", std::to_string(spec.value_dtypes.size()));
  }
  dtypes = spec.value_dtypes.empty() ? std::vector<PlanDType>(values.size(), PlanDType::kFloat32) : spec.value_dtypes;
  for (size_t v = 0; v < values.size(); ++v) {
    if (dtypes[v] != PlanDType::kFloat32 && dtypes[v] != PlanDType::kUint8 && dtypes[v] != PlanDType::kBool) {
      fail("valueTypes[" + std::to_string(v) + "]", "'float32', 'uint8' or 'bool'", plan_dtype_name(dtypes[v]));
    }
  }
  for (size_t v = 0; v < values.size(); ++v) {
    const PlanShape& s = values[v];
    const std::string name = "values[" + std::to_string(v) + "]";
    if (s.size() > kMaxRank) fail(name, "a per-image shape of rank <= " + std::to_string(kMaxRank), shape_text(s));
    // An empty value (a 0 dimension) is allowed only as a plan input a Reduce reads (an empty
    // set; build_steps checks), so no other kernel ever sees n = 0.
    for (size_t d : s) {
      if (d > kMaxDim) fail(name, "dimensions in [0, 2147483647]", shape_text(s));
    }
    const size_t n = shape_size(s);
    if (n > kMaxImageFloats) fail(name, "at most 2^40 elements per image", shape_text(s));
    value_elements.push_back(n);
    value_floats.push_back(dtypes[v] == PlanDType::kFloat32 ? n : (n + 3) / 4);
  }
  auto ids = [&](const std::vector<int64_t>& list, const char* what, std::vector<int>* out) {
    std::vector<bool> seen(values.size(), false);
    for (size_t i = 0; i < list.size(); ++i) {
      const int64_t id = list[i];
      const std::string name = std::string(what) + "[" + std::to_string(i) + "]";
      if (id < 0 || static_cast<size_t>(id) >= values.size()) {
        fail(name, "a value id in [0, " + std::to_string(values.size()) + ")", std::to_string(id));
      }
      if (seen[id]) fail(name, "distinct value ids", "value " + std::to_string(id) + " twice");
      seen[id] = true;
      out->push_back(static_cast<int>(id));
    }
  };
  ids(spec.inputs, "inputs", &inputs);
  ids(spec.outputs, "outputs", &outputs);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (dtypes[inputs[i]] != PlanDType::kFloat32) fail("inputs[" + std::to_string(i) + "]", "a float32 value", plan_dtype_name(dtypes[inputs[i]]));
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (dtypes[outputs[i]] != PlanDType::kFloat32) fail("outputs[" + std::to_string(i) + "]", "a float32 value (dequantize first)", plan_dtype_name(dtypes[outputs[i]]));
  }
  for (size_t v = 0; v < values.size(); ++v) {
    if (value_elements[v] == 0 && std::find(inputs.begin(), inputs.end(), static_cast<int>(v)) == inputs.end()) {
      fail("values[" + std::to_string(v) + "]", "dimensions of at least 1 (only a plan input may be empty)", shape_text(values[v]));
    }
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (std::find(inputs.begin(), inputs.end(), outputs[i]) != inputs.end()) {
      fail("outputs[" + std::to_string(i) + "]", "a value that is not a plan input (add a Copy step)", "value " + std::to_string(outputs[i]));
    }
  }
}

void PlanImpl::build_steps(const PlanSpec& spec) {
  std::vector<bool> defined(values.size(), false);
  for (int v : inputs) defined[v] = true;
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    const PlanStepSpec& s = spec.steps[i];
    const std::string where = step_name(i, s);
    const runtime::OpEntry* entry = runtime::find_op(s.op);
    if (!entry) {
      std::string want = "one of";
      for (const std::string& op : plan_ops()) want += " " + op;
      fail(where + ".op", want, "\"" + s.op + "\"");
    }
    Step step;
    std::vector<PlanShape> in_shapes, out_shapes;
    std::vector<PlanDType> in_types, out_types;
    for (size_t j = 0; j < s.inputs.size(); ++j) {
      const int64_t id = s.inputs[j];
      const std::string name = where + ".inputs[" + std::to_string(j) + "]";
      if (id < 0 || static_cast<size_t>(id) >= values.size()) fail(name, "a value id in [0, " + std::to_string(values.size()) + ")", std::to_string(id));
      if (!defined[id]) fail(name, "a value written by a plan input or an earlier step", "value " + std::to_string(id));
      if (value_elements[id] == 0 && s.op.rfind("Reduce", 0) != 0) fail(name, "a non-empty value (only a Reduce reads an empty one)", shape_text(values[id]));
      step.in_values.push_back(static_cast<int>(id));
      in_shapes.push_back(values[id]);
      in_types.push_back(dtypes[id]);
    }
    for (size_t j = 0; j < s.outputs.size(); ++j) {
      const int64_t id = s.outputs[j];
      const std::string name = where + ".outputs[" + std::to_string(j) + "]";
      if (id < 0 || static_cast<size_t>(id) >= values.size()) fail(name, "a value id in [0, " + std::to_string(values.size()) + ")", std::to_string(id));
      if (defined[id]) fail(name, "a value not written before (each value has one writer)", "value " + std::to_string(id));
      defined[id] = true;
      step.out_values.push_back(static_cast<int>(id));
      out_shapes.push_back(values[id]);
      out_types.push_back(dtypes[id]);
    }
    for (const auto& w : s.weights) {
      const std::string name = where + ".weights." + w.first;
      for (size_t d : w.second.shape) {
        if (d > kMaxDim) fail(name, "dimensions in [0, 2147483647]", shape_text(w.second.shape));
      }
      if (w.second.shape.size() > kMaxRank) fail(name, "a shape of rank <= " + std::to_string(kMaxRank), shape_text(w.second.shape));
      const size_t n = shape_size(w.second.shape);
      if (n != w.second.length) fail(name, std::to_string(n) + " elements for shape " + shape_text(w.second.shape), std::to_string(w.second.length));
      if (n > 0 && !w.second.raw) fail(name, "data", "a null pointer");
      if (w.second.dtype == PlanDType::kFloat32 && w.second.data != w.second.raw) fail(name, "float32 data", "a mismatched pointer");
    }
    runtime::StepContext ctx(s, i, in_shapes, out_shapes);
    ctx.set_dtypes(in_types, out_types);
    if (!entry->quantized) {
      // Float ops and views of float values; views of uint8 values keep their dtype.
      const PlanDType want = entry->make || in_types.empty() ? PlanDType::kFloat32 : in_types[0];
      for (size_t j = 0; j < in_types.size(); ++j) ctx.expect_input_dtype(j, want);
      for (size_t j = 0; j < out_types.size(); ++j) ctx.expect_output_dtype(j, want);
    }
    std::string label = s.op + (s.name.empty() ? "" : " " + s.name);
    if (entry->make) {
      step.impl = entry->make(ctx);
      const std::string detail = step.impl->detail();
      if (!detail.empty()) label += ": " + detail;
      weight_bytes += step.impl->weight_bytes();
    } else {
      ctx.expect_inputs(1, 1);
      ctx.expect_outputs(1);
      if (value_elements[step.in_values[0]] != value_elements[step.out_values[0]]) {
        ctx.fail("outputs[0]", "a shape of " + std::to_string(value_floats[step.in_values[0]]) + " elements per image (a view of the input " +
                 shape_text(in_shapes[0]) + ")", shape_text(out_shapes[0]));
      }
      label += ": view";
    }
    max_arity = std::max({max_arity, s.inputs.size(), s.outputs.size()});
    steps.push_back(std::move(step));
    labels.push_back(label);
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!defined[outputs[i]]) fail("outputs[" + std::to_string(i) + "]", "a value written by a step", "value " + std::to_string(outputs[i]));
  }
}

void PlanImpl::plan_storage() {
  const size_t nv = values.size();
  Sets sets(nv);
  std::vector<int> ext_in(nv, -1), ext_out(nv, -1);
  for (size_t i = 0; i < inputs.size(); ++i) ext_in[inputs[i]] = static_cast<int>(i);
  for (size_t i = 0; i < outputs.size(); ++i) ext_out[outputs[i]] = static_cast<int>(i);
  auto external = [&](int root) { return ext_in[root] >= 0 || ext_out[root] >= 0; };
  auto merge = [&](int keep, int other) {
    sets.parent[other] = keep;
    if (ext_in[other] >= 0) ext_in[keep] = ext_in[other];
    if (ext_out[other] >= 0) ext_out[keep] = ext_out[other];
  };

  // 1. Views share their input's storage unless that would tie two caller buffers together.
  for (size_t i = 0; i < steps.size(); ++i) {
    Step& s = steps[i];
    if (s.impl) continue;
    const int a = sets.find(s.in_values[0]), b = sets.find(s.out_values[0]);
    if (external(a) && external(b)) {
      s.impl = runtime::make_copy_step(value_floats[s.out_values[0]]);
      labels[i] += " (copied)";
    } else {
      merge(a, b);
    }
  }

  // Lifetimes per set: first writer to last reader (plan outputs live to the end).
  const int end = static_cast<int>(steps.size());
  std::vector<int> first(nv, INT_MAX), last(nv, -1);
  auto lifetimes = [&]() {
    std::fill(first.begin(), first.end(), INT_MAX);
    std::fill(last.begin(), last.end(), -1);
    for (int v : inputs) first[sets.find(v)] = -1;
    for (size_t i = 0; i < steps.size(); ++i) {
      for (int v : steps[i].out_values) first[sets.find(v)] = std::min(first[sets.find(v)], static_cast<int>(i));
      for (int v : steps[i].in_values) last[sets.find(v)] = std::max(last[sets.find(v)], static_cast<int>(i));
    }
    for (int v : outputs) last[sets.find(v)] = end;
  };
  lifetimes();

  // 2. Elementwise steps (and residual convolutions) write over an input when nothing reads it
  // afterwards.
  for (size_t i = 0; i < steps.size(); ++i) {
    Step& s = steps[i];
    const int shared = s.impl ? s.impl->in_place_input() : -1;
    if (shared < 0 || static_cast<size_t>(shared) >= s.in_values.size() || s.out_values.empty()) continue;
    const int a = sets.find(s.in_values[shared]), b = sets.find(s.out_values[0]);
    if (a == b || external(a) || ext_in[b] >= 0 || last[a] != static_cast<int>(i)) continue;
    if (value_floats[s.in_values[shared]] != value_floats[s.out_values[0]]) continue;
    bool read_twice = false;
    for (size_t j = 0; j < s.in_values.size(); ++j) {
      read_twice |= j != static_cast<size_t>(shared) && sets.find(s.in_values[j]) == a;
    }
    if (read_twice) continue;
    merge(b, a);
    first[b] = std::min(first[a], first[b]);
    last[b] = std::max(last[a], last[b]);
    labels[i] += " (in place)";
  }

  // 3. One storage group per set; internal groups placed in the arena by lifetime.
  std::vector<int> group_of(nv, -1);
  std::vector<runtime::BufferLifetime> lifetimes_of_internal;
  std::vector<int> internal_groups;
  for (size_t v = 0; v < nv; ++v) {
    const int r = sets.find(static_cast<int>(v));
    if (first[r] == INT_MAX) continue;  // never written (unused value)
    if (group_of[r] < 0) {
      group_of[r] = static_cast<int>(groups.size());
      Group g;
      g.input = ext_in[r];
      g.output = ext_out[r];
      groups.push_back(g);
      if (!external(r)) {
        internal_groups.push_back(group_of[r]);
        lifetimes_of_internal.push_back({0, first[r], std::max(first[r], last[r])});
      }
    }
    Group& g = groups[group_of[r]];
    g.floats = std::max(g.floats, value_floats[v]);
    group_of[v] = group_of[r];
  }
  for (size_t i = 0; i < internal_groups.size(); ++i) lifetimes_of_internal[i].size = round_up(groups[internal_groups[i]].floats);
  std::vector<size_t> offsets;
  arena_per_image = runtime::place_buffers(lifetimes_of_internal, &offsets);
  for (size_t i = 0; i < internal_groups.size(); ++i) groups[internal_groups[i]].offset = offsets[i];
  for (Step& s : steps) {
    for (int v : s.in_values) s.in_groups.push_back(group_of[v]);
    for (int v : s.out_values) s.out_groups.push_back(group_of[v]);
  }
}

void PlanImpl::find_input_prefix() {
  // Groups, not values: a view of an input shares its group, so its readers count too.
  int last_reader = -1;
  for (size_t i = 0; i < steps.size(); ++i) {
    for (int g : steps[i].in_groups) {
      if (groups[g].input >= 0) last_reader = static_cast<int>(i);
    }
  }
  for (int i = 0; i <= last_reader; ++i) {
    if (!steps[i].impl || !steps[i].impl->input_pass()) return;
  }
  input_prefix = static_cast<size_t>(last_reader + 1);
}

Plan::Plan(const PlanSpec& spec) : impl_(std::make_unique<PlanImpl>(spec)) {}
Plan::~Plan() = default;

size_t Plan::num_inputs() const { return impl_->inputs.size(); }
size_t Plan::num_outputs() const { return impl_->outputs.size(); }
size_t Plan::input_size(size_t i) const { return impl_->value_elements.at(impl_->inputs.at(i)); }
size_t Plan::output_size(size_t i) const { return impl_->value_elements.at(impl_->outputs.at(i)); }

namespace {

size_t mul_or_throw(size_t a, size_t b) {
  if (a != 0 && b > std::numeric_limits<size_t>::max() / a) throw PlanError("Expected a batch whose arena fits in memory but received a larger one");
  return a * b;
}

size_t scratch_for(const PlanImpl& p, size_t batch, size_t threads) {
  size_t scratch = 0;
  for (const auto& s : p.steps) {
    if (s.impl) scratch = std::max(scratch, s.impl->scratch_floats(batch, threads));
  }
  return round_up(scratch);
}

// Threads a run may use, fixed once per run (setNumThreads may change the pool meanwhile; the
// scratch is sized for this count).
size_t run_threads(const PlanImpl& p) {
  const size_t pool = num_threads();
  return std::max<size_t>(1, p.max_threads ? std::min(p.max_threads, pool) : pool);
}

// Batches whose value storage stays within this many bytes run whole: they fit in the caches
// (the 2-core EPYC VM these were measured on: 1 MiB of L2 per core and a share of L3).
constexpr size_t kPassCacheBytes = 16u << 20;
// Images per thread in a pass. Measured on that VM, fp32 at batch 16, best of two, whole batch
// against passes: 1 thread, 4 images: MobileNetV2 89.6 -> 81.4 ms, EfficientNet-B0 142.8 -> 128.1,
// MobileNetV3-Large 86.3 -> 78.6, RegNetY-400MF 123.2 -> 111.6, SqueezeNet 70.2 -> 60.8, DetHead
// 19.0 -> 16.1. On 2 threads, passes of 8 ranged from 4% slower to 20% faster over two series
// (SqueezeNet 40.5 -> 34.4 and 34.9 -> 33.9, DetHead 15.5 -> 12.5 and 15.1 -> 15.7, MobileNetV2
// 48.3 -> 47.8 and 50.9 -> 51.7); passes of 2 images were 6-15% slower there on five of six
// models (DetHead 15.5 -> 12.7).
constexpr size_t kPassImagesPerThread = 4;
// Graphs with more multiply-adds per byte of values than this keep their batches whole: their
// convolutions are bound by the multiply-adds, which hide the values' trips through memory.
// ResNet-18/50, GoogLeNet, DenseNet-121 and ConvNeXt-Tiny (340-750 per byte) gained nothing
// measurable or lost (ResNet-50 on 2 threads, passes of 8: 390 -> 416 ms); the mobile networks,
// SqueezeNet and DetHead (50-120) gained.
constexpr double kPassMaxMacsPerByte = 200;

size_t pass_images(const PlanImpl& p, size_t batch, size_t threads) {
  if (p.images_per_pass != 0) return std::min(batch, p.images_per_pass);
  // Lent inputs go back after the first steps, which would have to run for the whole batch.
  if (p.input_prefix > 0) return batch;
  const size_t per_image = p.arena_per_image * sizeof(float);
  const size_t images = kPassImagesPerThread * threads;
  if (batch <= images || batch * per_image <= kPassCacheBytes) return batch;
  if (p.macs_per_image <= 0 || p.macs_per_image > kPassMaxMacsPerByte * static_cast<double>(per_image)) return batch;
  // Every pass after the first reads the weights again, from memory where they do not fit in
  // the caches; every image whose values stay in cache saves writing them there and reading
  // them back.
  const size_t passes = (batch + images - 1) / images;
  if ((passes - 1) * p.weight_bytes >= 2 * batch * per_image) return batch;
  return images;
}

}  // namespace

size_t Plan::images_per_pass(size_t batch) const { return pass_images(*impl_, batch, run_threads(*impl_)); }

size_t Plan::arena_bytes(size_t batch) const {
  const size_t threads = run_threads(*impl_);
  const size_t images = std::max<size_t>(1, pass_images(*impl_, batch, threads));
  return mul_or_throw(mul_or_throw(impl_->arena_per_image, images) + scratch_for(*impl_, images, threads), sizeof(float));
}

PlanInfo Plan::info() const {
  PlanInfo info;
  info.arena_floats_per_image = impl_->arena_per_image;
  info.weight_bytes = impl_->weight_bytes;
  info.arena_bytes_held = impl_->pool.held_bytes();
  info.steps = impl_->labels;
  return info;
}

namespace {

// Inputs the caller holds for the whole run: nothing to take back.
class OwnedInputs final : public Plan::InputLoan {
 public:
  explicit OwnedInputs(const float* const* inputs) : inputs_(inputs) {}
  Taken take() override { return {inputs_, false}; }
  void release() override {}

 private:
  const float* const* inputs_;
};

// Releases a loan once: at done(), or when the run leaves (an exception included).
class LoanRelease {
 public:
  explicit LoanRelease(Plan::InputLoan& loan) : loan_(&loan) {}
  ~LoanRelease() { done(); }
  void done() {
    if (loan_ == nullptr) return;
    Plan::InputLoan* loan = loan_;
    loan_ = nullptr;
    loan->release();
  }

 private:
  Plan::InputLoan* loan_;
};

// Parks the kernel pool's helpers when a run leaves (an exception included), for plans that do
// not allow spinning.
class ParkHelpersAtEnd {
 public:
  explicit ParkHelpersAtEnd(bool park) : park_(park) {}
  ~ParkHelpersAtEnd() {
    if (park_) park_helpers();
  }

 private:
  bool park_;
};

}  // namespace

bool Plan::inputs_read_first() const { return impl_->input_prefix > 0; }
bool Plan::allows_spinning() const { return impl_->allow_spinning; }

void Plan::run(const float* const* inputs, float* const* outputs, size_t batch) const {
  OwnedInputs owned(inputs);
  run(owned, outputs, batch);
}

void Plan::run(InputLoan& loan, float* const* outputs, size_t batch) const {
  const PlanImpl& p = *impl_;
  ParkHelpersAtEnd park(!p.allow_spinning);
  LoanRelease release(loan);
  if (batch == 0) throw PlanError("Expected a batch >= 1 for batch but received 0");
  const size_t threads = run_threads(p);
  const size_t images = pass_images(p, batch, threads);
  const size_t values_floats = mul_or_throw(p.arena_per_image, images);
  const size_t total = values_floats + scratch_for(p, images, threads);
  runtime::ArenaLease arena(p.pool, total, p.groups.size(), p.max_arity);
  Plan::InputLoan::Taken taken = loan.take();
  const float* const* inputs = taken.inputs;
  // Lent inputs go back after the first steps, so several passes read copies (only where the
  // spec asks for passes: the plan's own choice keeps such a batch whole).
  std::vector<std::vector<float>> copies;
  std::vector<const float*> copied;
  if (taken.lent && images < batch) {
    for (size_t i = 0; i < p.inputs.size(); ++i) {
      const float* x = inputs[i];
      copies.emplace_back(x, x + batch * p.value_elements[p.inputs[i]]);
      copied.push_back(copies.back().data());
    }
    release.done();
    inputs = copied.data();
    taken.lent = false;
  }
  // Released after the input passes where the plan starts with them, else when the run ends.
  const size_t release_after = p.input_prefix > 0 && images == batch ? p.input_prefix : p.steps.size();
  float* base = arena->floats.data();
  float* scratch = base + values_floats;
  const float** in = arena->in_ptrs.data();
  float** out = arena->out_ptrs.data();
  const bool timed = p.profiling.load(std::memory_order_relaxed);
  for (size_t first = 0; first < batch; first += images) {
    const size_t n = std::min(images, batch - first);
    for (size_t g = 0; g < p.groups.size(); ++g) {
      const PlanImpl::Group& group = p.groups[g];
      arena->storage[g] = group.input >= 0    ? const_cast<float*>(inputs[group.input]) + first * p.value_elements[p.inputs[group.input]]
                          : group.output >= 0 ? outputs[group.output] + first * p.value_elements[p.outputs[group.output]]
                                              : base + group.offset * n;
    }
    for (size_t i = 0; i < p.steps.size(); ++i) {
      if (i == release_after) release.done();
      const PlanImpl::Step& s = p.steps[i];
      if (!s.impl) continue;
      for (size_t j = 0; j < s.in_groups.size(); ++j) in[j] = arena->storage[s.in_groups[j]];
      for (size_t j = 0; j < s.out_groups.size(); ++j) out[j] = arena->storage[s.out_groups[j]];
      runtime::StepBuffers io;
      io.in = in;
      io.out = out;
      // Before the release the lender's thread may be spinning on the other core: a helper woken
      // there would wait for it.
      const size_t step_threads = taken.lent && i < release_after ? 1 : threads;
      if (!timed) {
        s.impl->run(io, n, scratch, step_threads);
        continue;
      }
      const auto start = std::chrono::steady_clock::now();
      s.impl->run(io, n, scratch, step_threads);
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
      p.step_ns[i].fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
    }
  }
  if (timed) {
    p.profiled_runs.fetch_add(1, std::memory_order_relaxed);
    p.profiled_images.fetch_add(batch, std::memory_order_relaxed);
  }
}

void Plan::set_profiling(bool on) const { impl_->profiling.store(on); }

PlanProfile Plan::profile(bool reset) const {
  const PlanImpl& p = *impl_;
  PlanProfile out;
  out.step_ns.resize(p.steps.size());
  for (size_t i = 0; i < p.steps.size(); ++i) out.step_ns[i] = reset ? p.step_ns[i].exchange(0) : p.step_ns[i].load();
  out.runs = reset ? p.profiled_runs.exchange(0) : p.profiled_runs.load();
  out.images = reset ? p.profiled_images.exchange(0) : p.profiled_images.load();
  return out;
}

}  // namespace kiln
