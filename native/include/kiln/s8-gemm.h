// int8 GEMM with ONNX QGemm / QLinearConv semantics: uint8 activations (zero point za) times int8
// symmetric weights (zero point 0), summed exactly in int32, then one of three epilogues:
//   acc[m][n] = sum_k A[m][k] * B[k][n] - za * colsum_B[n] + bias[n]          (int32, exact)
//   u8  : clamp(round_half_even(float(acc) * scale[n]), min - zo, max - zo) + zo  (requantize)
//   f32 : fma(float(acc), scale[n], out_bias[n])                              (dequantize)
// Every ISA path gives the same bits as the scalar one: the sum is exact integer arithmetic and
// the epilogue is the same sequence of correctly rounded float32 operations (default rounding
// mode, which Node never changes). Integer sums wrap modulo 2^32 identically on every path; they
// are exact while |acc| < 2^31, which always holds for K <= 65793 without bias.
// Row-major throughout. Nothing here knows about Node.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kiln/f32-gemm.h"  // CacheAlignedAllocator

namespace kiln {

// Weights (the right operand, K x N) packed once in the layout every int8 micro-kernel reads:
// panels of 16 columns; in a panel, K in groups of 4 (zero-padded to a multiple of 4) and each
// group stored as 16 columns x 4 consecutive k (64 bytes: one vpdpbusd operand).
// Element (p, j) at data()[(j / 16) * padded_depth() * 16 + (p / 4) * 64 + (j % 16) * 4 + p % 4];
// columns past cols() in the last panel are zero. The layout is shared by every ISA, so a packed
// operand stays valid across set_active_isa().
class PackedS8B {
 public:
  PackedS8B() = default;
  // B(p, j) = trans ? b[j * ldb + p] : b[p * ldb + j]  (trans: weights stored N x K, as OIHW conv
  // weights and ONNX Gemm with transB are).
  PackedS8B(bool trans, size_t k, size_t n, const int8_t* b, size_t ldb);
  size_t cols() const { return n_; }
  size_t depth() const { return k_; }
  size_t padded_depth() const { return kp_; }
  const int8_t* data() const { return data_.data(); }
  // sum_p B(p, j) for each column: the zero-point correction is za * column_sums()[j].
  const int32_t* column_sums() const { return col_sums_.data(); }
  size_t bytes() const { return data_.size() + col_sums_.size() * sizeof(int32_t); }

 private:
  size_t k_ = 0, n_ = 0, kp_ = 0;
  std::vector<int8_t, CacheAlignedAllocator<int8_t>> data_;
  std::vector<int32_t> col_sums_;
};

// Requantize to uint8: out = clamp(round_half_even(float(acc) * scale[n]), min - zero_point,
// max - zero_point) + zero_point. A fused ReLU is min = zero_point.
struct S8Requantization {
  const float* scale = nullptr;  // N multipliers sa * sw[n] / so (finite)
  uint8_t zero_point = 0;
  uint8_t min = 0, max = 255;    // min <= max
};

// Dequantize to float: out = fma(float(acc), scale[n], bias[n]) (one rounding).
struct S8Dequantization {
  const float* scale = nullptr;  // N values sa * sw[n]
  const float* bias = nullptr;   // N values, or null for 0
};

// C (int32, M x N) = A (uint8, M x K) * B - za * colsum_B + bias. bias: N values or null.
// max_threads 0 = the pool size. Results do not depend on the thread count or the ISA.
void s8gemm(size_t m, const uint8_t* a, size_t lda, uint8_t a_zero_point, const PackedS8B& b,
            const int32_t* bias, int32_t* c, size_t ldc, size_t max_threads = 0);
// Same sum, requantized to uint8 in the micro-kernel (no int32 round trip through memory).
void s8gemm_requantize(size_t m, const uint8_t* a, size_t lda, uint8_t a_zero_point,
                       const PackedS8B& b, const int32_t* bias, const S8Requantization& rq,
                       uint8_t* c, size_t ldc, size_t max_threads = 0);
// Same sum, dequantized to float in the micro-kernel.
void s8gemm_dequantize(size_t m, const uint8_t* a, size_t lda, uint8_t a_zero_point,
                       const PackedS8B& b, const int32_t* bias, const S8Dequantization& dq,
                       float* c, size_t ldc, size_t max_threads = 0);

// The oracle: a naive triple loop on unpacked B (int64 sums, wrapped to int32 like the kernels).
void s8gemm_naive(bool trans_b, size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                  uint8_t a_zero_point, const int8_t* b, size_t ldb, const int32_t* bias,
                  int32_t* c, size_t ldc);

// Which micro-kernel family the int8 GEMM runs: the active ISA's ("scalar", "avx2" (exact
// vpmaddwd), "avx512bw" (exact vpmaddwd), "avx512vnni", or "avxvnni" on CPUs with AVX-VNNI but
// no AVX512-VNNI), unless AVX-VNNI is forced.
const char* s8_gemm_kernel_name();
// Forces the AVX-VNNI (VEX vpdpbusd on ymm) kernels at every ISA level above scalar, so tests
// and benchmarks can run them on CPUs that would pick AVX512-VNNI. Returns false (and changes
// nothing) when the CPU lacks AVX-VNNI.
bool set_s8_gemm_force_avxvnni(bool force);

// Single-core throughput of the active int8 kernel family's multiply-add instruction mix
// (vpdpbusd, or vpmaddwd + vpaddd on the exact AVX2/AVX-512BW paths), in int8 GMAC/s,
// measured on the calling thread for about `milliseconds`.
double measure_s8_peak_gmacs(double milliseconds);

}  // namespace kiln
