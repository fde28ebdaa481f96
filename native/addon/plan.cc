// createPlan / runPlan / planInfo / disposePlan: N-API glue around kiln::Plan (native/include/kiln/plan.h).
// The spec is read into plain C++ (weights borrowed from the typed arrays, which stay referenced
// while an async build runs); kiln::Plan validates it and throws PlanError, turned into a
// RangeError with code ERR_KILN_INVALID_ARG. A plan is an External tagged as ours, so runPlan
// refuses any other object.
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "handle.h"
#include "job.h"
#include "runner.h"
#include "kiln/plan.h"
#include "registry.h"

namespace kiln_addon {
namespace {

// Marks Externals created here (napi_type_tag_object), so runPlan never casts a foreign pointer.
const napi_type_tag kPlanTag = {0x6b696c6e706c616eULL, 0x9d3c1e5a7b204f61ULL};

using PlanHandle = Handle<kiln::Plan>;  // object: null once disposed

constexpr int64_t kMaxBatch = (int64_t{1} << 31) - 1;

std::string at(const std::string& base, size_t i) { return base + "[" + std::to_string(i) + "]"; }

std::vector<int64_t> read_ints(const Napi::Value& v, const std::string& name) {
  if (!v.IsArray()) throw_type(name, "an array of integers", v);
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<int64_t> out;
  out.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value e = arr.Get(i);
    if (!e.IsNumber()) throw_type(at(name, i), "an integer", e);
    const double d = e.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9007199254740991.0) throw_type(at(name, i), "an integer", e);
    out.push_back(static_cast<int64_t>(d));
  }
  return out;
}

std::vector<size_t> read_dims(const Napi::Value& v, const std::string& name) {
  std::vector<size_t> out;
  const std::vector<int64_t> ints = read_ints(v, name);
  for (size_t i = 0; i < ints.size(); ++i) {
    if (ints[i] < 0 || ints[i] > kMaxBatch) throw_range(at(name, i), "an integer in [0, 2147483647]", std::to_string(ints[i]));
    out.push_back(static_cast<size_t>(ints[i]));
  }
  return out;
}

kiln::PlanAttr read_attr(const Napi::Value& v, const std::string& name) {
  kiln::PlanAttr a;
  if (v.IsNumber()) {
    a.kind = kiln::PlanAttr::kNumber;
    a.number = v.As<Napi::Number>().DoubleValue();
  } else if (v.IsBoolean()) {
    a.kind = kiln::PlanAttr::kNumber;
    a.number = v.As<Napi::Boolean>().Value() ? 1 : 0;
  } else if (v.IsString()) {
    a.kind = kiln::PlanAttr::kString;
    a.text = v.As<Napi::String>().Utf8Value();
  } else if (v.IsArray()) {
    a.kind = kiln::PlanAttr::kList;
    Napi::Array arr = v.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value e = arr.Get(i);
      if (!e.IsNumber()) throw_type(at(name, i), "a number", e);
      a.list.push_back(e.As<Napi::Number>().DoubleValue());
    }
  } else {
    throw_type(name, "a number, a string or an array of numbers", v);
  }
  return a;
}

// Reads the spec; its weights point into `mem` (the job's copies when the plan is built async).
std::shared_ptr<kiln::PlanSpec> read_spec(const Napi::Object& o, JobMemory& mem) {
  auto spec = std::make_shared<kiln::PlanSpec>();
  Napi::Value values = o.Get("values");
  if (!values.IsArray()) throw_type("spec.values", "an array of shapes", values);
  Napi::Array va = values.As<Napi::Array>();
  for (uint32_t i = 0; i < va.Length(); ++i) spec->values.push_back(read_dims(va.Get(i), at("spec.values", i)));
  Napi::Value types = o.Get("valueTypes");
  if (!types.IsUndefined() && !types.IsNull()) {
    if (!types.IsArray()) throw_type("spec.valueTypes", "an array of 'float32' | 'uint8' | 'bool'", types);
    Napi::Array ta = types.As<Napi::Array>();
    for (uint32_t i = 0; i < ta.Length(); ++i) {
      Napi::Value t = ta.Get(i);
      const std::string text = t.IsString() ? t.As<Napi::String>().Utf8Value() : "";
      if (text == "float32") spec->value_dtypes.push_back(kiln::PlanDType::kFloat32);
      else if (text == "uint8") spec->value_dtypes.push_back(kiln::PlanDType::kUint8);
      else if (text == "bool") spec->value_dtypes.push_back(kiln::PlanDType::kBool);
      else throw_type(at("spec.valueTypes", i), "'float32', 'uint8' or 'bool'", t);
    }
  }
  spec->inputs = read_ints(o.Get("inputs"), "spec.inputs");
  spec->outputs = read_ints(o.Get("outputs"), "spec.outputs");
  spec->max_threads = static_cast<size_t>(get_int_or(o, "maxThreads", 0, 1024, 0));
  spec->images_per_pass = static_cast<size_t>(get_int_or(o, "imagesPerPass", 0, 1 << 20, 0));
  spec->macs_per_image = std::max(0.0, get_number_or(o, "macsPerImage", 0));
  spec->allow_spinning = get_bool_or(o, "allowSpinning", true);
  Napi::Value steps = o.Get("steps");
  if (!steps.IsArray()) throw_type("spec.steps", "an array of steps", steps);
  Napi::Array sa = steps.As<Napi::Array>();
  for (uint32_t i = 0; i < sa.Length(); ++i) {
    const std::string name = at("spec.steps", i);
    Napi::Value sv = sa.Get(i);
    if (!sv.IsObject()) throw_type(name, "a step object", sv);
    Napi::Object so = sv.As<Napi::Object>();
    kiln::PlanStepSpec step;
    Napi::Value op = so.Get("op");
    if (!op.IsString()) throw_type(name + ".op", "a string", op);
    step.op = op.As<Napi::String>().Utf8Value();
    Napi::Value nm = so.Get("name");
    if (nm.IsString()) step.name = nm.As<Napi::String>().Utf8Value();
    step.inputs = read_ints(so.Get("inputs"), name + ".inputs");
    step.outputs = read_ints(so.Get("outputs"), name + ".outputs");
    Napi::Value attrs = so.Get("attrs");
    if (!attrs.IsUndefined() && !attrs.IsNull()) {
      if (!attrs.IsObject() || attrs.IsArray()) throw_type(name + ".attrs", "an object", attrs);
      Napi::Object ao = attrs.As<Napi::Object>();
      Napi::Array keys = ao.GetPropertyNames();
      for (uint32_t k = 0; k < keys.Length(); ++k) {
        const std::string key = keys.Get(k).As<Napi::String>().Utf8Value();
        step.attrs[key] = read_attr(ao.Get(key), name + ".attrs." + key);
      }
    }
    Napi::Value weights = so.Get("weights");
    if (!weights.IsUndefined() && !weights.IsNull()) {
      if (!weights.IsObject() || weights.IsArray()) throw_type(name + ".weights", "an object", weights);
      Napi::Object wo = weights.As<Napi::Object>();
      Napi::Array keys = wo.GetPropertyNames();
      for (uint32_t k = 0; k < keys.Length(); ++k) {
        const std::string key = keys.Get(k).As<Napi::String>().Utf8Value();
        const std::string wname = name + ".weights." + key;
        Napi::Value wv = wo.Get(key);
        if (!wv.IsObject()) throw_type(wname, "an object {data: Float32Array | Int8Array | Int32Array, shape: number[]}", wv);
        Napi::Object wt = wv.As<Napi::Object>();
        Napi::Value dv = wt.Get("data");
        kiln::PlanTensor t;
        if (dv.IsTypedArray() && dv.As<Napi::TypedArray>().TypedArrayType() == napi_int8_array) {
          View<int8_t> data = get_i8(wt, "data", 0);
          t.dtype = kiln::PlanDType::kInt8;
          t.raw = mem.read(data);
          t.length = data.length;
        } else if (dv.IsTypedArray() && dv.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
          View<int32_t> data = get_i32(wt, "data", 0);
          t.dtype = kiln::PlanDType::kInt32;
          t.raw = mem.read(data);
          t.length = data.length;
        } else {
          View<float> data = get_f32(wt, "data", 0);
          t.data = mem.read(data);
          t.raw = t.data;
          t.length = data.length;
        }
        // The plan checks the length against the shape (PlanError) before reading anything.
        t.shape = read_dims(wt.Get("shape"), wname + ".shape");
        step.weights[key] = std::move(t);
      }
    }
    spec->steps.push_back(std::move(step));
  }
  return spec;
}

Napi::Error spec_error(Napi::Env env, const std::string& message) {
  Napi::Error err = Napi::RangeError::New(env, message);
  err.Set("code", Napi::String::New(env, "ERR_KILN_INVALID_ARG"));
  return err;
}

Napi::Value wrap(Napi::Env env, std::shared_ptr<const kiln::Plan> plan) {
  const size_t bytes = plan->info().weight_bytes;
  return wrap_handle(env, std::move(plan), bytes, &kPlanTag);
}

PlanHandle* unwrap(const Napi::Value& v, const char* name) {
  return unwrap_handle<kiln::Plan>(v, &kPlanTag, name, "a plan made by createPlan");
}

std::shared_ptr<const kiln::Plan> live_plan(Napi::Env env, const Napi::Value& v) {
  PlanHandle* h = unwrap(v, "plan");
  if (!h->object) {
    Napi::Error err = Napi::Error::New(env, "The plan was disposed");
    err.Set("code", Napi::String::New(env, "ERR_KILN_DISPOSED"));
    throw err;
  }
  return h->object;
}

Napi::Value CreatePlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    Napi::Object spec_obj = get_object(info, 0, "spec");
    const bool async = info.Length() > 1 && info[1].ToBoolean().Value();
    JobMemory mem(async);
    std::shared_ptr<kiln::PlanSpec> spec = read_spec(spec_obj, mem);
    auto built = std::make_shared<std::shared_ptr<const kiln::Plan>>();
    auto error = std::make_shared<std::string>();
    return run_job_with_result(
        env, std::move(mem),
        [spec, built, error] {
          try {
            *built = std::make_shared<const kiln::Plan>(*spec);
          } catch (const kiln::PlanError& e) {
            *error = e.what();
          }
        },
        [built, error](Napi::Env e) -> Napi::Value {
          if (!error->empty()) throw spec_error(e, *error);
          return wrap(e, *built);
        });
  }
  KILN_ADDON_CATCH(env)
}

struct Buffers {
  std::vector<const float*> in;
  std::vector<const float*> in_place;  // the caller's arrays behind `in` (lent runs)
  std::vector<float*> out;
};

// A plan run's side of a loan of its inputs from the JS thread (run_job_lending_inputs).
class PlanInputLoan final : public kiln::Plan::InputLoan {
 public:
  PlanInputLoan(InputLender& lender, const Buffers& buffers) : lender_(lender), buffers_(buffers) {}
  Taken take() override {
    const bool lent = lender_.take();
    return {lent ? buffers_.in_place.data() : buffers_.in.data(), lent};
  }
  void release() override { lender_.give_back(); }

 private:
  InputLender& lender_;
  const Buffers& buffers_;
};

Napi::Value RunPlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    if (info.Length() < 1) throw_type("plan", "a plan made by createPlan", env.Undefined());
    std::shared_ptr<const kiln::Plan> plan = live_plan(env, info[0]);
    Napi::Object args = get_object(info, 1, "args");
    const bool async = info.Length() > 2 && info[2].ToBoolean().Value();
    const size_t batch = static_cast<size_t>(get_int(args, "batch", 1, kMaxBatch));
    JobMemory mem(async);  // the plan itself is held by the shared_ptr the job captures
    auto buffers = std::make_shared<Buffers>();
    std::vector<std::pair<const char*, const char*>> ranges;  // [begin, end) of every buffer
    auto read_list = [&](const char* name, size_t count, bool outputs) {
      Napi::Value v = args.Get(name);
      if (!v.IsArray()) throw_type(name, "an array of Float32Array", v);
      Napi::Array arr = v.As<Napi::Array>();
      if (arr.Length() != count) throw_range(name, std::to_string(count) + " arrays", std::to_string(arr.Length()));
      for (uint32_t i = 0; i < count; ++i) {
        const std::string item = at(name, i);
        Napi::Value e = arr.Get(i);
        if (!e.IsTypedArray() || e.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) throw_type(item, "a Float32Array", e);
        auto ta = e.As<Napi::Float32Array>();
        const size_t want = checked_mul(batch, outputs ? plan->output_size(i) : plan->input_size(i), item.c_str());
        if (ta.ElementLength() != want) {
          throw_range(item, "a Float32Array of " + std::to_string(want) + " elements (batch " + std::to_string(batch) + ")", describe(e));
        }
        const char* begin = reinterpret_cast<const char*>(ta.Data());
        if (outputs) {
          for (const auto& r : ranges) {
            if (begin < r.second && r.first < begin + want * sizeof(float)) {
              throw_range(item, "an output buffer that overlaps no other input or output", "an overlapping view");
            }
          }
        }
        ranges.emplace_back(begin, begin + want * sizeof(float));
        const View<float> view{ta.Data(), want, e, item.c_str()};
        if (outputs) {
          buffers->out.push_back(mem.write(view));  // a plan writes every element of its outputs
        } else {
          buffers->in.push_back(mem.read(view));
        }
      }
    };
    read_list("inputs", plan->num_inputs(), false);
    read_list("outputs", plan->num_outputs(), true);
    if (plan->inputs_read_first()) {
      // An int8 model's inputs go through QuantizeLinear first: it reads the caller's large arrays
      // in place while this thread waits, where a copy of them would cost as much as that pass.
      for (const float* p : buffers->in) buffers->in_place.push_back(static_cast<const float*>(mem.source(p)));
      return run_job_lending_inputs(env, std::move(mem), [plan, buffers, batch](InputLender& lender) {
        if (!plan->allows_spinning()) sleep_after_this_job();
        PlanInputLoan loan(lender, *buffers);
        plan->run(loan, buffers->out.data(), batch);
      });
    }
    return run_job(env, std::move(mem), [plan, buffers, batch] {
      if (!plan->allows_spinning()) sleep_after_this_job();
      plan->run(buffers->in.data(), buffers->out.data(), batch);
    });
  }
  KILN_ADDON_CATCH(env)
}

Napi::Value PlanInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    std::shared_ptr<const kiln::Plan> plan = live_plan(env, info.Length() ? info[0] : env.Undefined());
    const kiln::PlanInfo pi = plan->info();
    Napi::Object out = Napi::Object::New(env);
    out.Set("arenaBytes", Napi::Number::New(env, static_cast<double>(plan->arena_bytes(1))));
    out.Set("arenaBytesPerImage", Napi::Number::New(env, static_cast<double>(pi.arena_floats_per_image * sizeof(float))));
    out.Set("weightBytes", Napi::Number::New(env, static_cast<double>(pi.weight_bytes)));
    out.Set("arenaBytesHeld", Napi::Number::New(env, static_cast<double>(pi.arena_bytes_held)));
    Napi::Array steps = Napi::Array::New(env, pi.steps.size());
    for (size_t i = 0; i < pi.steps.size(); ++i) steps.Set(static_cast<uint32_t>(i), Napi::String::New(env, pi.steps[i]));
    out.Set("steps", steps);
    return out;
  }
  KILN_ADDON_CATCH(env)
}

// setPlanProfiling(plan, on): per-step timing of later runs (kiln::Plan::set_profiling).
Napi::Value SetPlanProfiling(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    std::shared_ptr<const kiln::Plan> plan = live_plan(env, info.Length() ? info[0] : env.Undefined());
    if (info.Length() < 2 || !info[1].IsBoolean()) throw kiln::PlanError("Expected a boolean for on but received another value");
    plan->set_profiling(info[1].As<Napi::Boolean>().Value());
    return env.Undefined();
  }
  KILN_ADDON_CATCH(env)
}

// planProfile(plan, reset) -> { runs, images, stepNs: number[] } (kiln::Plan::profile).
Napi::Value PlanProfile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    std::shared_ptr<const kiln::Plan> plan = live_plan(env, info.Length() ? info[0] : env.Undefined());
    const bool reset = info.Length() >= 2 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
    const kiln::PlanProfile p = plan->profile(reset);
    Napi::Object out = Napi::Object::New(env);
    out.Set("runs", Napi::Number::New(env, static_cast<double>(p.runs)));
    out.Set("images", Napi::Number::New(env, static_cast<double>(p.images)));
    Napi::Array ns = Napi::Array::New(env, p.step_ns.size());
    for (size_t i = 0; i < p.step_ns.size(); ++i) ns.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(p.step_ns[i])));
    out.Set("stepNs", ns);
    return out;
  }
  KILN_ADDON_CATCH(env)
}

// Frees the plan's weights now (runs in flight keep their own reference until they end).
Napi::Value DisposePlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    PlanHandle* h = unwrap(info.Length() ? info[0] : env.Undefined(), "plan");
    h->release(env);
    return env.Undefined();
  }
  KILN_ADDON_CATCH(env)
}

}  // namespace

void register_plan(Napi::Env env, Napi::Object exports) {
  exports.Set("createPlan", Napi::Function::New(env, CreatePlan, "createPlan"));
  exports.Set("runPlan", Napi::Function::New(env, RunPlan, "runPlan"));
  exports.Set("planInfo", Napi::Function::New(env, PlanInfo, "planInfo"));
  exports.Set("disposePlan", Napi::Function::New(env, DisposePlan, "disposePlan"));
  exports.Set("setPlanProfiling", Napi::Function::New(env, SetPlanProfiling, "setPlanProfiling"));
  exports.Set("planProfile", Napi::Function::New(env, PlanProfile, "planProfile"));
}

}  // namespace kiln_addon
