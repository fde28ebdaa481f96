// Scalar int8 GEMM: the portable micro-kernel (the fallback on CPUs without AVX2) and the naive
// oracle the tests and benchmarks check every ISA against.
#include "common/dispatch.h"
#include "kiln/s8-gemm.h"
#include "quant/requantize.h"
#include "s8-gemm/s8-gemm-ukernel.h"

namespace kiln {
namespace {

constexpr size_t kMr = 4;
constexpr size_t kNr = 16;

// Writes one finished sum through the tile's epilogue.
void store(const S8GemmTile& t, size_t i, size_t j, int32_t acc) {
  const int32_t x = wrap_add(acc, t.offset[j]);
  switch (t.out) {
    case S8Output::kInt32:
      static_cast<int32_t*>(t.c)[i * t.ldc + j] = x;
      break;
    case S8Output::kU8:
      static_cast<uint8_t*>(t.c)[i * t.ldc + j] = requantize_u8(x, t.scale[j], t.zero_point, t.lo, t.hi);
      break;
    case S8Output::kF32:
      static_cast<float*>(t.c)[i * t.ldc + j] = dequantize_f32(x, t.scale[j], t.bias[j]);
      break;
  }
}

}  // namespace

void s8_gemm_4x16_scalar(const S8GemmTile& t) {
  const uint8_t* a = static_cast<const uint8_t*>(t.a);
  int32_t acc[kMr][kNr] = {};
  for (size_t g = 0; g < t.groups; ++g) {
    const int8_t* b = t.b + g * kS8GroupBytes;
    for (size_t i = 0; i < t.mr; ++i) {
      // Row i's 4 bytes of group g: in place / packed, or through the row pointers.
      const uint8_t* ag = t.a_rows ? t.a_rows[g / t.a_segment_groups * t.a_rows_stride + i] + g % t.a_segment_groups * kS8KGroup
                                   : a + g * t.a_group_stride + i * t.a_row_stride;
      for (size_t j = 0; j < t.nr; ++j) {
        int32_t s = 0;  // 4 products: |s| <= 4 * 255 * 128, no overflow
        for (size_t q = 0; q < kS8KGroup; ++q) {
          s += static_cast<int32_t>(ag[q]) * static_cast<int32_t>(b[j * kS8KGroup + q]);
        }
        acc[i][j] = wrap_add(acc[i][j], s);
      }
    }
  }
  for (size_t i = 0; i < t.mr; ++i)
    for (size_t j = 0; j < t.nr; ++j) store(t, i, j, acc[i][j]);
}

// Independent multiply-add chains (acc = acc * x + y) on values the compiler cannot see through.
double s8_gemm_peak_scalar(size_t iterations) {
  constexpr int kChains = 8;
  uint32_t acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = static_cast<uint32_t>(i);
  uint32_t x = 3, y = 5;
  __asm__("" : "+r"(x), "+r"(y));
  for (size_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * x + y;
  }
  uint32_t sum = 0;
  for (int i = 0; i < kChains; ++i) sum += acc[i];
  volatile uint32_t sink = sum;
  (void)sink;
  return static_cast<double>(iterations) * kChains;
}

void fill_s8_gemm_scalar(DispatchTable* table) {
  S8GemmKernels& k = table->s8_gemm;
  k = {"scalar", kMr, kNr, S8ALayout::kU8, s8_gemm_4x16_scalar, s8_gemm_peak_scalar};
  table->s8_gemm_avxvnni = S8GemmKernels();
}

void s8gemm_naive(bool trans_b, size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                  uint8_t a_zero_point, const int8_t* b, size_t ldb, const int32_t* bias,
                  int32_t* c, size_t ldc) {
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < n; ++j) {
      int64_t s = bias ? bias[j] : 0;
      for (size_t p = 0; p < k; ++p) {
        const int64_t bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        s += (static_cast<int64_t>(a[i * lda + p]) - a_zero_point) * bv;
      }
      c[i * ldc + j] = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(s)));
    }
  }
}

}  // namespace kiln
