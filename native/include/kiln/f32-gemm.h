// Single-precision GEMM: blocked, packed, multi-threaded, dispatched per ISA.
// All matrices are row-major. Nothing here knows about Node.
#pragma once
#include <cstddef>
#include <new>
#include <vector>

namespace kiln {

// 64-byte aligned storage, so packed panels start on a cache line (one zmm load per panel row).
template <typename T>
struct CacheAlignedAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheAlignedAllocator() = default;
  template <typename U>
  CacheAlignedAllocator(const CacheAlignedAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kAlign); }
  template <typename U>
  bool operator==(const CacheAlignedAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const CacheAlignedAllocator<U>&) const { return false; }
};
using AlignedFloats = std::vector<float, CacheAlignedAllocator<float>>;

enum class BiasMode { kNone, kPerRow, kPerColumn };

// Applied to each output element after the product, in this order: C's old content (accumulate),
// bias, ReLU, clamp, post.
struct GemmEpilogue {
  // C's old content is added to the product before the bias, as beta = 1 would (sgemm: beta + 1):
  // a residual block's sum written over its residual, read where the product goes.
  bool accumulate = false;
  const float* bias = nullptr;       // length M (kPerRow) or N (kPerColumn)
  BiasMode bias_mode = BiasMode::kNone;
  bool relu = false;
  // Then clamp to [clamp_lo, clamp_hi] (Clip, ReLU6); NaN passes.
  bool clamp = false;
  float clamp_lo = 0.0f, clamp_hi = 0.0f;
  // Last, when set: post(post_ctx, values, n) in place on each finished piece of a row of C, while
  // it is still in cache (an element-wise activation the flags above do not have, e.g. SiLU).
  void (*post)(const void* ctx, float* values, size_t n) = nullptr;
  const void* post_ctx = nullptr;
};

// ---- Packing geometry (the micro-kernel contract is internal: native/src/f32-gemm/f32-gemm-ukernel.h) ----
// Every ISA shares one packed layout, so packed operands stay valid across set_active_isa():
// A is packed in panels of kF32GemmMr rows (a[k*kF32GemmMr + i], zero-padded rows), B in panels
// of kF32GemmPanelN columns (b[k*kF32GemmPanelN + j], zero-padded columns). A micro-kernel whose
// NR is a multiple of kF32GemmPanelN reads NR / kF32GemmPanelN neighbouring B panels at once.
constexpr size_t kF32GemmMr = 6;
constexpr size_t kF32GemmPanelN = 16;

// Single-core throughput of the active ISA's FMA loop in GFLOP/s (2 flops per FMA lane), measured
// on the calling thread for about `milliseconds`.
double measure_f32_peak_gflops(double milliseconds);

// C = alpha * op(A) * op(B) + beta * C, then the epilogue. op(A) is M x K, op(B) is K x N.
// beta == 0 means C is write-only (NaN in C does not leak through).
// max_threads 0 = the pool size.
void sgemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha, const float* a,
           size_t lda, const float* b, size_t ldb, float beta, float* c, size_t ldc,
           const GemmEpilogue& epilogue = GemmEpilogue(), size_t max_threads = 0);

// A left operand packed once (e.g. conv weights, Cout x Cin*KH*KW) for repeated products.
// The layout is valid for every ISA (the packing panel width is shared), so switching ISA
// after packing stays correct: panels of kF32GemmMr rows over the whole depth,
// element (i, p) at data()[((i / kF32GemmMr) * depth() + p) * kF32GemmMr + i % kF32GemmMr].
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
  AlignedFloats data_;
};

// A right operand packed once (e.g. Linear weights, used as W^T: in_features x out_features).
// Panels of kF32GemmPanelN columns over the whole depth, element (p, j) at
// data()[((j / kF32GemmPanelN) * depth() + p) * kF32GemmPanelN + j % kF32GemmPanelN].
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
  AlignedFloats data_;
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
