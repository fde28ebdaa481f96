// Single-precision GEMM: blocked, packed, multi-threaded, dispatched per ISA.
// All matrices are row-major. Nothing here knows about Node.
#pragma once
#include <cstddef>
#include <vector>

namespace kiln {

enum class BiasMode { kNone, kPerRow, kPerColumn };

// Applied to each output element after the product, in this order: bias, ReLU.
struct GemmEpilogue {
  const float* bias = nullptr;       // length M (kPerRow) or N (kPerColumn)
  BiasMode bias_mode = BiasMode::kNone;
  bool relu = false;
};

// Micro-kernel entries of the dispatch table (filled by f32-gemm-<isa>.cc).
// C[mr x nr] = (accumulate ? C : 0) + sum_k a[k*MR + i] * b[k*NR + j] for a tile of at most MR x NR.
using F32GemmUkernelFn = void (*)(size_t mr, size_t nr, size_t k, const float* a_packed,
                                  const float* b_packed, float* c, size_t ldc, bool accumulate);
struct F32GemmKernels {
  size_t mr = 0;
  size_t nr = 0;
  F32GemmUkernelFn ukernel = nullptr;
};

// C = alpha * op(A) * op(B) + beta * C, then the epilogue. op(A) is M x K, op(B) is K x N.
// beta == 0 means C is write-only (NaN in C does not leak through).
// max_threads 0 = the pool size.
void sgemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha, const float* a,
           size_t lda, const float* b, size_t ldb, float beta, float* c, size_t ldc,
           const GemmEpilogue& epilogue = GemmEpilogue(), size_t max_threads = 0);

// A left operand packed once (e.g. conv weights, Cout x Cin*KH*KW) for repeated products.
// The layout is valid for every ISA (the packing panel width is shared), so switching ISA
// after packing stays correct.
class PackedA {
 public:
  PackedA() = default;
  PackedA(bool trans, size_t m, size_t k, const float* a, size_t lda);
  size_t rows() const { return m_; }
  size_t depth() const { return k_; }
  const float* data() const { return data_.data(); }
  size_t bytes() const { return data_.size() * sizeof(float); }

 private:
  size_t m_ = 0, k_ = 0;
  std::vector<float> data_;
};

// A right operand packed once (e.g. Linear weights, used as W^T: in_features x out_features).
class PackedB {
 public:
  PackedB() = default;
  PackedB(bool trans, size_t k, size_t n, const float* b, size_t ldb);
  size_t cols() const { return n_; }
  size_t depth() const { return k_; }
  const float* data() const { return data_.data(); }
  size_t bytes() const { return data_.size() * sizeof(float); }

 private:
  size_t k_ = 0, n_ = 0;
  std::vector<float> data_;
};

// C[M x N] = A_packed * op(B) + epilogue.
void sgemm_packed_a(const PackedA& a, size_t n, bool trans_b, const float* b, size_t ldb, float* c,
                    size_t ldc, const GemmEpilogue& epilogue = GemmEpilogue(),
                    size_t max_threads = 0);
// C[M x N] = op(A) * B_packed + epilogue.
void sgemm_packed_b(size_t m, bool trans_a, const float* a, size_t lda, const PackedB& b, float* c,
                    size_t ldc, const GemmEpilogue& epilogue = GemmEpilogue(),
                    size_t max_threads = 0);

// Naive triple loop in double precision: the oracle for tests and the C++ benchmarks.
void sgemm_naive(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha,
                 const float* a, size_t lda, const float* b, size_t ldb, float beta, float* c,
                 size_t ldc, const GemmEpilogue& epilogue = GemmEpilogue());

}  // namespace kiln
