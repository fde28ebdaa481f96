// The packer: dense row-major W -> blocked CSR (kiln/sparse.h). The only producer of packed
// sparse weights; everything it stores is in range by construction (col + bc <= K, row pointers
// non-decreasing, counts within 32 bits).
#include <cstring>
#include <stdexcept>
#include <string>

#include "kiln/sparse.h"

namespace kiln {

const char* sparse_pattern_name(SparsePattern p) {
  switch (p) {
    case SparsePattern::kUnstructured: return "unstructured";
    case SparsePattern::kBlock1x4: return "1x4";
    case SparsePattern::kBlock4x1: return "4x1";
    case SparsePattern::kBlock8x1: return "8x1";
  }
  return "unknown";
}

bool parse_sparse_pattern(const std::string& name, SparsePattern* out) {
  for (int i = 0; i < kSparsePatternCount; ++i) {
    const SparsePattern p = static_cast<SparsePattern>(i);
    if (name == sparse_pattern_name(p)) {
      *out = p;
      return true;
    }
  }
  return false;
}

size_t sparse_block_rows(SparsePattern p) {
  return p == SparsePattern::kBlock4x1 ? 4 : p == SparsePattern::kBlock8x1 ? 8 : 1;
}
size_t sparse_block_cols(SparsePattern p) { return p == SparsePattern::kBlock1x4 ? 4 : 1; }

PackedSparseF32::PackedSparseF32(size_t m, size_t k, const float* w, size_t ldw, SparsePattern pattern)
    : m_(m), k_(k), pattern_(pattern) {
  const int p = static_cast<int>(pattern);
  if (p < 0 || p >= kSparsePatternCount) throw std::invalid_argument("sparse pattern: unknown pattern " + std::to_string(p));
  if (m > kSparseMaxDim || k > kSparseMaxDim) {
    throw std::invalid_argument("sparse weights: m and k must be at most " + std::to_string(kSparseMaxDim));
  }
  if (m > 0 && k > 0) {
    if (ldw < k) throw std::invalid_argument("sparse weights: ldw " + std::to_string(ldw) + " < k " + std::to_string(k));
    if (!w) throw std::invalid_argument("sparse weights: null weight pointer");
  }
  br_ = sparse_block_rows(pattern);
  bc_ = sparse_block_cols(pattern);
  if (k % bc_ != 0) {
    throw std::invalid_argument("sparse weights: 1x4 blocks need k to be a multiple of 4, got k = " + std::to_string(k));
  }
  const size_t nbr = block_rows();
  row_ptr_.assign(nbr + 1, 0);
  const size_t cells = br_ * bc_;
  for (size_t rb = 0; rb < nbr; ++rb) {
    const size_t row0 = rb * br_;
    const size_t rows = m - row0 < br_ ? m - row0 : br_;
    for (size_t kb = 0; kb < k; kb += bc_) {
      float block[8 * 4] = {};
      bool any = false;
      for (size_t r = 0; r < rows; ++r) {
        for (size_t c = 0; c < bc_; ++c) {
          const float v = w[(row0 + r) * ldw + kb + c];
          block[r * bc_ + c] = v;
          if (v != 0.0f || v != v) {
            any = true;
            ++nonzeros_;
          }
        }
      }
      if (!any) continue;
      if (col_.size() >= 0xffffffffu) throw std::invalid_argument("sparse weights: more than 2^32 - 1 blocks");
      col_.push_back(static_cast<uint32_t>(kb));
      values_.insert(values_.end(), block, block + cells);
    }
    row_ptr_[rb + 1] = static_cast<uint32_t>(col_.size());
  }
  std::vector<bool> used(k, false);
  for (uint32_t c : col_)
    for (size_t i = 0; i < bc_; ++i) used[c + i] = true;
  for (size_t i = 0; i < k; ++i)
    if (used[i]) used_k_.push_back(static_cast<uint32_t>(i));
}

size_t PackedSparseF32::bytes() const {
  return (row_ptr_.size() + col_.size() + used_k_.size()) * sizeof(uint32_t) + values_.size() * sizeof(float);
}

std::vector<float> PackedSparseF32::to_dense() const {
  std::vector<float> d(m_ * k_, 0.0f);
  for (size_t rb = 0; rb < block_rows(); ++rb) {
    for (uint32_t b = row_ptr_[rb]; b < row_ptr_[rb + 1]; ++b) {
      for (size_t r = 0; r < br_; ++r) {
        const size_t row = rb * br_ + r;
        if (row >= m_) break;
        for (size_t c = 0; c < bc_; ++c) d[row * k_ + col_[b] + c] = values_[b * br_ * bc_ + r * bc_ + c];
      }
    }
  }
  return d;
}

}  // namespace kiln
