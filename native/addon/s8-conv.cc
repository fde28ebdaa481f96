// int8 convolution and the int8 layout kernels (kiln/s8-conv.h): s8conv2d (a plan built per
// call), quantizeU8NchwToNhwc, dequantizeU8NhwcToNchw, maxPoolU8Nhwc. Every array must hold
// exactly the elements its geometry implies (counts overflow-checked), outputs may not overlap
// inputs, and scales must be finite and > 0, before any pointer reaches a kernel.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "job.h"
#include "kernel-args.h"
#include "kiln/s8-conv.h"
#include "registry.h"

namespace kiln_addon {
namespace {

template <typename T>
View<T> exact_length(View<T> v, const char* name, size_t length, const char* type_name) {
  if (v.length != length) {
    throw_range(name, std::string("a ") + type_name + " of " + std::to_string(length) + " elements", describe(v.value));
  }
  return v;
}

View<uint8_t> get_u8_exact(const Napi::Object& o, const char* name, size_t length) {
  return exact_length(get_u8(o, name, 0), name, length, "Uint8Array");
}

float positive_scale(const Napi::Object& o, const char* name) {
  return static_cast<float>(get_number_in(o, name, 0.0, 3.4e38, /*open_lo=*/true));
}

void check_multiplier(double value, const char* what) {
  if (!std::isfinite(value) || value <= 0.0) throw_range(what, "a finite positive multiplier", std::to_string(value));
}

Napi::Value S8Conv2d(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    const Conv2dArgs a = read_conv2d_args(o);
    const View<uint8_t> input = get_u8_exact(o, "input", a.input);
    const View<int8_t> weight = exact_length(get_i8(o, "weight", 0), "weight", a.weight, "Int8Array");
    const View<int32_t> bias = get_i32_exact_opt(o, "bias", a.g.out_channels);
    const View<float> w_scale = get_f32(o, "wScale", 1);
    if (w_scale.length != 1 && w_scale.length != a.g.out_channels) {
      throw_range("wScale", "a Float32Array of 1 or " + std::to_string(a.g.out_channels) + " elements", describe(w_scale.value));
    }
    for (size_t i = 0; i < w_scale.length; ++i) {
      if (!std::isfinite(w_scale.data[i]) || !(w_scale.data[i] > 0.0f)) {
        throw_range("wScale[" + std::to_string(i) + "]", "a finite number > 0", std::to_string(w_scale.data[i]));
      }
    }
    kiln::S8ConvQuant q;
    q.x_scale = positive_scale(o, "xScale");
    q.x_zero_point = static_cast<uint8_t>(get_int(o, "xZeroPoint", 0, 255));
    q.w_scale = w_scale.data;
    q.w_scale_count = w_scale.length;

    const Napi::Value out_value = o.Get("output");
    const bool float_output = out_value.IsTypedArray() && out_value.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array;
    View<float> out_f32;
    View<uint8_t> out_u8;
    if (float_output) {
      out_f32 = get_f32_exact(o, "output", a.output);
    } else {
      out_u8 = get_u8_exact(o, "output", a.output);
      q.y_scale = positive_scale(o, "yScale");
      q.y_zero_point = static_cast<uint8_t>(get_int(o, "yZeroPoint", 0, 255));
      q.y_min = static_cast<uint8_t>(get_int_or(o, "yMin", 0, 255, 0));
      q.y_max = static_cast<uint8_t>(get_int_or(o, "yMax", 0, 255, 255));
      if (q.y_min > q.y_max) throw_range("yMax", "an integer >= yMin (" + std::to_string(q.y_min) + ")", std::to_string(q.y_max));
    }
    // The kernels need finite multipliers (the plan's own, float32 steps).
    for (size_t i = 0; i < w_scale.length; ++i) check_multiplier(q.multiplier(i, float_output), "xScale * wScale / yScale");
    const Region out_region = float_output ? region(out_f32, "output") : region(out_u8, "output");
    expect_apart({out_region}, {region(input, "input"), region(weight, "weight"), region(bias, "bias"), region(w_scale, "wScale")});

    const kiln::Conv2dGeometry g = a.g;
    const size_t batch = a.batch;
    // The plan copies weights, bias and scales when it is built (on the runner for async calls).
    JobMemory mem(async);
    const uint8_t* in = mem.read(input);
    const int8_t* w = mem.read(weight);
    const int32_t* b = mem.read(bias);
    q.w_scale = mem.read(w_scale);
    void* out = float_output ? static_cast<void*>(mem.write(out_f32)) : static_cast<void*>(mem.write(out_u8));
    return run_job(env, std::move(mem), [=] {
      const kiln::S8Conv2dPlan plan(g, w, b, q, float_output);
      std::vector<uint8_t> scratch(plan.scratch_bytes(batch, 0));
      plan.run(in, out, batch, scratch.data(), 0);
    });
  });
}

struct LayoutArgs {
  size_t batch = 0, channels = 0, plane = 0, count = 0;
  float scale = 1;
  uint8_t zero_point = 0;
};

LayoutArgs read_layout_args(const Napi::Object& o) {
  LayoutArgs a;
  a.batch = static_cast<size_t>(get_int(o, "batch", 0, kMaxDim));
  a.channels = static_cast<size_t>(get_int(o, "channels", 1, kMaxDim));
  a.plane = static_cast<size_t>(get_int(o, "plane", 1, kMaxDim));
  a.count = checked_mul(checked_mul(a.batch, a.channels, "batch * channels"), a.plane, "batch * channels * plane");
  a.scale = positive_scale(o, "scale");
  a.zero_point = static_cast<uint8_t>(get_int(o, "zeroPoint", 0, 255));
  return a;
}

Napi::Value QuantizeU8NchwToNhwc(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    const LayoutArgs a = read_layout_args(o);
    const View<float> input = get_f32_exact(o, "input", a.count);
    const View<uint8_t> output = get_u8_exact(o, "output", a.count);
    expect_apart({region(output, "output")}, {region(input, "input")});
    JobMemory mem(async);
    const float* in = mem.read(input);
    uint8_t* out = mem.write(output);
    return run_job(env, std::move(mem),
                   [=] { kiln::quantize_u8_nchw_to_nhwc(in, out, a.batch, a.channels, a.plane, a.scale, a.zero_point); });
  });
}

Napi::Value DequantizeU8NhwcToNchw(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    const LayoutArgs a = read_layout_args(o);
    const View<uint8_t> input = get_u8_exact(o, "input", a.count);
    const View<float> output = get_f32_exact(o, "output", a.count);
    expect_apart({region(output, "output")}, {region(input, "input")});
    JobMemory mem(async);
    const uint8_t* in = mem.read(input);
    float* out = mem.write(output);
    return run_job(env, std::move(mem),
                   [=] { kiln::dequantize_u8_nhwc_to_nchw(in, out, a.batch, a.channels, a.plane, a.scale, a.zero_point); });
  });
}

Napi::Value MaxPoolU8Nhwc(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    const Pool2dArgs a = read_pool2d_args(o);
    const View<uint8_t> input = get_u8_exact(o, "input", a.input);
    const View<uint8_t> output = get_u8_exact(o, "output", a.output);
    expect_apart({region(output, "output")}, {region(input, "input")});
    const kiln::Pool2dGeometry g = a.g;
    const size_t batch = a.batch, channels = a.channels;
    JobMemory mem(async);
    const uint8_t* in = mem.read(input);
    uint8_t* out = mem.write(output);
    return run_job(env, std::move(mem), [=] { kiln::max_pool2d_u8_nhwc(g, batch, channels, in, out); });
  });
}

}  // namespace

void register_s8conv(Napi::Env env, Napi::Object exports) {
  exports.Set("s8conv2d", Napi::Function::New(env, S8Conv2d, "s8conv2d"));
  exports.Set("quantizeU8NchwToNhwc", Napi::Function::New(env, QuantizeU8NchwToNhwc, "quantizeU8NchwToNhwc"));
  exports.Set("dequantizeU8NhwcToNchw", Napi::Function::New(env, DequantizeU8NhwcToNchw, "dequantizeU8NhwcToNchw"));
  exports.Set("maxPoolU8Nhwc", Napi::Function::New(env, MaxPoolU8Nhwc, "maxPoolU8Nhwc"));
}

}  // namespace kiln_addon
