// conv2dForward / conv2dBackward: argument checks, then kiln::conv2d_* inline or on a runner thread.
#include <napi.h>

#include "args.h"
#include "job.h"
#include "kernel-args.h"
#include "kiln/conv.h"
#include "registry.h"

namespace kiln_addon {
namespace {

// What a forward convolution reads: the input, the weights and the optional bias, each of exactly
// the size its geometry gives.
struct ForwardOperands {
  View<float> input, weight, bias;

  ForwardOperands(const Napi::Object& o, const Conv2dArgs& a)
      : input(get_f32_exact(o, "input", a.input)),
        weight(get_f32_exact(o, "weight", a.weight)),
        bias(get_f32_exact_opt(o, "bias", a.g.out_channels)) {}

  // RangeError unless every output is apart from all three.
  void expect_apart_from(std::initializer_list<Region> outputs) const {
    expect_apart(outputs, {region(input, "input"), region(weight, "weight"), region(bias, "bias")});
  }

  struct Pointers {
    const float* x;
    const float* w;
    const float* b;
  };
  Pointers read(JobMemory& mem) const { return {mem.read(input), mem.read(weight), mem.read(bias)}; }
};

Napi::Value Conv2dForward(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    const Conv2dArgs a = read_conv2d_args(o);
    const ForwardOperands in(o, a);
    const View<float> output = get_f32_exact(o, "output", a.output);
    const bool relu = get_bool_or(o, "relu", false);
    in.expect_apart_from({region(output, "output")});
    const kiln::Conv2dGeometry g = a.g;
    const size_t batch = a.batch;
    JobMemory mem(async);
    const ForwardOperands::Pointers p = in.read(mem);
    float* y = mem.write(output);
    return run_job(env, std::move(mem), [=] { kiln::conv2d_forward(g, batch, p.x, p.w, p.b, relu, y); });
  });
}

Napi::Value Conv2dBackward(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    const Conv2dArgs a = read_conv2d_args(o);
    const View<float> input = get_f32_exact(o, "input", a.input);
    const View<float> weight = get_f32_exact(o, "weight", a.weight);
    const View<float> grad_output = get_f32_exact(o, "gradOutput", a.output);
    const View<float> grad_input = get_f32_exact_opt(o, "gradInput", a.input);
    const View<float> grad_weight = get_f32_exact_opt(o, "gradWeight", a.weight);
    const View<float> grad_bias = get_f32_exact_opt(o, "gradBias", a.g.out_channels);
    expect_apart({region(grad_input, "gradInput"), region(grad_weight, "gradWeight"), region(grad_bias, "gradBias")},
                 {region(input, "input"), region(weight, "weight"), region(grad_output, "gradOutput")});
    const kiln::Conv2dGeometry g = a.g;
    const size_t batch = a.batch;
    JobMemory mem(async);
    const float* x = mem.read(input);
    const float* w = mem.read(weight);
    const float* dy = mem.read(grad_output);
    float* dx = mem.write(grad_input);
    float* dw = mem.write(grad_weight);
    float* db = mem.write(grad_bias);
    return run_job(env, std::move(mem), [=] { kiln::conv2d_backward(g, batch, x, w, dy, dx, dw, db); });
  });
}

// conv2dMaxPoolForward: conv2dForward's arguments plus poolKernelH/W, poolStrideH/W,
// poolDilationH/W (default 1), poolOutHeight/Width; output and indices (optional) hold
// batch x Cout x poolOutHeight x poolOutWidth elements.
Napi::Value Conv2dMaxPoolForward(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    const Conv2dArgs a = read_conv2d_args(o);
    kiln::ConvMaxPool pool;
    pool.kernel_h = static_cast<size_t>(get_int(o, "poolKernelH", 1, kMaxDim));
    pool.kernel_w = static_cast<size_t>(get_int(o, "poolKernelW", 1, kMaxDim));
    pool.stride_h = static_cast<size_t>(get_int(o, "poolStrideH", 1, kMaxDim));
    pool.stride_w = static_cast<size_t>(get_int(o, "poolStrideW", 1, kMaxDim));
    pool.dilation_h = static_cast<size_t>(get_int_or(o, "poolDilationH", 1, kMaxDim, 1));
    pool.dilation_w = static_cast<size_t>(get_int_or(o, "poolDilationW", 1, kMaxDim, 1));
    pool.out_h = static_cast<size_t>(get_int(o, "poolOutHeight", 1, kMaxDim));
    pool.out_w = static_cast<size_t>(get_int(o, "poolOutWidth", 1, kMaxDim));
    // The training entry point takes unpadded pools only (the layer's own sizes).
    if (!kiln::conv_max_pool_valid(a.g, pool) || !pool.interior(a.g.out_height, a.g.out_width)) {
      throw_range("poolOutHeight x poolOutWidth",
                  "the unpadded pool output of the " + std::to_string(a.g.out_height) + " x " +
                      std::to_string(a.g.out_width) + " convolution output",
                  std::to_string(pool.out_h) + " x " + std::to_string(pool.out_w));
    }
    if (a.g.out_height * a.g.out_width > static_cast<size_t>(kMaxDim)) {
      throw_range("outHeight * outWidth", "at most 2147483647 for int32 indices",
                  std::to_string(a.g.out_height * a.g.out_width));
    }
    const size_t pooled = checked_mul(checked_mul(a.batch, a.g.out_channels, "pooled size"), pool.out_h * pool.out_w, "pooled size");
    const ForwardOperands in(o, a);
    const View<float> output = get_f32_exact(o, "output", pooled);
    const View<int32_t> indices = get_i32_exact_opt(o, "indices", pooled);
    in.expect_apart_from({region(output, "output"), region(indices, "indices")});
    const kiln::Conv2dGeometry g = a.g;
    const size_t batch = a.batch;
    JobMemory mem(async);
    const ForwardOperands::Pointers p = in.read(mem);
    float* y = mem.write(output);
    int32_t* winners = mem.write(indices);
    return run_job(env, std::move(mem), [=] { kiln::conv2d_max_pool_forward(g, batch, p.x, p.w, p.b, pool, y, winners); });
  });
}

}  // namespace

void register_conv(Napi::Env env, Napi::Object exports) {
  exports.Set("conv2dForward", Napi::Function::New(env, Conv2dForward, "conv2dForward"));
  exports.Set("conv2dBackward", Napi::Function::New(env, Conv2dBackward, "conv2dBackward"));
  exports.Set("conv2dMaxPoolForward", Napi::Function::New(env, Conv2dMaxPoolForward, "conv2dMaxPoolForward"));
}

}  // namespace kiln_addon
