// Sparse fp32 weights: the packer (round trip, block counts, refusals) and every ISA table's SpMM
// kernels against a float64 dense product of the same masked weights, at sparsities 0, 0.5, 0.9,
// 0.99 and 1 (an all-zero layer), every pattern, odd shapes, bias and ReLU, with and without
// threads, on page-guarded buffers whose unwritten parts must keep their sentinel.
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "common/dispatch.h"
#include "kiln/cpu.h"
#include "kiln/sparse.h"
#include "sparse/sparse-ukernel.h"
#include "test-util.h"

namespace {

using kiln::PackedSparseF32;
using kiln::SparsePattern;
using kiln_test::check;
using kiln_test::Guarded;
using kiln_test::Rng;

const float kSentinel = -12345.0f;
const float kSparsities[] = {0.0f, 0.5f, 0.9f, 0.99f, 1.0f};

// Dense m x k weights with whole blocks of `pattern` zeroed with probability `sparsity`.
std::vector<float> masked_weights(size_t m, size_t k, SparsePattern pattern, float sparsity, Rng& rng) {
  const size_t br = kiln::sparse_block_rows(pattern), bc = kiln::sparse_block_cols(pattern);
  std::vector<float> w(m * k);
  for (auto& v : w) v = rng.uniform();
  for (size_t r0 = 0; r0 < m; r0 += br) {
    for (size_t c0 = 0; c0 < k; c0 += bc) {
      const bool zero = sparsity >= 1.0f || static_cast<float>(rng.next() >> 40) / 16777216.0f < sparsity;
      if (!zero) continue;
      for (size_t r = r0; r < r0 + br && r < m; ++r)
        for (size_t c = c0; c < c0 + bc && c < k; ++c) w[r * k + c] = 0.0f;
    }
  }
  return w;
}

std::string name(const kiln::DispatchTable& t, SparsePattern p, size_t m, size_t k, size_t n, float s, const char* what) {
  return std::string(kiln::isa_name(t.isa)) + " " + kiln::sparse_pattern_name(p) + " m=" + std::to_string(m) +
         " k=" + std::to_string(k) + " n=" + std::to_string(n) + " s=" + std::to_string(s) + " " + what;
}

void test_case(const kiln::DispatchTable& t, SparsePattern p, size_t m, size_t k, size_t n, float s, bool bias_on,
               bool relu, size_t threads, size_t pad, Rng& rng) {
  const std::vector<float> w = masked_weights(m, k, p, s, rng);
  const PackedSparseF32 packed(m, k, w.data(), k, p);
  check(packed.to_dense() == w, name(t, p, m, k, n, s, "round trip"));
  size_t nz = 0;
  for (float v : w) nz += v != 0.0f;
  check(packed.nonzeros() == nz, name(t, p, m, k, n, s, "non-zero count"));
  if (s >= 1.0f) check(packed.blocks() == 0, name(t, p, m, k, n, s, "all-zero layer stores no block"));

  const size_t ldx = n + pad, ldy = n + pad;
  Guarded<float> x(k * ldx), y(m * ldy), bias(m);
  x.randomize(rng);
  bias.randomize(rng);
  y.fill(kSentinel);
  const float* b = bias_on ? bias.data() : nullptr;
  kiln::spmm_f32(t.f32_spmm, packed, n, x.data(), ldx, y.data(), ldy, b, relu, threads);
  const auto [ok, sentinel] = kiln_test::check_dense_product(w.data(), m, k, x.data(), ldx, y.data(), ldy, n, b, relu, kSentinel);
  check(ok, name(t, p, m, k, n, s, "equals the dense product"));
  check(sentinel, name(t, p, m, k, n, s, "leaves the row gaps alone"));
}

void test_packer() {
  const float w[] = {0, 1, 0, 0, 0, 0, 0, 2, 3, 0, 0, 0};  // 3 x 4
  const PackedSparseF32 csr(3, 4, w, 4, SparsePattern::kUnstructured);
  check(csr.blocks() == 3 && csr.nonzeros() == 3 && csr.row_ptr()[1] == 1 && csr.row_ptr()[3] == 3 && csr.col()[1] == 3,
        "CSR layout");
  const PackedSparseF32 b14(3, 4, w, 4, SparsePattern::kBlock1x4);
  check(b14.blocks() == 3 && b14.stored_values() == 12, "1x4 stores whole blocks");
  const PackedSparseF32 b41(3, 4, w, 4, SparsePattern::kBlock4x1);
  check(b41.block_rows() == 1 && b41.blocks() == 3 && b41.stored_values() == 12, "4x1 pads the last block-row");
  const PackedSparseF32 b81(3, 4, w, 4, SparsePattern::kBlock8x1);
  check(b81.block_rows() == 1 && b81.stored_values() == 24 && b81.to_dense() == std::vector<float>(w, w + 12), "8x1 round trip");
  auto refused = [](auto fn) {
    try {
      fn();
    } catch (const std::invalid_argument&) {
      return true;
    }
    return false;
  };
  check(refused([&] { PackedSparseF32(3, 3, w, 4, SparsePattern::kBlock1x4); }), "1x4 refuses k % 4 != 0");
  check(refused([&] { PackedSparseF32(3, 4, w, 3, SparsePattern::kUnstructured); }), "ldw < k refused");
  check(refused([&] { PackedSparseF32(3, 4, nullptr, 4, SparsePattern::kUnstructured); }), "null weights refused");
  check(refused([&] { PackedSparseF32(3, 4, w, 4, static_cast<SparsePattern>(7)); }), "unknown pattern refused");
  check(refused([&] { PackedSparseF32(kiln::kSparseMaxDim + 1, 1, w, 4, SparsePattern::kUnstructured); }), "huge m refused");
  SparsePattern p;
  check(kiln::parse_sparse_pattern("8x1", &p) && p == SparsePattern::kBlock8x1 && !kiln::parse_sparse_pattern("2:4", &p),
        "pattern names");
  const PackedSparseF32 empty(0, 5, nullptr, 0, SparsePattern::kBlock4x1);
  check(empty.blocks() == 0 && empty.block_rows() == 0, "empty matrix");
}

}  // namespace

int main() {
  test_packer();
  Rng rng(12);
  const size_t shapes[][3] = {{1, 4, 1}, {1, 8, 17}, {3, 4, 5}, {5, 12, 33}, {7, 16, 64}, {9, 20, 65}, {16, 36, 100},
                              {13, 28, 129}, {64, 288, 121}, {17, 8, 1}, {33, 44, 47}};
  for (kiln::Isa isa : kiln_test::isas_to_test()) {
    const kiln::DispatchTable* t = kiln::dispatch_for(isa);
    for (int pi = 0; pi < kiln::kSparsePatternCount; ++pi) {
      const SparsePattern p = static_cast<SparsePattern>(pi);
      check(t->f32_spmm.kernel[pi] != nullptr, std::string(kiln::isa_name(isa)) + " spmm kernel set");
      for (const auto& sh : shapes) {
        for (float s : kSparsities) {
          const size_t i = rng.below(4);
          test_case(*t, p, sh[0], sh[1], sh[2], s, i & 1, i & 2, 1, rng.below(3) * 5, rng);
        }
      }
      // Random shapes (k a multiple of 4 so 1x4 applies), threads on large ones.
      for (int r = 0; r < 40; ++r) {
        const size_t m = 1 + rng.below(40), k = 4 * (1 + rng.below(24)), n = 1 + rng.below(150);
        test_case(*t, p, m, k, n, kSparsities[rng.below(5)], rng.below(2), rng.below(2), 1 + rng.below(4), rng.below(3), rng);
      }
      test_case(*t, p, 64, 288, 1000, 0.9f, true, true, 4, 0, rng);
      test_case(*t, p, 128, 400, 3, 0.5f, true, false, 4, 0, rng);
    }
  }
  return kiln_test::finish("sparse-test: ");
}
