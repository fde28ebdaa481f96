// Batch normalisation over NCHW, one channel per task. Statistics are summed in a fixed order
// (double lanes: see reduce.h), two passes (mean, then squared
// deviations) so large means do not cancel.
#include <cmath>

#include "elementwise/reduce.h"
#include "kiln/elementwise.h"
#include "kiln/thread-pool.h"

namespace kiln {

void batch_norm2d_forward(const BatchNormShape& s, const float* input, float* output, const float* gamma,
                          const float* beta, float* running_mean, float* running_var, float* save_mean,
                          float* save_inv_std, bool training, double momentum, double eps,
                          size_t max_threads) {
  const size_t count = s.batch * s.spatial;
  const size_t stride = s.channels * s.spatial;
  parallel_for(
      s.channels,
      [&](size_t c) {
        double mean, var;
        if (training) {
          double sum = 0;
          for (size_t n = 0; n < s.batch; ++n) sum += sum_of(input + n * stride + c * s.spatial, s.spatial);
          mean = count != 0 ? sum / static_cast<double>(count) : 0.0;
          double sq = 0;
          for (size_t n = 0; n < s.batch; ++n) {
            const float* x = input + n * stride + c * s.spatial;
            sq += lane_sum(s.spatial, [x, mean](size_t j) {
              const double d = static_cast<double>(x[j]) - mean;
              return d * d;
            });
          }
          var = count != 0 ? sq / static_cast<double>(count) : 0.0;
          const double unbiased = count > 1 ? sq / static_cast<double>(count - 1) : var;
          running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mean);
          running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * unbiased);
        } else {
          mean = running_mean[c];
          var = running_var[c];
        }
        const double inv_std = 1.0 / std::sqrt(var + eps);
        save_mean[c] = static_cast<float>(mean);
        save_inv_std[c] = static_cast<float>(inv_std);
        // y = (x - mean) * scale + beta: subtracting first keeps the digits that x * scale + shift
        // would cancel away when |mean| is large against the spread.
        const float m = static_cast<float>(mean);
        const float scale = static_cast<float>(gamma[c] * inv_std);
        const float b = beta[c];
        for (size_t n = 0; n < s.batch; ++n) {
          const float* x = input + n * stride + c * s.spatial;
          float* y = output + n * stride + c * s.spatial;
          for (size_t j = 0; j < s.spatial; ++j) y[j] = (x[j] - m) * scale + b;
        }
      },
      max_threads);
}

void batch_norm2d_backward(const BatchNormShape& s, const float* input, const float* grad_output,
                           const float* gamma, const float* save_mean, const float* save_inv_std,
                           float* grad_input, float* grad_gamma, float* grad_beta, size_t max_threads) {
  const size_t count = s.batch * s.spatial;
  const size_t stride = s.channels * s.spatial;
  parallel_for(
      s.channels,
      [&](size_t c) {
        const double mean = save_mean[c];
        const float mean_f = save_mean[c];
        const double inv_std = save_inv_std[c];
        // sum(dy) and sum(dy * (x - mean)) in one pass, each over 8 double lanes (fixed order).
        double lanes_dy[8] = {}, lanes_dyx[8] = {};
        double sum_dy = 0, sum_dy_centered = 0;
        for (size_t n = 0; n < s.batch; ++n) {
          const float* x = input + n * stride + c * s.spatial;
          const float* dy = grad_output + n * stride + c * s.spatial;
          size_t j = 0;
          for (; j + 8 <= s.spatial; j += 8) {
            for (size_t l = 0; l < 8; ++l) {
              const double d = dy[j + l];
              lanes_dy[l] += d;
              lanes_dyx[l] += d * (static_cast<double>(x[j + l]) - mean);
            }
          }
          for (; j < s.spatial; ++j) {
            sum_dy += dy[j];
            sum_dy_centered += static_cast<double>(dy[j]) * (static_cast<double>(x[j]) - mean);
          }
        }
        for (size_t l = 0; l < 8; ++l) {
          sum_dy += lanes_dy[l];
          sum_dy_centered += lanes_dyx[l];
        }
        const double sum_dy_xhat = sum_dy_centered * inv_std;
        grad_beta[c] = static_cast<float>(sum_dy);
        grad_gamma[c] = static_cast<float>(sum_dy_xhat);
        if (count == 0) return;
        // dx = k * (dy - mean_dy - xhat * mean_dy_xhat), k = gamma * inv_std.
        const double k = gamma[c] * inv_std;
        const double mean_dy = sum_dy / static_cast<double>(count);
        const double mean_dy_xhat = sum_dy_xhat / static_cast<double>(count);
        // dx = a * dy + b * (x - mean) + c0, the per-channel constants folded in double.
        const float a = static_cast<float>(k);
        const float b = static_cast<float>(-k * inv_std * mean_dy_xhat);
        const float c0 = static_cast<float>(-k * mean_dy);
        for (size_t n = 0; n < s.batch; ++n) {
          const float* x = input + n * stride + c * s.spatial;
          const float* dy = grad_output + n * stride + c * s.spatial;
          float* dx = grad_input + n * stride + c * s.spatial;
          for (size_t j = 0; j < s.spatial; ++j) dx[j] = a * dy[j] + b * (x[j] - mean_f) + c0;
        }
      },
      max_threads);
}

}  // namespace kiln
