// Sparse fp32 weights and the sparse x dense product (SpMM) that reads them.
//
// A weight matrix W[M x K] (M = output channels, K = reduction: Cin*KH*KW for a convolution after
// im2col, in-features for a Linear layer) is packed once, from its dense row-major form, into a
// blocked CSR: the non-zero blocks of each block-row, in increasing k. Patterns:
//   kUnstructured  1x1 blocks (plain CSR: one value per non-zero)
//   kBlock1x4      4 consecutive k of one output (K must be a multiple of 4)
//   kBlock4x1      one k shared by 4 consecutive outputs (one load of an X row feeds 4 outputs)
//   kBlock8x1      one k shared by 8 consecutive outputs
// A block is stored when any of its values is non-zero (NaN counts as non-zero); its zeros are
// stored with it. The last block-row of 4x1 / 8x1 is padded with zero rows that are never written.
//
// The product is Y[M x N] = W * X[K x N] (+ bias per output, then ReLU), X and Y row-major, N in
// vector lanes: N = pixels for a convolution (the im2col matrix, or the input itself for a 1x1
// convolution), N = batch for a Linear layer (X = the input transposed, in-features x batch, and
// Y = out-features x batch). X must be finite: a stored zero times an infinite X is NaN, where the
// dense product of the same masked weights would also give NaN, but a dropped block gives 0.
// Nothing here knows about Node.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/f32-gemm.h"

namespace kiln {

enum class SparsePattern : int { kUnstructured = 0, kBlock1x4 = 1, kBlock4x1 = 2, kBlock8x1 = 3 };
constexpr int kSparsePatternCount = 4;

// "unstructured", "1x4", "4x1", "8x1".
const char* sparse_pattern_name(SparsePattern p);
bool parse_sparse_pattern(const std::string& name, SparsePattern* out);
// Outputs (rows) and reduction steps (columns) of one block.
size_t sparse_block_rows(SparsePattern p);
size_t sparse_block_cols(SparsePattern p);

// Largest M or K a packed matrix holds (indices are 32-bit).
constexpr size_t kSparseMaxDim = 0x7fffffff;

class PackedSparseF32 {
 public:
  PackedSparseF32() = default;
  // Packs W (m x k, row stride ldw >= k). Throws std::invalid_argument on a size over
  // kSparseMaxDim, ldw < k, a null w with m * k > 0, an unknown pattern, or 1x4 with k % 4 != 0.
  PackedSparseF32(size_t m, size_t k, const float* w, size_t ldw, SparsePattern pattern);

  size_t rows() const { return m_; }
  size_t depth() const { return k_; }
  SparsePattern pattern() const { return pattern_; }
  size_t block_rows() const { return (m_ + br_ - 1) / br_; }  // block-rows of br() outputs
  size_t br() const { return br_; }
  size_t bc() const { return bc_; }
  size_t blocks() const { return col_.size(); }             // stored blocks
  size_t stored_values() const { return values_.size(); }   // blocks * br * bc
  size_t nonzeros() const { return nonzeros_; }             // non-zero weights of W
  size_t bytes() const;                                     // packed storage

  // Block-row r's blocks are [row_ptr()[r], row_ptr()[r + 1]); block b starts at k = col()[b]
  // and holds values()[b * br * bc ...], row-major within the block.
  const uint32_t* row_ptr() const { return row_ptr_.data(); }
  const uint32_t* col() const { return col_.data(); }
  const float* values() const { return values_.data(); }
  // The k that any stored block reads, increasing (the rows of X the product touches).
  const uint32_t* used_k() const { return used_k_.data(); }
  size_t used_k_count() const { return used_k_.size(); }

  // The dense m x k matrix these blocks stand for (zeros where no block is stored).
  std::vector<float> to_dense() const;

 private:
  size_t m_ = 0, k_ = 0, br_ = 1, bc_ = 1, nonzeros_ = 0;
  SparsePattern pattern_ = SparsePattern::kUnstructured;
  std::vector<uint32_t> row_ptr_{0};
  std::vector<uint32_t> col_;
  std::vector<uint32_t> used_k_;
  AlignedFloats values_;
};

// Y = W * X (+ bias[M]) then ReLU, on the active ISA's kernels. x: K x n (row stride ldx >= n),
// y: M x n (ldy >= n; only the first n columns of each row are written, all of them). Rows are
// split over up to max_threads threads (0 = the pool size) when the work is large.
void spmm_f32(const PackedSparseF32& w, size_t n, const float* x, size_t ldx, float* y, size_t ldy,
              const float* bias, bool relu, size_t max_threads = 0);

}  // namespace kiln
