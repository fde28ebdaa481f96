// The N:M packer and detector (kiln/sparse-nm.h). The only producer of packed N:M weights: every
// index it stores is < M and every group holds exactly N entries, so the kernels read the
// metadata without checks.
#include <stdexcept>
#include <string>

#include "kiln/sparse-nm.h"

namespace kiln {

namespace {

bool nonzero(float v) { return v != 0.0f || v != v; }  // NaN counts as non-zero

// Non-zeros of group (p, cg) of row `row`: channels cg * m .. cg * m + m - 1 at position p.
size_t group_count(const float* row, size_t spatial, size_t m, size_t p, size_t cg) {
  size_t nz = 0;
  for (size_t i = 0; i < m; ++i) nz += nonzero(row[(cg * m + i) * spatial + p]) ? 1 : 0;
  return nz;
}

}  // namespace

std::string nm_pattern_name(NmPattern p) { return std::to_string(p.n) + ":" + std::to_string(p.m); }

NmPattern nm_pattern_of(const float* w, size_t rows, size_t k, size_t spatial) {
  if (!w || rows == 0 || k == 0 || spatial == 0 || k % spatial != 0) return {};
  const size_t channels = k / spatial;
  for (size_t m : {size_t{4}, size_t{8}}) {
    if (channels % m != 0) continue;
    // counts[c]: groups holding c non-zeros.
    size_t counts[9] = {};
    for (size_t r = 0; r < rows; ++r)
      for (size_t p = 0; p < spatial; ++p)
        for (size_t cg = 0; cg < channels / m; ++cg) ++counts[group_count(w + r * k, spatial, m, p, cg)];
    size_t n = 0;
    for (size_t c = 0; c <= m; ++c)
      if (counts[c] > 0) n = c;
    if (n == 0 || n >= m) continue;
    const size_t groups = rows * (k / m);
    // At least 90% of the groups exactly N (integer form of counts[n] >= 0.9 * groups).
    if (counts[n] * 10 >= groups * 9) return {n, m};
  }
  return {};
}

PackedNmF32::PackedNmF32(size_t rows, size_t k, size_t spatial, const float* w, size_t ldw, size_t n, size_t m)
    : rows_(rows), k_(k), spatial_(spatial), n_(n), m_(m) {
  if (m != 4 && m != 8) throw std::invalid_argument("N:M weights: M must be 4 or 8, got " + std::to_string(m));
  if (n < 1 || n >= m) throw std::invalid_argument("N:M weights: need 1 <= N < M, got " + nm_pattern_name({n, m}));
  if (rows > kSparseMaxDim || k > kSparseMaxDim) {
    throw std::invalid_argument("N:M weights: rows and k must be at most " + std::to_string(kSparseMaxDim));
  }
  if (spatial == 0 || k % spatial != 0) {
    throw std::invalid_argument("N:M weights: spatial " + std::to_string(spatial) + " does not divide k " + std::to_string(k));
  }
  const size_t channels = k / spatial;
  if (channels % m != 0) {
    throw std::invalid_argument("N:M weights: M = " + std::to_string(m) + " does not divide the " +
                                std::to_string(channels) + " channels");
  }
  if (rows > 0 && k > 0) {
    if (ldw < k) throw std::invalid_argument("N:M weights: ldw " + std::to_string(ldw) + " < k " + std::to_string(k));
    if (!w) throw std::invalid_argument("N:M weights: null weight pointer");
  }
  const unsigned bits = index_bits();
  meta_bytes_ = (n * bits + 7) / 8;
  const size_t cgroups = channels / m, groups = k / m;
  values_.assign(rows * groups * n, 0.0f);
  meta_.assign(rows * groups * meta_bytes_, 0);
  for (size_t r = 0; r < rows; ++r) {
    const float* row = w + r * ldw;
    for (size_t p = 0; p < spatial; ++p) {
      for (size_t cg = 0; cg < cgroups; ++cg) {
        const size_t g = r * groups + p * cgroups + cg;
        const size_t nz = group_count(row, spatial, m, p, cg);
        if (nz > n) {
          throw std::invalid_argument("N:M weights: row " + std::to_string(r) + ", kernel position " + std::to_string(p) +
                                      ", channels " + std::to_string(cg * m) + ".." + std::to_string(cg * m + m - 1) +
                                      " hold " + std::to_string(nz) + " non-zeros, more than N = " + std::to_string(n));
        }
        nonzeros_ += nz;
        // The kept channels first (increasing), then spare slots on channels not kept, value 0:
        // distinct indices, so to_dense() and the kernels never double-count a channel.
        uint32_t word = 0;
        size_t slot = 0;
        for (size_t i = 0; i < m; ++i) {
          const float v = row[(cg * m + i) * spatial + p];
          if (!nonzero(v)) continue;
          values_[g * n + slot] = v;
          word |= static_cast<uint32_t>(i) << (slot * bits);
          ++slot;
        }
        for (size_t i = 0; i < m && slot < n; ++i) {
          if (nonzero(row[(cg * m + i) * spatial + p])) continue;
          word |= static_cast<uint32_t>(i) << (slot * bits);
          ++slot;
        }
        for (size_t b = 0; b < meta_bytes_; ++b) meta_[g * meta_bytes_ + b] = static_cast<uint8_t>(word >> (8 * b));
      }
    }
  }
}

std::vector<float> PackedNmF32::to_dense() const {
  std::vector<float> d(rows_ * k_, 0.0f);
  const unsigned bits = index_bits();
  const size_t cgroups = channel_groups(), groups = groups_per_row();
  for (size_t r = 0; r < rows_; ++r) {
    for (size_t p = 0; p < spatial_; ++p) {
      for (size_t cg = 0; cg < cgroups; ++cg) {
        const size_t g = r * groups + p * cgroups + cg;
        uint32_t word = 0;
        for (size_t b = 0; b < meta_bytes_; ++b) word |= static_cast<uint32_t>(meta_[g * meta_bytes_ + b]) << (8 * b);
        for (size_t i = 0; i < n_; ++i) {
          const size_t c = cg * m_ + ((word >> (i * bits)) & (m_ - 1));
          d[r * k_ + c * spatial_ + p] = values_[g * n_ + i];
        }
      }
    }
  }
  return d;
}

}  // namespace kiln
