// The scalar kernels of the fp32 math family: the dispatch table's scalar entries (the fallback
// on any CPU) and the oracle the ISA kernels are tested against (to a few ulp: those use
// polynomial exp / erf). Plain loops the compiler vectorises at baseline flags where it can.
#include <cmath>
#include <limits>

#include "elementwise/f32-math-ukernel.h"
#include "elementwise/reduce.h"

namespace kiln {

namespace {

constexpr float kSqrtHalf = 0.70710678118654752f;
constexpr float kSqrt2OverPi = 0.79788456080286536f;

inline float softplus(float v) {
  // log(1 + e^v) without overflow: v + log1p(e^-v) for positive v.
  return v > 0.0f ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v));
}

}  // namespace

void f32_unary_scalar(const F32UnaryParams& p, const float* x, float* y, size_t n) {
  switch (p.kind) {
    case F32UnaryKind::kRelu:
      for (size_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
      break;
    case F32UnaryKind::kLeakyRelu:
      for (size_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? x[i] * p.alpha : x[i];
      break;
    case F32UnaryKind::kClip:
      for (size_t i = 0; i < n; ++i) y[i] = x[i] < p.lo ? p.lo : (x[i] > p.hi ? p.hi : x[i]);
      break;
    case F32UnaryKind::kSigmoid:
      for (size_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
      break;
    case F32UnaryKind::kSilu:
      for (size_t i = 0; i < n; ++i) y[i] = x[i] * (1.0f / (1.0f + std::exp(-x[i])));
      break;
    case F32UnaryKind::kHardSigmoid:
      for (size_t i = 0; i < n; ++i) {
        const float v = p.alpha * x[i] + p.beta;
        y[i] = v != v ? v : std::fmax(0.0f, std::fmin(1.0f, v));  // NaN stays NaN, as onnxruntime
      }
      break;
    case F32UnaryKind::kHardSwish:
      for (size_t i = 0; i < n; ++i) {
        const float v = x[i];
        y[i] = v * std::fmax(0.0f, std::fmin(1.0f, v * (1.0f / 6.0f) + 0.5f));
      }
      break;
    case F32UnaryKind::kTanh:
      for (size_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      break;
    case F32UnaryKind::kAbs:
      for (size_t i = 0; i < n; ++i) y[i] = std::fabs(x[i]);
      break;
    case F32UnaryKind::kNeg:
      for (size_t i = 0; i < n; ++i) y[i] = -x[i];
      break;
    case F32UnaryKind::kSqrt:
      for (size_t i = 0; i < n; ++i) y[i] = std::sqrt(x[i]);
      break;
    case F32UnaryKind::kExp:
      for (size_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
      break;
    case F32UnaryKind::kLog:
      for (size_t i = 0; i < n; ++i) y[i] = std::log(x[i]);
      break;
    case F32UnaryKind::kReciprocal:
      for (size_t i = 0; i < n; ++i) y[i] = 1.0f / x[i];
      break;
    case F32UnaryKind::kFloor:
      for (size_t i = 0; i < n; ++i) y[i] = std::floor(x[i]);
      break;
    case F32UnaryKind::kCeil:
      for (size_t i = 0; i < n; ++i) y[i] = std::ceil(x[i]);
      break;
    case F32UnaryKind::kRound:
      // Halves to even, spelled out rather than std::nearbyint, which follows the thread's
      // rounding mode (the ISA kernels name the mode in the instruction).
      for (size_t i = 0; i < n; ++i) {
        const float v = x[i];
        const float r = std::round(v);
        y[i] = std::fabs(v - std::trunc(v)) == 0.5f ? 2.0f * std::round(v * 0.5f) : r;
      }
      break;
    case F32UnaryKind::kErf:
      for (size_t i = 0; i < n; ++i) y[i] = std::erf(x[i]);
      break;
    case F32UnaryKind::kSoftplus:
      for (size_t i = 0; i < n; ++i) y[i] = x[i] != x[i] ? x[i] : softplus(x[i]);
      break;
    case F32UnaryKind::kSoftsign:
      for (size_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + std::fabs(x[i]));
      break;
    case F32UnaryKind::kElu:
      for (size_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? p.alpha * std::expm1(x[i]) : x[i];
      break;
    case F32UnaryKind::kSelu:
      for (size_t i = 0; i < n; ++i) y[i] = p.gamma * (x[i] <= 0.0f ? p.alpha * std::expm1(x[i]) : x[i]);
      break;
    case F32UnaryKind::kCelu:
      for (size_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? p.alpha * std::expm1(x[i] / p.alpha) : x[i];
      break;
    case F32UnaryKind::kMish:
      for (size_t i = 0; i < n; ++i) y[i] = x[i] * std::tanh(softplus(x[i]));
      break;
    case F32UnaryKind::kGelu:
      for (size_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kSqrtHalf));
      break;
    case F32UnaryKind::kGeluTanh:
      for (size_t i = 0; i < n; ++i) {
        const float v = x[i];
        y[i] = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
      }
      break;
    case F32UnaryKind::kThresholdedRelu:
      for (size_t i = 0; i < n; ++i) y[i] = x[i] > p.alpha ? x[i] : 0.0f;  // NaN -> 0, as onnxruntime
      break;
  }
}

void f32_reduce_rows_scalar(F32ReduceKind kind, const float* x, size_t rows, size_t cols, float* out) {
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  for (size_t r = 0; r < rows; ++r) {
    const float* v = x + r * cols;
    switch (kind) {
      case F32ReduceKind::kSum:
        out[r] = static_cast<float>(sum_of(v, cols));
        break;
      case F32ReduceKind::kSumSquare:
        out[r] = static_cast<float>(lane_sum(cols, [v](size_t i) { return static_cast<double>(v[i]) * v[i]; }));
        break;
      case F32ReduceKind::kSumAbs:
        out[r] = static_cast<float>(lane_sum(cols, [v](size_t i) { return std::fabs(v[i]); }));
        break;
      case F32ReduceKind::kMax:
      case F32ReduceKind::kMin: {
        const bool max = kind == F32ReduceKind::kMax;
        float best = v[0];
        bool nan = false;
        for (size_t i = 0; i < cols; ++i) {
          nan |= v[i] != v[i];
          best = (max ? v[i] > best : v[i] < best) ? v[i] : best;
        }
        out[r] = nan ? kNaN : best;
        break;
      }
      case F32ReduceKind::kProd: {
        double prod = 1;
        for (size_t i = 0; i < cols; ++i) prod *= v[i];
        out[r] = static_cast<float>(prod);
        break;
      }
      case F32ReduceKind::kLogSumExp: {
        float max = v[0];
        bool nan = false;
        for (size_t i = 0; i < cols; ++i) {
          nan |= v[i] != v[i];
          max = v[i] > max ? v[i] : max;
        }
        if (nan || std::isinf(max)) {
          // All -inf: log(0) = -inf; any +inf: +inf; NaN: NaN.
          out[r] = nan ? kNaN : max;
          break;
        }
        const double sum = lane_sum(cols, [v, max](size_t i) { return std::exp(static_cast<double>(v[i]) - max); });
        out[r] = static_cast<float>(std::log(sum) + max);
        break;
      }
    }
  }
}

}  // namespace kiln
