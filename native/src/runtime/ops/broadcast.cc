#include "runtime/ops/broadcast.h"

#include <algorithm>
#include <cmath>

#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

constexpr size_t kMaxRank = 16;

template <BinaryOp Op>
inline float apply(float x, float y) {
  if (Op == BinaryOp::kAdd) return x + y;
  if (Op == BinaryOp::kSub) return x - y;
  if (Op == BinaryOp::kMul) return x * y;
  if (Op == BinaryOp::kMax) return (x != x || x > y) ? x : y;
  if (Op == BinaryOp::kMin) return (x != x || x < y) ? x : y;
  if (Op == BinaryOp::kPow) return std::pow(x, y);
  if (Op == BinaryOp::kPRelu) return x < 0.0f ? x * y : x;
  if (Op == BinaryOp::kAddRelu) {
    const float s = x + y;
    return s < 0.0f ? 0.0f : s;
  }
  return x / y;
}

// The innermost run: strides are 0 (broadcast) or 1 (contiguous).
template <BinaryOp Op>
void row(const float* a, size_t sa, const float* b, size_t sb, float* y, size_t n) {
  if (sa == 1 && sb == 1) {
    for (size_t i = 0; i < n; ++i) y[i] = apply<Op>(a[i], b[i]);
  } else if (sa == 1) {
    const float v = *b;
    for (size_t i = 0; i < n; ++i) y[i] = apply<Op>(a[i], v);
  } else if (sb == 1) {
    const float v = *a;
    for (size_t i = 0; i < n; ++i) y[i] = apply<Op>(v, b[i]);
  } else {
    const float v = apply<Op>(*a, *b);
    for (size_t i = 0; i < n; ++i) y[i] = v;
  }
}

struct Loop {
  size_t rank = 0;
  size_t dims[kMaxRank + 1];
  size_t sa[kMaxRank + 1], sb[kMaxRank + 1];
};

template <BinaryOp Op>
void run_loop(const Loop& l, const float* a, const float* b, float* y, size_t max_threads) {
  const size_t inner = l.dims[l.rank - 1];
  const size_t isa = l.sa[l.rank - 1], isb = l.sb[l.rank - 1];
  size_t outer = 1;
  for (size_t d = 0; d + 1 < l.rank; ++d) outer *= l.dims[d];
  if (outer == 1) {
    for_chunks(inner, kElementwiseGrain, max_threads, [&](size_t s, size_t e) {
      row<Op>(a + s * isa, isa, b + s * isb, isb, y + s, e - s);
    });
    return;
  }
  const size_t grain = std::max<size_t>(1, kElementwiseGrain / std::max<size_t>(1, inner));
  for_chunks(outer, grain, max_threads, [&](size_t s, size_t e) {
    for (size_t o = s; o < e; ++o) {
      size_t rest = o, oa = 0, ob = 0;
      for (size_t d = l.rank - 1; d-- > 0;) {
        const size_t i = rest % l.dims[d];
        rest /= l.dims[d];
        oa += i * l.sa[d];
        ob += i * l.sb[d];
      }
      row<Op>(a + oa, isa, b + ob, isb, y + o * inner, inner);
    }
  });
}

}  // namespace

bool broadcast_shapes(const PlanShape& a, const PlanShape& b, PlanShape* out) {
  if (a.size() != b.size()) return false;
  out->resize(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i] && a[i] != 1 && b[i] != 1) return false;
    (*out)[i] = std::max(a[i], b[i]);
  }
  return true;
}

Broadcast::Broadcast(const BroadcastOperand& a, const BroadcastOperand& b, const PlanShape& out) {
  const size_t rank = out.size();
  out_image_ = 1;
  for (size_t d : out) out_image_ *= d;
  // Strides of each operand over the output index space (0 where it broadcasts).
  std::vector<size_t> sa(rank), sb(rank);
  size_t ra = 1, rb = 1;
  for (size_t d = rank; d-- > 0;) {
    sa[d] = a.shape[d] == 1 ? 0 : ra;
    sb[d] = b.shape[d] == 1 ? 0 : rb;
    ra *= a.shape[d];
    rb *= b.shape[d];
  }
  a_image_ = a.batched ? ra : 0;
  b_image_ = b.batched ? rb : 0;
  // Collapse neighbours that continue each other for both operands; drop size-1 dims.
  for (size_t d = 0; d < rank; ++d) {
    if (out[d] == 1) continue;
    if (!dims_.empty()) {
      const size_t last = dims_.size() - 1;
      const bool a_ok = a_stride_[last] == sa[d] * out[d];
      const bool b_ok = b_stride_[last] == sb[d] * out[d];
      if (a_ok && b_ok) {
        dims_[last] *= out[d];
        a_stride_[last] = sa[d];
        b_stride_[last] = sb[d];
        continue;
      }
    }
    dims_.push_back(out[d]);
    a_stride_.push_back(sa[d]);
    b_stride_.push_back(sb[d]);
  }
  if (dims_.empty()) {
    dims_.push_back(1);
    a_stride_.push_back(0);
    b_stride_.push_back(0);
  }
}

void Broadcast::run(BinaryOp op, const float* a, const float* b, float* y, size_t batch,
                    size_t max_threads) const {
  Loop l;
  l.rank = 0;
  // The batch dimension, merged into the first one when both operands continue across images.
  const bool merge = batch > 1 && a_image_ == a_stride_[0] * dims_[0] && b_image_ == b_stride_[0] * dims_[0];
  if (batch > 1 && !merge) {
    l.dims[0] = batch;
    l.sa[0] = a_image_;
    l.sb[0] = b_image_;
    l.rank = 1;
  }
  for (size_t d = 0; d < dims_.size(); ++d) {
    l.dims[l.rank] = dims_[d];
    l.sa[l.rank] = a_stride_[d];
    l.sb[l.rank] = b_stride_[d];
    ++l.rank;
  }
  if (merge) l.dims[0] *= batch;
  switch (op) {
    case BinaryOp::kAdd: run_loop<BinaryOp::kAdd>(l, a, b, y, max_threads); break;
    case BinaryOp::kSub: run_loop<BinaryOp::kSub>(l, a, b, y, max_threads); break;
    case BinaryOp::kMul: run_loop<BinaryOp::kMul>(l, a, b, y, max_threads); break;
    case BinaryOp::kDiv: run_loop<BinaryOp::kDiv>(l, a, b, y, max_threads); break;
    case BinaryOp::kMax: run_loop<BinaryOp::kMax>(l, a, b, y, max_threads); break;
    case BinaryOp::kMin: run_loop<BinaryOp::kMin>(l, a, b, y, max_threads); break;
    case BinaryOp::kPow: run_loop<BinaryOp::kPow>(l, a, b, y, max_threads); break;
    case BinaryOp::kPRelu: run_loop<BinaryOp::kPRelu>(l, a, b, y, max_threads); break;
    case BinaryOp::kAddRelu: run_loop<BinaryOp::kAddRelu>(l, a, b, y, max_threads); break;
  }
}

}  // namespace runtime
}  // namespace kiln
