// max/avg pooling glue: argument checks, then kiln::*_pool2d_* inline or on a runner thread.
#include <napi.h>

#include <string>

#include "args.h"
#include "job.h"
#include "kernel-args.h"
#include "kiln/pool.h"
#include "registry.h"

namespace kiln_addon {
namespace {

// Indices address an input plane with int32: the plane must fit.
void check_indexable(const Pool2dArgs& a) {
  const size_t plane = a.g.in_height * a.g.in_width;
  if (plane > static_cast<size_t>(kMaxDim)) {
    throw_range("inHeight * inWidth", "at most 2147483647 for int32 indices", std::to_string(plane));
  }
}

Napi::Value MaxPool2dForward(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    const Pool2dArgs a = read_pool2d_args(o);
    check_indexable(a);
    const View<float> input = get_f32_exact(o, "input", a.input);
    const View<float> output = get_f32_exact(o, "output", a.output);
    const View<int32_t> indices = get_i32_exact_opt(o, "indices", a.output);
    expect_apart({region(output, "output"), region(indices, "indices")}, {region(input, "input")});
    const kiln::Pool2dGeometry g = a.g;
    JobMemory mem(async);
    const float* x = mem.read(input);
    float* y = mem.write(output);
    int32_t* winners = mem.write(indices);
    return run_job(env, std::move(mem), [=] { kiln::max_pool2d_forward(g, x, y, winners); });
  });
}

Napi::Value MaxPool2dBackward(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    const Pool2dArgs a = read_pool2d_args(o);
    check_indexable(a);
    const View<float> grad_output = get_f32_exact(o, "gradOutput", a.output);
    const View<int32_t> indices = get_i32_exact(o, "indices", a.output);
    const View<float> grad_input = get_f32_exact(o, "gradInput", a.input);
    expect_apart({region(grad_input, "gradInput")}, {region(grad_output, "gradOutput"), region(indices, "indices")});
    // -1 marks a window with no input; anything else must address the plane (the kernel would
    // skip it, but it means the indices do not belong to this geometry).
    const int64_t plane = static_cast<int64_t>(a.g.in_height * a.g.in_width);
    for (size_t i = 0; i < indices.length; ++i) {
      if (indices.data[i] < -1 || indices.data[i] >= plane) {
        throw_range("indices[" + std::to_string(i) + "]", "an integer in [-1, " + std::to_string(plane - 1) + "]",
                    std::to_string(indices.data[i]));
      }
    }
    const kiln::Pool2dGeometry g = a.g;
    // The job reads its copy of the indices checked above: JS cannot change them under it.
    JobMemory mem(async);
    const float* dy = mem.read(grad_output);
    const int32_t* winners = mem.read(indices);
    float* dx = mem.write(grad_input);
    return run_job(env, std::move(mem), [=] { kiln::max_pool2d_backward(g, dy, winners, dx); });
  });
}

using AvgPoolKernel = void (*)(const kiln::Pool2dGeometry&, const float*, float*, bool, size_t);

// Average pooling either way reads one array and writes another over the same geometry, apart:
// forward `input` (a.input elements) -> `output` (a.output), backward `gradOutput` (a.output) ->
// `gradInput` (a.input).
Napi::Value avg_pool2d(const Napi::CallbackInfo& info, bool forward, AvgPoolKernel kernel) {
  const char* from = forward ? "input" : "gradOutput";
  const char* to = forward ? "output" : "gradInput";
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    const Pool2dArgs a = read_pool2d_args(o);
    const View<float> source = get_f32_exact(o, from, forward ? a.input : a.output);
    const View<float> target = get_f32_exact(o, to, forward ? a.output : a.input);
    const bool include_pad = get_bool(o, "countIncludePad");
    expect_apart({region(target, to)}, {region(source, from)});
    const kiln::Pool2dGeometry g = a.g;
    JobMemory mem(async);
    const float* x = mem.read(source);
    float* y = mem.write(target);
    return run_job(env, std::move(mem), [=] { kernel(g, x, y, include_pad, 0); });
  });
}

Napi::Value AvgPool2dForward(const Napi::CallbackInfo& info) { return avg_pool2d(info, true, kiln::avg_pool2d_forward); }
Napi::Value AvgPool2dBackward(const Napi::CallbackInfo& info) { return avg_pool2d(info, false, kiln::avg_pool2d_backward); }

}  // namespace

void register_pool(Napi::Env env, Napi::Object exports) {
  exports.Set("maxPool2dForward", Napi::Function::New(env, MaxPool2dForward, "maxPool2dForward"));
  exports.Set("maxPool2dBackward", Napi::Function::New(env, MaxPool2dBackward, "maxPool2dBackward"));
  exports.Set("avgPool2dForward", Napi::Function::New(env, AvgPool2dForward, "avgPool2dForward"));
  exports.Set("avgPool2dBackward", Napi::Function::New(env, AvgPool2dBackward, "avgPool2dBackward"));
}

}  // namespace kiln_addon
