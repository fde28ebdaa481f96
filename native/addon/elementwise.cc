// Elementwise, softmax, optimizer and batch-norm glue: argument checks, then the kiln kernel
// inline or on a runner thread (job.h).
#include <napi.h>

#include <limits>
#include <string>

#include "args.h"
#include "job.h"
#include "kernel-args.h"
#include "kiln/elementwise.h"
#include "registry.h"

namespace kiln_addon {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

size_t count(const Napi::Object& o, const char* name, int64_t lo) {
  return static_cast<size_t>(get_int(o, name, lo, kMaxDim));
}

// A length may exceed kMaxDim (a flat parameter vector); bounded by what a typed array can hold.
size_t length_of(const Napi::Object& o) {
  return static_cast<size_t>(get_int(o, "length", 0, int64_t{1} << 50));
}

Napi::Value Relu(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    const size_t n = length_of(o);
    const View<float> input = get_f32_exact(o, "input", n);
    const View<float> output = get_f32_exact(o, "output", n);
    expect_same_or_apart(region(output, "output"), region(input, "input"));
    JobMemory mem(async);
    const float* in = mem.read(input);
    float* out = mem.write(output);
    return run_job(env, std::move(mem), [=] { kiln::relu(in, out, n); });
  });
}

Napi::Value ReluBackward(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    const size_t n = length_of(o);
    const View<float> output = get_f32_exact(o, "output", n);
    const View<float> grad_output = get_f32_exact(o, "gradOutput", n);
    const View<float> grad_input = get_f32_exact(o, "gradInput", n);
    expect_same_or_apart(region(grad_input, "gradInput"), region(grad_output, "gradOutput"));
    expect_same_or_apart(region(grad_input, "gradInput"), region(output, "output"));
    JobMemory mem(async);
    const float* y = mem.read(output);
    const float* dy = mem.read(grad_output);
    float* dx = mem.write(grad_input);
    return run_job(env, std::move(mem), [=] { kiln::relu_backward(y, dy, dx, n); });
  });
}

Napi::Value Softmax(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    const size_t rows = count(o, "rows", 0);
    const size_t cols = count(o, "cols", 1);
    const size_t n = checked_mul(rows, cols, "rows * cols");
    const View<float> input = get_f32_exact(o, "input", n);
    const View<float> output = get_f32_exact(o, "output", n);
    const bool log = get_bool(o, "log");
    expect_same_or_apart(region(output, "output"), region(input, "input"));
    JobMemory mem(async);
    const float* in = mem.read(input);
    float* out = mem.write(output);
    return run_job(env, std::move(mem), [=] { kiln::softmax(in, out, rows, cols, log); });
  });
}

Napi::Value SoftmaxCrossEntropy(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    const size_t rows = count(o, "rows", 0);
    const size_t cols = count(o, "cols", 1);
    const size_t n = checked_mul(rows, cols, "rows * cols");
    const View<float> logits = get_f32_exact(o, "logits", n);
    const View<int32_t> labels = get_i32_exact(o, "labels", rows);
    const View<float> losses = get_f32_exact(o, "losses", rows);
    const View<float> grad_logits = get_f32_exact_opt(o, "gradLogits", n);
    const float grad_scale = static_cast<float>(get_number(o, "gradScale"));
    for (size_t r = 0; r < rows; ++r) {
      if (labels.data[r] < 0 || static_cast<size_t>(labels.data[r]) >= cols) {
        throw_range("labels[" + std::to_string(r) + "]", "an integer in [0, " + std::to_string(cols - 1) + "]",
                    std::to_string(labels.data[r]));
      }
    }
    expect_apart({region(losses, "losses")}, {region(logits, "logits"), region(labels, "labels"), region(grad_logits, "gradLogits")});
    expect_apart({region(grad_logits, "gradLogits")}, {region(labels, "labels")});
    expect_same_or_apart(region(grad_logits, "gradLogits"), region(logits, "logits"));
    // The kernel checks the labels again (a runner thread reads the job's copy, but an inline call and
    // the kernel's other callers trust nothing).
    JobMemory mem(async);
    const float* x = mem.read(logits);
    const int32_t* y = mem.read(labels);
    float* loss = mem.write(losses);
    float* dx = mem.write(grad_logits);
    return run_job(env, std::move(mem), [=] { kiln::softmax_cross_entropy(x, y, rows, cols, loss, dx, grad_scale); });
  });
}

// What every optimizer step reads first: the length, then `param` and `grad` of that many elements.
struct StepArrays {
  size_t n;
  View<float> param, grad;
};
StepArrays read_step_arrays(const Napi::Object& o) {
  const size_t n = length_of(o);
  return {n, get_f32_exact(o, "param", n), get_f32_exact(o, "grad", n)};  // braces: read in order
}

Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    const StepArrays step = read_step_arrays(o);
    const size_t n = step.n;
    const View<float> velocity = get_f32_exact(o, "velocity", n);
    kiln::SgdOptions opt;
    opt.lr = get_number_in(o, "lr", 0, kInf);
    opt.momentum = get_number_in(o, "momentum", 0, 1);
    opt.dampening = get_number_in(o, "dampening", 0, 1);
    opt.weight_decay = get_number_in(o, "weightDecay", 0, kInf);
    opt.nesterov = get_bool(o, "nesterov");
    expect_apart({region(step.param, "param"), region(velocity, "velocity")}, {region(step.grad, "grad")});
    JobMemory mem(async);
    float* p = mem.update(step.param);
    const float* g = mem.read(step.grad);
    float* vel = mem.update(velocity);
    return run_job(env, std::move(mem), [=] { kiln::sgd_step(p, g, vel, n, opt); });
  });
}

Napi::Value AdamStep(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    const StepArrays step = read_step_arrays(o);
    const size_t n = step.n;
    const View<float> m = get_f32_exact(o, "m", n);
    const View<float> v = get_f32_exact(o, "v", n);
    kiln::AdamOptions opt;
    opt.lr = get_number_in(o, "lr", 0, kInf);
    opt.beta1 = get_number_in(o, "beta1", 0, 1);
    opt.beta2 = get_number_in(o, "beta2", 0, 1);
    opt.eps = get_number_in(o, "eps", 0, kInf, /*open_lo=*/true);
    opt.weight_decay = get_number_in(o, "weightDecay", 0, kInf);
    opt.decoupled = get_bool(o, "decoupled");
    opt.step = static_cast<size_t>(get_int(o, "step", 1, int64_t{1} << 53));
    // beta = 1 would make the bias correction 1 - beta^step zero.
    if (opt.beta1 >= 1) throw_range("beta1", "a number in [0, 1)", std::to_string(opt.beta1));
    if (opt.beta2 >= 1) throw_range("beta2", "a number in [0, 1)", std::to_string(opt.beta2));
    expect_apart({region(step.param, "param"), region(m, "m"), region(v, "v")}, {region(step.grad, "grad")});
    JobMemory mem(async);
    float* p = mem.update(step.param);
    const float* g = mem.read(step.grad);
    float* m1 = mem.update(m);
    float* m2 = mem.update(v);
    return run_job(env, std::move(mem), [=] { kiln::adam_step(p, g, m1, m2, n, opt); });
  });
}

kiln::BatchNormShape read_batch_norm_shape(const Napi::Object& o, size_t* total) {
  kiln::BatchNormShape s;
  s.batch = count(o, "batch", 0);
  s.channels = count(o, "channels", 1);
  s.spatial = count(o, "spatial", 1);
  *total = checked_mul(checked_mul(s.batch, s.channels, "input"), s.spatial, "input");
  return s;
}

Napi::Value BatchNorm2dForward(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    size_t total = 0;
    const kiln::BatchNormShape s = read_batch_norm_shape(o, &total);
    const View<float> input = get_f32_exact(o, "input", total);
    const View<float> output = get_f32_exact(o, "output", total);
    const View<float> gamma = get_f32_exact(o, "gamma", s.channels);
    const View<float> beta = get_f32_exact(o, "beta", s.channels);
    const View<float> running_mean = get_f32_exact(o, "runningMean", s.channels);
    const View<float> running_var = get_f32_exact(o, "runningVar", s.channels);
    const View<float> save_mean = get_f32_exact(o, "saveMean", s.channels);
    const View<float> save_inv_std = get_f32_exact(o, "saveInvStd", s.channels);
    const bool training = get_bool(o, "training");
    const double momentum = get_number_in(o, "momentum", 0, 1);
    const double eps = get_number_in(o, "eps", 0, kInf, /*open_lo=*/true);
    if (training && s.batch * s.spatial < 2) {
      throw_range("batch", "at least 2 values per channel (batch * spatial) in training",
                  std::to_string(s.batch * s.spatial) + " value(s)");
    }
    expect_same_or_apart(region(output, "output"), region(input, "input"));
    expect_apart({region(output, "output"), region(running_mean, "runningMean"), region(running_var, "runningVar"),
                  region(save_mean, "saveMean"), region(save_inv_std, "saveInvStd")},
                 {region(gamma, "gamma"), region(beta, "beta")});
    expect_apart({region(running_mean, "runningMean"), region(running_var, "runningVar"), region(save_mean, "saveMean"),
                  region(save_inv_std, "saveInvStd")},
                 {region(input, "input")});
    // Per-channel arrays are updated, not overwritten: inference leaves the saved statistics as they were.
    JobMemory mem(async);
    const float* x = mem.read(input);
    float* y = mem.write(output);
    const float* g = mem.read(gamma);
    const float* b = mem.read(beta);
    float* mean = mem.update(running_mean);
    float* var = mem.update(running_var);
    float* saved_mean = mem.update(save_mean);
    float* saved_inv_std = mem.update(save_inv_std);
    return run_job(env, std::move(mem), [=] {
      kiln::batch_norm2d_forward(s, x, y, g, b, mean, var, saved_mean, saved_inv_std, training, momentum, eps);
    });
  });
}

Napi::Value BatchNorm2dBackward(const Napi::CallbackInfo& info) {
  return kernel_call(info, [&](Napi::Env env, const Napi::Object& o, bool async) -> Napi::Value {
    size_t total = 0;
    const kiln::BatchNormShape s = read_batch_norm_shape(o, &total);
    const View<float> input = get_f32_exact(o, "input", total);
    const View<float> grad_output = get_f32_exact(o, "gradOutput", total);
    const View<float> gamma = get_f32_exact(o, "gamma", s.channels);
    const View<float> save_mean = get_f32_exact(o, "saveMean", s.channels);
    const View<float> save_inv_std = get_f32_exact(o, "saveInvStd", s.channels);
    const View<float> grad_input = get_f32_exact(o, "gradInput", total);
    const View<float> grad_gamma = get_f32_exact(o, "gradGamma", s.channels);
    const View<float> grad_beta = get_f32_exact(o, "gradBeta", s.channels);
    // grad_input is written after its channel's sums are done, so it may replace gradOutput; it
    // must not touch input, which is read again while writing.
    expect_same_or_apart(region(grad_input, "gradInput"), region(grad_output, "gradOutput"));
    expect_apart({region(grad_input, "gradInput"), region(grad_gamma, "gradGamma"), region(grad_beta, "gradBeta")},
                 {region(input, "input"), region(gamma, "gamma"), region(save_mean, "saveMean"),
                  region(save_inv_std, "saveInvStd")});
    expect_apart({region(grad_gamma, "gradGamma"), region(grad_beta, "gradBeta")}, {region(grad_output, "gradOutput")});
    JobMemory mem(async);
    const float* x = mem.read(input);
    const float* dy = mem.read(grad_output);
    const float* g = mem.read(gamma);
    const float* mean = mem.read(save_mean);
    const float* inv_std = mem.read(save_inv_std);
    float* dx = mem.write(grad_input);
    float* dg = mem.write(grad_gamma);
    float* db = mem.write(grad_beta);
    return run_job(env, std::move(mem), [=] { kiln::batch_norm2d_backward(s, x, dy, g, mean, inv_std, dx, dg, db); });
  });
}

}  // namespace

void register_elementwise(Napi::Env env, Napi::Object exports) {
  exports.Set("relu", Napi::Function::New(env, Relu, "relu"));
  exports.Set("reluBackward", Napi::Function::New(env, ReluBackward, "reluBackward"));
  exports.Set("softmax", Napi::Function::New(env, Softmax, "softmax"));
  exports.Set("softmaxCrossEntropy", Napi::Function::New(env, SoftmaxCrossEntropy, "softmaxCrossEntropy"));
  exports.Set("sgdStep", Napi::Function::New(env, SgdStep, "sgdStep"));
  exports.Set("adamStep", Napi::Function::New(env, AdamStep, "adamStep"));
  exports.Set("batchNorm2dForward", Napi::Function::New(env, BatchNorm2dForward, "batchNorm2dForward"));
  exports.Set("batchNorm2dBackward", Napi::Function::New(env, BatchNorm2dBackward, "batchNorm2dBackward"));
}

}  // namespace kiln_addon
