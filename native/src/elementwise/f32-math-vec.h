// The vector kernels of the fp32 math family, written once over a traits struct V (one per ISA,
// defined in f32-math-avx2.cc / f32-math-avx512.cc, the files compiled with that ISA's flags).
// exp is Cephes' expf polynomial (range-reduced by ln 2, 2^n applied in two halves so results
// down to the denormals stay right); erf is its Taylor series below 0.5 and Abramowitz-Stegun
// 7.1.26 above (|error| < 2e-7); tanh and log are Cephes' tanhf and logf; the sigmoid's e^-|x|
// is a degree-5 fit of our own (exp_nonpositive).
#pragma once
#include <cstddef>
#include <limits>

#include "elementwise/f32-math-ukernel.h"

namespace kiln {
namespace {  // internal linkage: included by TUs built with different -m flags

template <typename V>
struct F32Math {
  using Vec = typename V::Vec;
  using Cmp = typename V::Cmp;

  // r = x - n ln 2, ln 2 in two parts (Cody-Waite): |r| <= ln 2 / 2 or about for n = round(x / ln 2).
  static Vec reduce_ln2(Vec x, Vec n) {
    const Vec r = V::fmadd(n, V::set1(-0.693359375f), x);
    return V::fmadd(n, V::set1(2.12194440e-4f), r);
  }

  // e^r for r = reduce_ln2(x, n): Cephes' expf polynomial. exp scales it by 2^n.
  static Vec exp_mantissa(Vec x, Vec n) {
    const Vec r = reduce_ln2(x, n);
    Vec y = V::set1(1.9875691500e-4f);
    y = V::fmadd(y, r, V::set1(1.3981999507e-3f));
    y = V::fmadd(y, r, V::set1(8.3334519073e-3f));
    y = V::fmadd(y, r, V::set1(4.1665795894e-2f));
    y = V::fmadd(y, r, V::set1(1.6666665459e-1f));
    y = V::fmadd(y, r, V::set1(5.0000001201e-1f));
    return V::add(V::fmadd(y, V::mul(r, r), r), V::set1(1.0f));
  }

  static Vec exp(Vec x) {
    const Cmp nan = V::isnan(x);
    const Cmp big = V::gt(x, V::set1(88.72283935546875f));
    const Vec xc = V::min(V::max(x, V::set1(-103.972084045410f)), V::set1(88.72283935546875f));
    const Vec fx = V::floor(V::fmadd(xc, V::set1(1.44269504088896341f), V::set1(0.5f)));
    Vec y = exp_mantissa(xc, fx);
    const Vec h = V::floor(V::mul(fx, V::set1(0.5f)));
    y = V::mul(V::mul(y, V::pow2(h)), V::pow2(V::sub(fx, h)));
    y = V::select(big, V::set1(std::numeric_limits<float>::infinity()), y);
    return V::select(nan, x, y);
  }

  // e^t for t <= 0 (or NaN), for the sigmoid: n rounded to nearest, r = t - n ln 2 as exp does,
  // e^r by a degree-5 polynomial 1 + r (c1 + r (c2 + ...)) fitted for relative error on
  // [-ln 2 / 2, ln 2 / 2] (9e-8 in exact arithmetic; Cephes' form above spends three more
  // operations on a sixth coefficient), no overflow to guard, and 2^n applied by V::scale2 (one
  // scalef on AVX-512), which rounds results into the denormals. SiLU, AVX-512, in L1: 0.217 ->
  // 0.172 ns per element; largest error over normal results 2.9 -> 4.0 ulp. EfficientNet's SiLU
  // after each convolution took about as long as the multiply-adds of its 1x1 expansions.
  static Vec exp_nonpositive(Vec t) {
    const Vec tc = V::max(V::set1(-104.0f), t);  // e^-104 rounds to 0; NaN passes (max's second operand)
    const Vec n = V::round_even(V::mul(tc, V::set1(1.44269504088896341f)));
    const Vec r = reduce_ln2(tc, n);
    Vec p = V::set1(8.290312980e-3f);
    p = V::fmadd(p, r, V::set1(4.189793063e-2f));
    p = V::fmadd(p, r, V::set1(1.666763622e-1f));
    p = V::fmadd(p, r, V::set1(4.999914952e-1f));
    p = V::fmadd(p, r, V::set1(9.999997072e-1f));
    return V::scale2(V::fmadd(p, r, V::set1(1.0f)), n);
  }

  // 1 / (1 + e^-x) from e = e^-|x|, which never overflows, and q = 1 / (1 + e) with 1 + e in
  // (1, 2], where a refined reciprocal estimate (V::recip) is within a few ulp: q for x >= 0,
  // e q below. About half the instructions of a division after a full exp (SiLU after every
  // convolution of EfficientNet spent as long in this function as in the convolutions).
  static Vec sigmoid(Vec x) {
    const Vec e = exp_nonpositive(V::neg_abs(x));
    const Vec q = V::recip(V::add(V::set1(1.0f), e));
    return V::select(V::lt(x, V::zero()), V::mul(e, q), q);
  }

  static Vec erf(Vec x) {
    const Vec ax = V::abs(x);
    const Vec p = V::mul(x, x);
    // 2/sqrt(pi) * (x - x^3/3 + x^5/10 - x^7/42 + x^9/216 - x^11/1320 + x^13/9360)
    Vec s = V::set1(1.1283791670955126f / 9360.0f);
    s = V::fmadd(s, p, V::set1(-1.1283791670955126f / 1320.0f));
    s = V::fmadd(s, p, V::set1(1.1283791670955126f / 216.0f));
    s = V::fmadd(s, p, V::set1(-1.1283791670955126f / 42.0f));
    s = V::fmadd(s, p, V::set1(1.1283791670955126f / 10.0f));
    s = V::fmadd(s, p, V::set1(-1.1283791670955126f / 3.0f));
    s = V::fmadd(s, p, V::set1(1.1283791670955126f));
    s = V::mul(s, x);
    const Vec t = V::div(V::set1(1.0f), V::fmadd(ax, V::set1(0.3275911f), V::set1(1.0f)));
    Vec q = V::set1(1.061405429f);
    q = V::fmadd(q, t, V::set1(-1.453152027f));
    q = V::fmadd(q, t, V::set1(1.421413741f));
    q = V::fmadd(q, t, V::set1(-0.284496736f));
    q = V::fmadd(q, t, V::set1(0.254829592f));
    q = V::mul(q, t);
    const Vec e = V::sub(V::set1(1.0f), V::mul(q, exp(V::neg(p))));
    return V::select(V::lt(ax, V::set1(0.5f)), s, V::copysign(e, x));
  }

  // Cephes' logf: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) by its polynomial; denormals
  // scaled up first; log(0) = -inf, log(+inf) = +inf, NaN for x < 0 or NaN.
  static Vec log(Vec x) {
    const Vec one = V::set1(1.0f);
    const Cmp denormal = V::lt(x, V::set1(1.17549435e-38f));
    Vec e;
    Vec m = V::frexp(V::select(denormal, V::mul(x, V::set1(8388608.0f)), x), &e);
    e = V::select(denormal, V::sub(e, V::set1(23.0f)), e);
    const Cmp low = V::lt(m, V::set1(0.707106781186547524f));
    e = V::select(low, V::sub(e, one), e);
    m = V::select(low, V::sub(V::add(m, m), one), V::sub(m, one));
    const Vec z = V::mul(m, m);
    Vec y = V::set1(7.0376836292e-2f);
    y = V::fmadd(y, m, V::set1(-1.1514610310e-1f));
    y = V::fmadd(y, m, V::set1(1.1676998740e-1f));
    y = V::fmadd(y, m, V::set1(-1.2420140846e-1f));
    y = V::fmadd(y, m, V::set1(1.4249322787e-1f));
    y = V::fmadd(y, m, V::set1(-1.6668057665e-1f));
    y = V::fmadd(y, m, V::set1(2.0000714765e-1f));
    y = V::fmadd(y, m, V::set1(-2.4999993993e-1f));
    y = V::fmadd(y, m, V::set1(3.3333331174e-1f));
    y = V::mul(V::mul(y, m), z);
    y = V::fmadd(e, V::set1(-2.12194440e-4f), y);
    y = V::fmadd(z, V::set1(-0.5f), y);
    Vec r = V::fmadd(e, V::set1(0.693359375f), V::add(m, y));
    const float inf = std::numeric_limits<float>::infinity();
    r = V::select(V::eq(x, V::zero()), V::set1(-inf), r);
    r = V::select(V::eq(x, V::set1(inf)), x, r);
    r = V::select(V::lt(x, V::zero()), V::set1(std::numeric_limits<float>::quiet_NaN()), r);
    return V::select(V::isnan(x), x, r);
  }

  // log(1 + e^x) = max(x, 0) + log1p(e^-|x|), log1p(y) as y log(u) / (u - 1) with u = 1 + y
  // (exact where u rounds to 1).
  static Vec softplus(Vec x) {
    const Vec one = V::set1(1.0f);
    const Vec y = exp(V::neg(V::abs(x)));
    const Vec u = V::add(one, y);
    const Vec l1p = V::select(V::eq(u, one), y, V::mul(log(u), V::div(y, V::sub(u, one))));
    return V::add(V::max(V::zero(), x), l1p);
  }

  // Cephes' tanhf: an odd polynomial below 0.625, 1 - 2 / (e^2|x| + 1) with x's sign above.
  static Vec tanh(Vec x) {
    const Vec ax = V::abs(x);
    const Vec z = V::mul(x, x);
    Vec p = V::set1(-5.70498872745e-3f);
    p = V::fmadd(p, z, V::set1(2.06390887954e-2f));
    p = V::fmadd(p, z, V::set1(-5.37397155531e-2f));
    p = V::fmadd(p, z, V::set1(1.33314422036e-1f));
    p = V::fmadd(p, z, V::set1(-3.33332819422e-1f));
    const Vec small = V::fmadd(V::mul(p, z), x, x);
    const Vec e = exp(V::add(ax, ax));
    const Vec large = V::sub(V::set1(1.0f), V::div(V::set1(2.0f), V::add(e, V::set1(1.0f))));
    return V::select(V::lt(ax, V::set1(0.625f)), small, V::copysign(large, x));
  }

  // One vector of x -> y (the kinds handled by unary()). Inlined with a constant `kind`, the
  // switch folds away (unary() runs one loop per kind).
  __attribute__((always_inline)) static inline Vec apply(F32UnaryKind kind, const F32UnaryParams& p, Vec x) {
    const Vec zero = V::zero();
    const Vec one = V::set1(1.0f);
    switch (kind) {
      case F32UnaryKind::kRelu: return V::max(zero, x);  // max returns its second operand for NaN
      case F32UnaryKind::kLeakyRelu: return V::select(V::lt(x, zero), V::mul(x, V::set1(p.alpha)), x);
      case F32UnaryKind::kClip:
        return V::select(V::lt(x, V::set1(p.lo)), V::set1(p.lo), V::select(V::gt(x, V::set1(p.hi)), V::set1(p.hi), x));
      case F32UnaryKind::kSigmoid: return sigmoid(x);
      case F32UnaryKind::kSilu: return V::mul(x, sigmoid(x));
      case F32UnaryKind::kHardSigmoid:
        // min / max return their second operand for NaN: a NaN stays NaN.
        return V::max(zero, V::min(one, V::fmadd(x, V::set1(p.alpha), V::set1(p.beta))));
      case F32UnaryKind::kHardSwish:
        return V::mul(x, V::max(V::min(V::fmadd(x, V::set1(1.0f / 6.0f), V::set1(0.5f)), one), zero));
      case F32UnaryKind::kTanh: return tanh(x);
      case F32UnaryKind::kLog: return log(x);
      case F32UnaryKind::kSoftplus: return softplus(x);
      case F32UnaryKind::kAbs: return V::abs(x);
      case F32UnaryKind::kNeg: return V::neg(x);
      case F32UnaryKind::kSqrt: return V::sqrt(x);
      case F32UnaryKind::kExp: return exp(x);
      case F32UnaryKind::kReciprocal: return V::div(one, x);
      case F32UnaryKind::kFloor: return V::floor(x);
      case F32UnaryKind::kCeil: return V::ceil(x);
      case F32UnaryKind::kRound: return V::round_even(x);
      case F32UnaryKind::kErf: return erf(x);
      case F32UnaryKind::kSoftsign: return V::div(x, V::add(one, V::abs(x)));
      case F32UnaryKind::kElu:
        return V::select(V::lt(x, zero), V::mul(V::set1(p.alpha), V::sub(exp(x), one)), x);
      case F32UnaryKind::kSelu:
        return V::mul(V::set1(p.gamma), V::select(V::le(x, zero), V::mul(V::set1(p.alpha), V::sub(exp(x), one)), x));
      case F32UnaryKind::kCelu:
        return V::select(V::lt(x, zero), V::mul(V::set1(p.alpha), V::sub(exp(V::div(x, V::set1(p.alpha))), one)), x);
      case F32UnaryKind::kMish: {
        // tanh(log(1 + e)) = n / (n + 2) with n = e (e + 2); e^20 makes the ratio 1 in float.
        const Vec e = exp(V::min(x, V::set1(20.0f)));
        const Vec n = V::mul(e, V::add(e, V::set1(2.0f)));
        return V::mul(x, V::div(n, V::add(n, V::set1(2.0f))));
      }
      case F32UnaryKind::kGelu:
        return V::mul(V::mul(V::set1(0.5f), x), V::add(one, erf(V::mul(x, V::set1(0.70710678118654752f)))));
      case F32UnaryKind::kGeluTanh: {
        // 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)).
        const Vec x3 = V::mul(V::mul(x, x), x);
        const Vec u = V::mul(V::set1(0.79788456080286536f), V::fmadd(x3, V::set1(0.044715f), x));
        return V::div(x, V::add(one, exp(V::mul(u, V::set1(-2.0f)))));
      }
      case F32UnaryKind::kThresholdedRelu: return V::select(V::gt(x, V::set1(p.alpha)), x, zero);
    }
    return x;  // not reached: every kind is handled above
  }

  // The loop of one kind: no per-vector dispatch, and two vectors per step so that the long
  // dependency chains (exp's polynomial, a division) of neighbours overlap.
  template <F32UnaryKind K>
  static void unary_of(const F32UnaryParams& p, const float* x, float* y, size_t n) {
    size_t i = 0;
    for (; i + 2 * V::kLanes <= n; i += 2 * V::kLanes) {
      const Vec a = apply(K, p, V::loadu(x + i));
      const Vec b = apply(K, p, V::loadu(x + i + V::kLanes));
      V::storeu(y + i, a);
      V::storeu(y + i + V::kLanes, b);
    }
    for (; i + V::kLanes <= n; i += V::kLanes) V::storeu(y + i, apply(K, p, V::loadu(x + i)));
    if (i < n) {
      const auto m = V::first_lanes(n - i);
      V::store_tail(y + i, m, apply(K, p, V::load_tail(x + i, m, 0.0f)));
    }
  }

  static void unary(const F32UnaryParams& p, const float* x, float* y, size_t n) {
    using K = F32UnaryKind;
    switch (p.kind) {
      case K::kRelu: return unary_of<K::kRelu>(p, x, y, n);
      case K::kLeakyRelu: return unary_of<K::kLeakyRelu>(p, x, y, n);
      case K::kClip: return unary_of<K::kClip>(p, x, y, n);
      case K::kSigmoid: return unary_of<K::kSigmoid>(p, x, y, n);
      case K::kHardSigmoid: return unary_of<K::kHardSigmoid>(p, x, y, n);
      case K::kHardSwish: return unary_of<K::kHardSwish>(p, x, y, n);
      case K::kTanh: return unary_of<K::kTanh>(p, x, y, n);
      case K::kAbs: return unary_of<K::kAbs>(p, x, y, n);
      case K::kNeg: return unary_of<K::kNeg>(p, x, y, n);
      case K::kSqrt: return unary_of<K::kSqrt>(p, x, y, n);
      case K::kExp: return unary_of<K::kExp>(p, x, y, n);
      case K::kLog: return unary_of<K::kLog>(p, x, y, n);
      case K::kReciprocal: return unary_of<K::kReciprocal>(p, x, y, n);
      case K::kFloor: return unary_of<K::kFloor>(p, x, y, n);
      case K::kCeil: return unary_of<K::kCeil>(p, x, y, n);
      case K::kErf: return unary_of<K::kErf>(p, x, y, n);
      case K::kSoftplus: return unary_of<K::kSoftplus>(p, x, y, n);
      case K::kSoftsign: return unary_of<K::kSoftsign>(p, x, y, n);
      case K::kElu: return unary_of<K::kElu>(p, x, y, n);
      case K::kSelu: return unary_of<K::kSelu>(p, x, y, n);
      case K::kCelu: return unary_of<K::kCelu>(p, x, y, n);
      case K::kMish: return unary_of<K::kMish>(p, x, y, n);
      case K::kGelu: return unary_of<K::kGelu>(p, x, y, n);
      case K::kGeluTanh: return unary_of<K::kGeluTanh>(p, x, y, n);
      case K::kThresholdedRelu: return unary_of<K::kThresholdedRelu>(p, x, y, n);
      case K::kRound: return unary_of<K::kRound>(p, x, y, n);
      case K::kSilu: return unary_of<K::kSilu>(p, x, y, n);
    }
  }

  template <F32ReduceKind K>
  static float sum_row(const float* x, size_t n) {
    auto term = [](Vec v) {
      if (K == F32ReduceKind::kSumSquare) return V::mul(v, v);
      if (K == F32ReduceKind::kSumAbs) return V::abs(v);
      return v;
    };
    Vec a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
    size_t i = 0;
    for (; i + 4 * V::kLanes <= n; i += 4 * V::kLanes) {
      a0 = V::add(a0, term(V::loadu(x + i)));
      a1 = V::add(a1, term(V::loadu(x + i + V::kLanes)));
      a2 = V::add(a2, term(V::loadu(x + i + 2 * V::kLanes)));
      a3 = V::add(a3, term(V::loadu(x + i + 3 * V::kLanes)));
    }
    for (; i + V::kLanes <= n; i += V::kLanes) a0 = V::add(a0, term(V::loadu(x + i)));
    if (i < n) a1 = V::add(a1, term(V::load_tail(x + i, V::first_lanes(n - i), 0.0f)));
    return V::sum_lanes(V::add(V::add(a0, a1), V::add(a2, a3)));
  }

  template <bool Max>
  static float extreme_row(const float* x, size_t n) {
    const float fill = Max ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
    auto pick = [](Vec a, Vec b) { return Max ? V::max(a, b) : V::min(a, b); };
    Vec a0 = V::set1(fill), a1 = a0;
    Cmp nan = V::isnan(V::zero());
    size_t i = 0;
    for (; i + 2 * V::kLanes <= n; i += 2 * V::kLanes) {
      const Vec v0 = V::loadu(x + i), v1 = V::loadu(x + i + V::kLanes);
      nan = V::cmp_or(nan, V::cmp_or(V::isnan(v0), V::isnan(v1)));
      a0 = pick(a0, v0);
      a1 = pick(a1, v1);
    }
    for (; i + V::kLanes <= n; i += V::kLanes) {
      const Vec v = V::loadu(x + i);
      nan = V::cmp_or(nan, V::isnan(v));
      a0 = pick(a0, v);
    }
    if (i < n) {
      const Vec v = V::load_tail(x + i, V::first_lanes(n - i), fill);
      nan = V::cmp_or(nan, V::isnan(v));
      a1 = pick(a1, v);
    }
    if (V::any(nan)) return std::numeric_limits<float>::quiet_NaN();
    alignas(64) float lanes[V::kLanes];
    V::storeu(lanes, pick(a0, a1));
    float best = lanes[0];
    for (size_t l = 1; l < V::kLanes; ++l) best = (Max ? lanes[l] > best : lanes[l] < best) ? lanes[l] : best;
    return best;
  }

  static void reduce_rows(F32ReduceKind kind, const float* x, size_t rows, size_t cols, float* out) {
    for (size_t r = 0; r < rows; ++r) {
      const float* v = x + r * cols;
      switch (kind) {
        case F32ReduceKind::kSum: out[r] = sum_row<F32ReduceKind::kSum>(v, cols); break;
        case F32ReduceKind::kSumSquare: out[r] = sum_row<F32ReduceKind::kSumSquare>(v, cols); break;
        case F32ReduceKind::kSumAbs: out[r] = sum_row<F32ReduceKind::kSumAbs>(v, cols); break;
        case F32ReduceKind::kMax: out[r] = extreme_row<true>(v, cols); break;
        case F32ReduceKind::kMin: out[r] = extreme_row<false>(v, cols); break;
        default: f32_reduce_rows_scalar(kind, v, 1, cols, out + r); break;
      }
    }
  }
};

}  // namespace
}  // namespace kiln
