#include "runtime/step.h"

#include <cmath>
#include <limits>
#include <sstream>

namespace kiln {
namespace runtime {

}  // namespace runtime

const char* plan_dtype_name(PlanDType t) {
  switch (t) {
    case PlanDType::kFloat32: return "float32";
    case PlanDType::kUint8: return "uint8";
    case PlanDType::kInt8: return "int8";
    case PlanDType::kInt32: return "int32";
    case PlanDType::kBool: return "bool";
  }
  return "?";
}

size_t plan_dtype_bytes(PlanDType t) {
  return t == PlanDType::kUint8 || t == PlanDType::kInt8 || t == PlanDType::kBool ? 1 : 4;
}

namespace runtime {

std::string shape_text(const std::vector<size_t>& shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

size_t shape_size(const std::vector<size_t>& shape) {
  size_t n = 1;
  for (size_t d : shape) {
    if (d != 0 && n > std::numeric_limits<size_t>::max() / d) {
      throw PlanError("Expected a shape whose size fits in memory but received " + shape_text(shape));
    }
    n *= d;
  }
  return n;
}

namespace {

std::string attr_text(const PlanAttr& a) {
  std::ostringstream s;
  if (a.kind == PlanAttr::kNumber) {
    s << a.number << " (number)";
  } else if (a.kind == PlanAttr::kString) {
    s << "\"" << a.text << "\" (string)";
  } else {
    s << "[";
    for (size_t i = 0; i < a.list.size(); ++i) s << (i ? ", " : "") << a.list[i];
    s << "]";
  }
  return s.str();
}

bool is_integer_in(double v, int64_t lo, int64_t hi) {
  return std::isfinite(v) && v == std::floor(v) && v >= static_cast<double>(lo) &&
         v <= static_cast<double>(hi);
}

std::string range_text(int64_t lo, int64_t hi) {
  std::ostringstream s;
  s << "[" << lo << ", " << hi << "]";
  return s.str();
}

}  // namespace

StepContext::StepContext(const PlanStepSpec& spec, size_t index, std::vector<PlanShape> in,
                         std::vector<PlanShape> out)
    : spec_(spec), in_(std::move(in)), out_(std::move(out)) {
  std::ostringstream s;
  s << "steps[" << index << "]";
  if (!spec.name.empty()) s << " (" << spec.name << ")";
  where_ = s.str();
}

void StepContext::fail(const std::string& what, const std::string& expected,
                       const std::string& received) const {
  throw PlanError("Expected " + expected + " for " + where_ + (what.empty() ? "" : "." + what) +
                  " but received " + received);
}

void StepContext::expect_inputs(size_t lo, size_t hi) const {
  const size_t n = spec_.inputs.size();
  if (n < lo || n > hi) {
    fail("inputs", lo == hi ? std::to_string(lo) + " input value(s)" : "between " + std::to_string(lo) + " and " + std::to_string(hi) + " input values",
         std::to_string(n));
  }
}

void StepContext::expect_outputs(size_t n) const {
  if (spec_.outputs.size() != n) fail("outputs", std::to_string(n) + " output value(s)", std::to_string(spec_.outputs.size()));
}

void StepContext::expect_output_shape(size_t i, const PlanShape& shape) const {
  if (out_.at(i) != shape) {
    fail("outputs[" + std::to_string(i) + "]", "per-image shape " + shape_text(shape) + " (computed from the inputs)", shape_text(out_[i]));
  }
}

void StepContext::expect_input_shape(size_t i, const PlanShape& shape) const {
  if (in_.at(i) != shape) fail("inputs[" + std::to_string(i) + "]", "per-image shape " + shape_text(shape), shape_text(in_[i]));
}

void StepContext::expect_input_rank(size_t i, size_t rank) const {
  if (in_.at(i).size() != rank) {
    fail("inputs[" + std::to_string(i) + "]", "a value of rank " + std::to_string(rank + 1) + " (batch included)",
         "per-image shape " + shape_text(in_[i]));
  }
}

const PlanAttr* StepContext::attr(const char* name) const {
  auto it = spec_.attrs.find(name);
  return it == spec_.attrs.end() ? nullptr : &it->second;
}

bool StepContext::has(const char* name) const { return attr(name) != nullptr; }

int64_t StepContext::integer(const char* name, int64_t lo, int64_t hi) const {
  const PlanAttr* a = attr(name);
  if (!a) fail(std::string("attrs.") + name, "an integer in " + range_text(lo, hi), "undefined");
  if (a->kind != PlanAttr::kNumber || !is_integer_in(a->number, lo, hi)) {
    fail(std::string("attrs.") + name, "an integer in " + range_text(lo, hi), attr_text(*a));
  }
  return static_cast<int64_t>(a->number);
}

int64_t StepContext::integer_or(const char* name, int64_t lo, int64_t hi, int64_t fallback) const {
  return has(name) ? integer(name, lo, hi) : fallback;
}

double StepContext::number_or(const char* name, double fallback) const {
  const PlanAttr* a = attr(name);
  if (!a) return fallback;
  if (a->kind != PlanAttr::kNumber || !std::isfinite(a->number)) {
    fail(std::string("attrs.") + name, "a finite number", attr_text(*a));
  }
  return a->number;
}

std::vector<int64_t> StepContext::integers_or(const char* name, size_t count, int64_t lo, int64_t hi,
                                              std::vector<int64_t> fallback) const {
  const PlanAttr* a = attr(name);
  if (!a) return fallback;
  const std::string want = (count ? std::to_string(count) + " integers" : std::string("a list of integers")) + " in " + range_text(lo, hi);
  if (a->kind != PlanAttr::kList || (count && a->list.size() != count)) fail(std::string("attrs.") + name, want, attr_text(*a));
  std::vector<int64_t> out;
  out.reserve(a->list.size());
  for (double v : a->list) {
    if (!is_integer_in(v, lo, hi)) fail(std::string("attrs.") + name, want, attr_text(*a));
    out.push_back(static_cast<int64_t>(v));
  }
  return out;
}

std::string StepContext::text_or(const char* name, const std::string& fallback) const {
  const PlanAttr* a = attr(name);
  if (!a) return fallback;
  if (a->kind != PlanAttr::kString) fail(std::string("attrs.") + name, "a string", attr_text(*a));
  return a->text;
}

std::string StepContext::choice_or(const char* name, const std::vector<std::string>& options,
                                   const std::string& fallback) const {
  const std::string v = text_or(name, fallback);
  for (const std::string& o : options) {
    if (o == v) return v;
  }
  std::string want = "one of";
  for (size_t i = 0; i < options.size(); ++i) want += (i ? ", '" : " '") + options[i] + "'";
  fail(std::string("attrs.") + name, want, "\"" + v + "\"");
}

const PlanTensor* StepContext::find_weight(const char* name) const {
  auto it = spec_.weights.find(name);
  return it == spec_.weights.end() ? nullptr : &it->second;
}

const PlanTensor* StepContext::weight_opt(const char* name) const {
  return find_weight(name) ? &weight(name) : nullptr;
}

const PlanTensor& StepContext::weight(const char* name) const {
  const PlanTensor* w = find_weight(name);
  if (!w) fail(std::string("weights.") + name, "a weight tensor", "undefined");
  if (w->dtype != PlanDType::kFloat32 || !w->data) {
    fail(std::string("weights.") + name, "a float32 weight", std::string(plan_dtype_name(w->dtype)) + " data");
  }
  return *w;
}

const PlanTensor& StepContext::typed_weight(const char* name, PlanDType t, const std::vector<size_t>& shape) const {
  const PlanTensor* w = find_weight(name);
  if (!w) fail(std::string("weights.") + name, std::string("a ") + plan_dtype_name(t) + " weight tensor", "undefined");
  if (w->dtype != t || (w->length && !w->raw)) fail(std::string("weights.") + name, std::string("a ") + plan_dtype_name(t) + " weight", std::string(plan_dtype_name(w->dtype)) + " data");
  if (w->shape != shape) fail(std::string("weights.") + name, "shape " + shape_text(shape), shape_text(w->shape));
  return *w;
}

const PlanTensor* StepContext::typed_weight_opt(const char* name, PlanDType t, const std::vector<size_t>& shape) const {
  return find_weight(name) ? &typed_weight(name, t, shape) : nullptr;
}

void StepContext::set_dtypes(std::vector<PlanDType> in, std::vector<PlanDType> out) {
  in_dtypes_ = std::move(in);
  out_dtypes_ = std::move(out);
}

void StepContext::expect_input_dtype(size_t i, PlanDType t) const {
  if (in_dtype(i) != t) fail("inputs[" + std::to_string(i) + "]", std::string("a ") + plan_dtype_name(t) + " value", plan_dtype_name(in_dtype(i)));
}

void StepContext::expect_output_dtype(size_t i, PlanDType t) const {
  if (out_dtype(i) != t) fail("outputs[" + std::to_string(i) + "]", std::string("a ") + plan_dtype_name(t) + " value", plan_dtype_name(out_dtype(i)));
}

const PlanTensor& StepContext::weight(const char* name, const std::vector<size_t>& shape) const {
  const PlanTensor& w = weight(name);
  if (w.shape != shape) fail(std::string("weights.") + name, "shape " + shape_text(shape), shape_text(w.shape));
  return w;
}

const PlanTensor* StepContext::weight_opt(const char* name, const std::vector<size_t>& shape) const {
  return weight_opt(name) ? &weight(name, shape) : nullptr;
}

}  // namespace runtime
}  // namespace kiln
