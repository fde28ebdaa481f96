// Row-wise softmax, log-softmax and softmax cross-entropy. Every row subtracts its max before
// exponentiating, so large logits cannot overflow; sums run in double.
#include <cmath>
#include <stdexcept>
#include <string>

#include "elementwise/chunks.h"
#include "kiln/elementwise.h"

namespace kiln {
namespace {

size_t rows_per_piece(size_t cols) { return std::max<size_t>(1, 4096 / std::max<size_t>(cols, 1)); }

float row_max(const float* x, size_t cols) {
  float m = x[0];
  for (size_t j = 1; j < cols; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

// log(sum(exp(x - max))) with the row max; the caller adds max back.
double log_sum_exp_shifted(const float* x, size_t cols, float max) {
  double sum = 0;
  for (size_t j = 0; j < cols; ++j) sum += std::exp(static_cast<double>(x[j]) - max);
  return std::log(sum);
}

}  // namespace

void softmax(const float* input, float* output, size_t rows, size_t cols, bool log, size_t max_threads) {
  if (cols == 0) return;
  const size_t piece = rows_per_piece(cols);
  for_each_piece(rows, piece, max_threads, [&](size_t lo, size_t hi) {
    for (size_t r = lo; r < hi; ++r) {
      const float* x = input + r * cols;
      float* y = output + r * cols;
      const float max = row_max(x, cols);
      const double lse = log_sum_exp_shifted(x, cols, max);
      for (size_t j = 0; j < cols; ++j) {
        const double shifted = static_cast<double>(x[j]) - max;
        y[j] = static_cast<float>(log ? shifted - lse : std::exp(shifted - lse));
      }
    }
  });
}

void softmax_cross_entropy(const float* logits, const int32_t* labels, size_t rows, size_t cols,
                           float* losses, float* grad_logits, float grad_scale, size_t max_threads) {
  // Checked up front, so a bad label neither reads out of bounds nor leaves half-written output.
  for (size_t r = 0; r < rows; ++r) {
    if (labels[r] < 0 || static_cast<size_t>(labels[r]) >= cols) {
      throw std::out_of_range("label " + std::to_string(labels[r]) + " of row " + std::to_string(r) +
                              " is outside [0, " + std::to_string(cols) + ")");
    }
  }
  const size_t piece = rows_per_piece(cols);
  for_each_piece(rows, piece, max_threads, [&](size_t lo, size_t hi) {
    for (size_t r = lo; r < hi; ++r) {
      const float* x = logits + r * cols;
      const size_t label = static_cast<size_t>(labels[r]);
      const float max = row_max(x, cols);
      const double lse = log_sum_exp_shifted(x, cols, max);
      losses[r] = static_cast<float>(lse - (static_cast<double>(x[label]) - max));
      if (grad_logits == nullptr) continue;
      float* gr = grad_logits + r * cols;
      for (size_t j = 0; j < cols; ++j) {
        const double p = std::exp(static_cast<double>(x[j]) - max - lse);
        gr[j] = static_cast<float>((p - (j == label ? 1.0 : 0.0)) * grad_scale);
      }
    }
  });
}

}  // namespace kiln
