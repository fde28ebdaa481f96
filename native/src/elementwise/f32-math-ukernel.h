// The fp32 math family of the plan's element-wise ops: unary activations / math functions over a
// flat array, and row reductions (one result per contiguous row). The dispatch table holds one
// set per ISA (common/dispatch.h); the scalar ones (f32-math-reference.cc) are the fallback and
// the oracle the ISA kernels are tested against. An ISA kernel may hand a kind it does not
// vectorise (the Prod and LogSumExp rows) to the scalar one.
#pragma once
#include <cstddef>

namespace kiln {

enum class F32UnaryKind {
  kRelu, kLeakyRelu, kClip, kSigmoid, kHardSigmoid, kHardSwish, kTanh,
  kAbs, kNeg, kSqrt, kExp, kLog, kReciprocal, kFloor, kCeil, kErf,
  kSoftplus, kSoftsign, kElu, kSelu, kCelu, kMish, kGelu, kGeluTanh, kThresholdedRelu,
  kRound,  // ONNX Round: to nearest, halves to even
  kSilu,   // x * Sigmoid(x), the bits of the Sigmoid then Mul it replaces
};

// alpha: LeakyRelu, HardSigmoid, Elu, Selu, Celu, ThresholdedRelu; beta: HardSigmoid;
// gamma: Selu; lo / hi: Clip.
struct F32UnaryParams {
  F32UnaryKind kind = F32UnaryKind::kRelu;
  float alpha = 0, beta = 0, gamma = 0, lo = 0, hi = 0;
};

// y[i] = f(x[i]) for i < n; y may be x.
using F32UnaryFn = void (*)(const F32UnaryParams& p, const float* x, float* y, size_t n);

// What a row reduction combines (post-processing such as Mean's division, L2's square root and
// LogSumExp's log belongs to the caller, except for kLogSumExp which returns the finished value).
enum class F32ReduceKind { kSum, kSumSquare, kSumAbs, kMax, kMin, kProd, kLogSumExp };

// out[r] = combine of x[r * cols .. r * cols + cols) for r < rows (cols >= 1). Max / Min return
// NaN for a row holding a NaN.
using F32ReduceRowsFn = void (*)(F32ReduceKind kind, const float* x, size_t rows, size_t cols, float* out);

struct F32MathKernels {
  F32UnaryFn unary = nullptr;            // never null
  F32ReduceRowsFn reduce_rows = nullptr;  // never null
};

void f32_unary_scalar(const F32UnaryParams& p, const float* x, float* y, size_t n);
void f32_unary_avx2(const F32UnaryParams& p, const float* x, float* y, size_t n);
void f32_unary_avx512(const F32UnaryParams& p, const float* x, float* y, size_t n);

void f32_reduce_rows_scalar(F32ReduceKind kind, const float* x, size_t rows, size_t cols, float* out);
void f32_reduce_rows_avx2(F32ReduceKind kind, const float* x, size_t rows, size_t cols, float* out);
void f32_reduce_rows_avx512(F32ReduceKind kind, const float* x, size_t rows, size_t cols, float* out);

}  // namespace kiln
