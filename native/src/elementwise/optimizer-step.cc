// Optimizer updates, elementwise and in place. Hyper-parameters arrive in double and are
// rounded to float once, so the loops stay in float and vectorise.
#include <cmath>

#include "elementwise/chunks.h"
#include "kiln/elementwise.h"

namespace kiln {

void sgd_step(float* param, const float* grad, float* velocity, size_t length, const SgdOptions& o,
              size_t max_threads) {
  const float lr = static_cast<float>(o.lr);
  const float momentum = static_cast<float>(o.momentum);
  const float keep = static_cast<float>(1.0 - o.dampening);
  const float wd = static_cast<float>(o.weight_decay);
  const bool nesterov = o.nesterov;
  for_each_piece(length, kStreamPiece, max_threads, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) {
      const float g = grad[i] + wd * param[i];
      const float v = momentum * velocity[i] + keep * g;
      velocity[i] = v;
      param[i] -= lr * (nesterov ? g + momentum * v : v);
    }
  });
}

void adam_step(float* param, const float* grad, float* m, float* v, size_t length, const AdamOptions& o,
               size_t max_threads) {
  const double t = static_cast<double>(o.step);
  const float beta1 = static_cast<float>(o.beta1);
  const float beta2 = static_cast<float>(o.beta2);
  const float one_minus_beta1 = static_cast<float>(1.0 - o.beta1);
  const float one_minus_beta2 = static_cast<float>(1.0 - o.beta2);
  // param -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps), PyTorch's arrangement of the same formula.
  const double bc1 = 1.0 - std::pow(o.beta1, t);
  const double bc2 = 1.0 - std::pow(o.beta2, t);
  const float step_size = static_cast<float>(o.lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  const float eps = static_cast<float>(o.eps);
  const float wd = o.decoupled ? 0.0f : static_cast<float>(o.weight_decay);
  const float shrink = o.decoupled ? static_cast<float>(1.0 - o.lr * o.weight_decay) : 1.0f;
  for_each_piece(length, kStreamPiece, max_threads, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) {
      const float p = param[i] * shrink;
      const float g = grad[i] + wd * param[i];
      const float mi = beta1 * m[i] + one_minus_beta1 * g;
      const float vi = beta2 * v[i] + one_minus_beta2 * g * g;
      m[i] = mi;
      v[i] = vi;
      param[i] = p - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
    }
  });
}

}  // namespace kiln
