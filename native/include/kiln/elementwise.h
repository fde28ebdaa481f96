// Elementwise and row-wise kernels of training: activations, softmax and cross-entropy, optimizer
// steps, batch normalisation. Nothing here knows about Node. Work is split into fixed-size chunks
// (never by thread count), so results do not depend on the number of threads.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln {

// output = max(input, 0). input and output may be the same array. NaN stays NaN.
void relu(const float* input, float* output, size_t length, size_t max_threads = 0);

// grad_input = output > 0 ? grad_output : 0, where `output` is the ReLU's output.
void relu_backward(const float* output, const float* grad_output, float* grad_input, size_t length,
                   size_t max_threads = 0);

// Row-wise softmax over `cols` (log-softmax when `log`), stable: the row max is subtracted first.
void softmax(const float* input, float* output, size_t rows, size_t cols, bool log,
             size_t max_threads = 0);

// losses[r] = logsumexp(logits[r]) - logits[r][labels[r]]. When grad_logits is not null:
// grad_logits[r] = (softmax(logits[r]) - onehot(labels[r])) * grad_scale.
// Throws std::out_of_range (before writing anything) if a label is outside [0, cols).
void softmax_cross_entropy(const float* logits, const int32_t* labels, size_t rows, size_t cols,
                           float* losses, float* grad_logits, float grad_scale,
                           size_t max_threads = 0);

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

// In place, per element, with g' = grad + weight_decay * param:
//   velocity = momentum * velocity + (1 - dampening) * g'
//   param   -= lr * (nesterov ? g' + momentum * velocity : velocity)
// The velocity starts at zero (the caller allocates it zeroed); unlike PyTorch it is not seeded
// with the first gradient, so with dampening > 0 the first steps are smaller than PyTorch's.
void sgd_step(float* param, const float* grad, float* velocity, size_t length,
              const SgdOptions& options, size_t max_threads = 0);

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool decoupled = false;  // AdamW: param *= 1 - lr * weight_decay, instead of adding to g
  size_t step = 1;         // counts from 1; used for bias correction
};

// In place (PyTorch Adam / AdamW), per element:
//   g' = grad (+ weight_decay * param unless decoupled)
//   m = beta1 * m + (1 - beta1) * g';  v = beta2 * v + (1 - beta2) * g'^2
//   param -= lr * (m / (1 - beta1^step)) / (sqrt(v / (1 - beta2^step)) + eps)
void adam_step(float* param, const float* grad, float* m, float* v, size_t length,
               const AdamOptions& options, size_t max_threads = 0);

// NCHW batch normalisation over batch x channels x spatial (spatial = H*W).
struct BatchNormShape {
  size_t batch = 0, channels = 0, spatial = 0;
};

// Training: per channel mean and biased variance over batch*spatial normalise the input;
// running_mean/var move by `momentum` towards the batch mean and the unbiased variance (PyTorch).
// Inference: the running statistics normalise, and are left unchanged.
// Both modes write save_mean and save_inv_std = 1/sqrt(var + eps) of the statistics used.
// Training needs batch*spatial >= 2 (an unbiased variance of one value is undefined).
void batch_norm2d_forward(const BatchNormShape& s, const float* input, float* output,
                          const float* gamma, const float* beta, float* running_mean,
                          float* running_var, float* save_mean, float* save_inv_std, bool training,
                          double momentum, double eps, size_t max_threads = 0);

// Backward of training-mode batch norm, from the statistics forward saved:
//   grad_beta = sum(dy), grad_gamma = sum(dy * xhat),
//   grad_input = gamma * inv_std / n * (n * dy - grad_beta - xhat * grad_gamma), n = batch*spatial.
void batch_norm2d_backward(const BatchNormShape& s, const float* input, const float* grad_output,
                           const float* gamma, const float* save_mean, const float* save_inv_std,
                           float* grad_input, float* grad_gamma, float* grad_beta,
                           size_t max_threads = 0);

}  // namespace kiln
