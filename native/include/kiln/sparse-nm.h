// N:M structured-sparse fp32 weights and the SpMM that reads their metadata.
//
// The pruner's N:M patterns (2:4, 1:4, 4:8) keep at most N of every M consecutive steps of the
// reduction, in the reduction order (kh, kw, c): for a convolution weight (OIHW, K = C * spatial,
// spatial = kh * kw) a group is M consecutive input channels at one kernel position, so in the
// OIHW row its weights lie `spatial` apart; for a Linear (and a 1x1 convolution) spatial = 1 and
// a group is M consecutive weights of the row (src/prune/patterns.ts, reductionOffset).
//
// Packed form, per output row, groups in the order (position p, channel group cg):
//   values: N floats per group (the kept weights in increasing channel; a group with fewer than
//           N non-zeros stores zeros in the spare slots, pointing at channels it does not keep,
//           so every group has exactly N entries and the kernels have no per-group count);
//   meta:   N indices in [0, M) per group, log2(M) bits each (2 for M = 4, 3 for M = 8), index i
//           at bit i * log2(M) of a little-endian group word of meta_bytes() bytes (1 byte for
//           M = 4, ceil(3N / 8) bytes for M = 8).
// Kept value i of group (p, cg) multiplies row (cg * M + idx_i) * spatial + p of X: the im2col
// matrix's row of channel c at kernel position p (for spatial = 1, row cg * M + idx_i).
// The product is Y = W * X (+ bias, then ReLU) as in kiln/sparse.h (pixels / batch in vector
// lanes; X must be finite: a stored zero times an infinite X is NaN).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/sparse.h"  // kSparseMaxDim, AlignedFloats

namespace kiln {

// n = 0: not N:M.
struct NmPattern {
  size_t n = 0, m = 0;
};

// The N:M pattern the zeros of W (rows x k, dense row-major, K = C * spatial in the order above)
// follow exactly: M in {4, 8} (4 first) with C % M == 0, N the largest non-zero count of any
// group (the smallest N every group satisfies), 1 <= N < M, and at least 90% of the groups
// holding exactly N non-zeros (the weights were pruned N:M, not merely sparse enough that every
// group happens to fit). NaN counts as non-zero. {0, 0} when none fits or the shape is invalid.
NmPattern nm_pattern_of(const float* w, size_t rows, size_t k, size_t spatial);

// "2:4" etc.
std::string nm_pattern_name(NmPattern p);

class PackedNmF32 {
 public:
  PackedNmF32() = default;
  // Packs W (rows x k, row stride ldw >= k). Throws std::invalid_argument unless m is 4 or 8,
  // 1 <= n < m, spatial >= 1 divides k, m divides k / spatial (the channels), rows and k are at
  // most kSparseMaxDim, w is non-null when rows * k > 0, and every group holds at most n
  // non-zeros (NaN counts as non-zero).
  PackedNmF32(size_t rows, size_t k, size_t spatial, const float* w, size_t ldw, size_t n, size_t m);

  size_t rows() const { return rows_; }
  size_t depth() const { return k_; }
  size_t spatial() const { return spatial_; }
  size_t n() const { return n_; }
  size_t m() const { return m_; }
  unsigned index_bits() const { return m_ == 8 ? 3 : 2; }
  size_t channel_groups() const { return k_ / spatial_ / m_; }  // groups per kernel position
  size_t groups_per_row() const { return k_ / m_; }
  size_t meta_bytes() const { return meta_bytes_; }             // metadata bytes per group
  size_t nonzeros() const { return nonzeros_; }
  size_t stored_values() const { return values_.size(); }       // rows * groups_per_row * n
  size_t bytes() const { return values_.size() * sizeof(float) + meta_.size(); }
  const float* values() const { return values_.data(); }
  const uint8_t* meta() const { return meta_.data(); }

  // The dense rows x k matrix these groups stand for.
  std::vector<float> to_dense() const;

 private:
  size_t rows_ = 0, k_ = 0, spatial_ = 1, n_ = 0, m_ = 4, meta_bytes_ = 1, nonzeros_ = 0;
  AlignedFloats values_;
  std::vector<uint8_t> meta_;
};

// Y = W * X (+ bias[rows]) then ReLU, on the active ISA's kernels. x: K x n (row stride ldx >= n),
// y: rows x n (ldy >= n; only the first n columns of each row are written). Rows and columns are
// split over up to max_threads threads (0 = the pool size) when the work is large.
void spmm_nm_f32(const PackedNmF32& w, size_t n, const float* x, size_t ldx, float* y, size_t ldy,
                 const float* bias, bool relu, size_t max_threads = 0);

}  // namespace kiln
