// Numpy broadcasting of two operands over [batch] + per-image shape, for Add/Sub/Mul/Div/Sum,
// Max/Min/Pow and PRelu.
// An operand is a batched value (one per-image block per image) or a constant (the same block for
// every image). Dimensions are collapsed once at build time, so a residual add runs as one flat
// loop and a per-channel bias as rows of a scalar.
#pragma once
#include <cstddef>
#include <vector>

#include "kiln/plan.h"

namespace kiln {
namespace runtime {

// Max / Min propagate NaN; PRelu is a < 0 ? a * b : a (b the slope); AddRelu is a residual Add and
// the ReLU after it in one pass, the two steps' bits (NaN passes, as through a ReLU step).
enum class BinaryOp { kAdd, kSub, kMul, kDiv, kMax, kMin, kPow, kPRelu, kAddRelu };

struct BroadcastOperand {
  PlanShape shape;   // per-image, same rank as the output, 1 where it broadcasts
  bool batched = true;
};

// The broadcast result of per-image shapes of equal rank; false when they are incompatible.
bool broadcast_shapes(const PlanShape& a, const PlanShape& b, PlanShape* out);

class Broadcast {
 public:
  Broadcast() = default;
  Broadcast(const BroadcastOperand& a, const BroadcastOperand& b, const PlanShape& out);
  // y[n, i] = a[n, i'] op b[n, i''] for every image n and output index i. y may be a or b when
  // that operand has the output's shape (each element is read before it is written).
  void run(BinaryOp op, const float* a, const float* b, float* y, size_t batch,
           size_t max_threads) const;

 private:
  std::vector<size_t> dims_;           // collapsed per-image dims
  std::vector<size_t> a_stride_, b_stride_;
  size_t a_image_ = 0, b_image_ = 0;   // floats per image (0 for constants)
  size_t out_image_ = 0;
};

}  // namespace runtime
}  // namespace kiln
