#include "elementwise/chunks.h"
#include "kiln/elementwise.h"

namespace kiln {

void relu(const float* input, float* output, size_t length, size_t max_threads) {
  for_each_piece(length, kStreamPiece, max_threads, [&](size_t lo, size_t hi) {
    // `x > 0 ? x : 0` would turn NaN into 0; `x < 0 ? 0 : x` keeps it, and still vectorises.
    for (size_t i = lo; i < hi; ++i) output[i] = input[i] < 0.0f ? 0.0f : input[i];
  });
}

void relu_backward(const float* output, const float* grad_output, float* grad_input, size_t length,
                   size_t max_threads) {
  for_each_piece(length, kStreamPiece, max_threads, [&](size_t lo, size_t hi) {
    // Both operands loaded unconditionally so the select vectorises (grad_input may alias).
    for (size_t i = lo; i < hi; ++i) {
      const float g = grad_output[i];
      const float o = output[i];
      grad_input[i] = o > 0.0f ? g : 0.0f;
    }
  });
}

}  // namespace kiln
