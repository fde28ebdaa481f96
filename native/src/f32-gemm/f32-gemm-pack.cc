#include "f32-gemm/f32-gemm-pack.h"

#include <cstring>

#include "kiln/f32-gemm.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace kiln {
namespace {

constexpr size_t kMr = kF32GemmMr;
constexpr size_t kNr = kF32GemmPanelN;

// dst[p * W + r] = src[r * ld + p] for r < rows (rows <= W), p < kc; rows..W-1 are zero.
// The transposing case of both packers: rows of A into an A panel, rows of B^T into a B panel.
template <size_t W>
void transpose_rows(const float* src, size_t ld, size_t rows, size_t kc, float* dst) {
  size_t p = 0;
#if defined(__SSE2__)
  if (rows == W) {
    // 4 x 4 blocks through registers: 4 loads and 4 stores per 16 elements, not 16 of each.
    for (; p + 4 <= kc; p += 4) {
      size_t r = 0;
      for (; r + 4 <= W; r += 4) {
        __m128 x0 = _mm_loadu_ps(src + (r + 0) * ld + p);
        __m128 x1 = _mm_loadu_ps(src + (r + 1) * ld + p);
        __m128 x2 = _mm_loadu_ps(src + (r + 2) * ld + p);
        __m128 x3 = _mm_loadu_ps(src + (r + 3) * ld + p);
        _MM_TRANSPOSE4_PS(x0, x1, x2, x3);
        _mm_storeu_ps(dst + (p + 0) * W + r, x0);
        _mm_storeu_ps(dst + (p + 1) * W + r, x1);
        _mm_storeu_ps(dst + (p + 2) * W + r, x2);
        _mm_storeu_ps(dst + (p + 3) * W + r, x3);
      }
      if (r + 2 == W) {  // W = 6: the last two rows interleave pairwise
        const __m128 x0 = _mm_loadu_ps(src + r * ld + p);
        const __m128 x1 = _mm_loadu_ps(src + (r + 1) * ld + p);
        const __m128 lo = _mm_unpacklo_ps(x0, x1);
        const __m128 hi = _mm_unpackhi_ps(x0, x1);
        _mm_storel_pi(reinterpret_cast<__m64*>(dst + (p + 0) * W + r), lo);
        _mm_storeh_pi(reinterpret_cast<__m64*>(dst + (p + 1) * W + r), lo);
        _mm_storel_pi(reinterpret_cast<__m64*>(dst + (p + 2) * W + r), hi);
        _mm_storeh_pi(reinterpret_cast<__m64*>(dst + (p + 3) * W + r), hi);
      } else {
        for (; r < W; ++r)
          for (size_t q = 0; q < 4; ++q) dst[(p + q) * W + r] = src[r * ld + p + q];
      }
    }
  }
#endif
  for (; p < kc; ++p) {
    size_t r = 0;
    for (; r < rows; ++r) dst[p * W + r] = src[r * ld + p];
    for (; r < W; ++r) dst[p * W + r] = 0.0f;
  }
}

// dst[p * W + j] = src[p * ld + j] for j < cols (cols <= W), p < kc; cols..W-1 are zero.
template <size_t W>
void copy_rows(const float* src, size_t ld, size_t cols, size_t kc, float* dst) {
  if (cols == W) {
    for (size_t p = 0; p < kc; ++p) std::memcpy(dst + p * W, src + p * ld, W * sizeof(float));
    return;
  }
  for (size_t p = 0; p < kc; ++p) {
    size_t j = 0;
    for (; j < cols; ++j) dst[p * W + j] = src[p * ld + j];
    for (; j < W; ++j) dst[p * W + j] = 0.0f;
  }
}

}  // namespace

void pack_a_panel(bool trans, const float* a, size_t lda, size_t i0, size_t mr, size_t p0, size_t kc,
                  float* dst) {
  if (trans) {
    copy_rows<kMr>(a + p0 * lda + i0, lda, mr, kc, dst);  // op(A) columns are rows of A
  } else {
    transpose_rows<kMr>(a + i0 * lda + p0, lda, mr, kc, dst);
  }
}

void pack_b_block(bool trans, const float* b, size_t ldb, size_t p0, size_t kc, size_t j0, size_t nc,
                  float* dst) {
  if (trans) {
    for (size_t q = 0; q * kNr < nc; ++q) {
      const size_t jq = j0 + q * kNr;
      const size_t width = nc - q * kNr < kNr ? nc - q * kNr : kNr;
      transpose_rows<kNr>(b + jq * ldb + p0, ldb, width, kc, dst + q * kc * kNr);  // op(B) rows are columns of B
    }
    return;
  }
  // Row by row, each row's panels in turn: B is read front to back, as the hardware prefetcher
  // streams it. Panel by panel (kc strided 64-byte reads per panel, each row revisited once per
  // panel) made packing cost more than the product it fed on a 1x1 convolution's planes read from
  // memory (ResNet-50's 256->64 on 56x56: 39% of the time in packing, 30% in the tile).
  const size_t full = nc / kNr, tail = nc - full * kNr;
  for (size_t p = 0; p < kc; ++p) {
    const float* src = b + (p0 + p) * ldb + j0;
    float* row = dst + p * kNr;
    for (size_t q = 0; q < full; ++q) std::memcpy(row + q * kc * kNr, src + q * kNr, kNr * sizeof(float));
    if (tail != 0) {
      float* last = row + full * kc * kNr;
      std::memcpy(last, src + full * kNr, tail * sizeof(float));
      std::memset(last + tail, 0, (kNr - tail) * sizeof(float));
    }
  }
}

}  // namespace kiln
