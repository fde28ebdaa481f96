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

// Applied to each output element after the product, in this order: bias, ReLU.
struct GemmEpilogue {
  const float* bias = nullptr;       // length M (kPerRow) or N (kPerColumn)
  BiasMode bias_mode = BiasMode::kNone;
  bool relu = false;
};

// ---- Packing geometry and micro-kernel contract (used by the dispatch table) ----
// Every ISA shares one packed layout, so packed operands stay valid across set_active_isa():
// A is packed in panels of kF32GemmMr rows (a[k*kF32GemmMr + i], zero-padded rows), B in panels
// of kF32GemmPanelN columns (b[k*kF32GemmPanelN + j], zero-padded columns). A micro-kernel whose
// NR is a multiple of kF32GemmPanelN reads NR / kF32GemmPanelN neighbouring B panels at once.
constexpr size_t kF32GemmMr = 6;
constexpr size_t kF32GemmPanelN = 16;

// One output tile of at most kF32GemmMr x NR elements.
struct F32GemmTile {
  const float* a = nullptr;    // packed A panel, a[p * kF32GemmMr + i]
  const float* b = nullptr;    // B(p, j) at b[p * b_k_stride + (j / 16) * b_panel_stride + j % 16]
  size_t b_k_stride = 0;       // floats between consecutive k of B
  size_t b_panel_stride = 0;   // floats between 16-column panels of B
  bool b_padded = false;       // B columns past nr up to the panel end may be read (they are zeros)
  float* c = nullptr;
  size_t ldc = 0;
  size_t mr = 0, nr = 0, k = 0;  // 1 <= mr <= kF32GemmMr, 1 <= nr <= NR, k >= 1
  float alpha = 1.0f;
  bool load_c = false;           // false: C is write-only (its old content, NaN included, is ignored)
  float beta = 0.0f;             // C = alpha * sum + beta * C when load_c
  // Epilogue, applied after the sum (only on the last K block): bias then ReLU.
  const float* row_bias = nullptr;  // mr values, or null
  const float* col_bias = nullptr;  // nr values, or null
  bool relu = false;
};

using F32GemmUkernelFn = void (*)(const F32GemmTile& tile);
// y[0, N) = x[0, K) * B + epilogue for one row against a PackedB (panels of kF32GemmPanelN columns,
// `b_panel_stride` = K * kF32GemmPanelN floats apart). The sum over K runs in blocks of
// `kc`, each summed from zero and then added to the previous blocks, as the tiled path does.
using F32GemvPackedFn = void (*)(const float* x, size_t k, size_t kc, const float* b, size_t n, float* y,
                                 const float* col_bias, bool relu);
// Runs `iterations` rounds of a register-only FMA loop; returns the floating-point operations done.
using F32PeakLoopFn = double (*)(size_t iterations);

struct F32GemmKernels {
  size_t mr = 0;  // rows per tile (kF32GemmMr)
  size_t nr = 0;  // columns per tile (a multiple of kF32GemmPanelN)
  F32GemmUkernelFn ukernel = nullptr;
  F32PeakLoopFn peak_loop = nullptr;
  // One-row product against a PackedB (a Linear layer at batch 1), or null: the tiled path.
  F32GemvPackedFn gemv_packed = nullptr;
};

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
