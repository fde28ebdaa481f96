// Packing for the int8 GEMM: weights once (PackedS8B), activations per call (one panel of rows
// at a time, in the layout the active kernel wants).
#include "s8-gemm/s8-gemm-pack.h"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kiln/s8-gemm.h"
#include "s8-gemm/s8-gemm-ukernel.h"

namespace kiln {
namespace {

size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }

// Groups [g_begin, groups) of a panel, element by element: rows past `rows` and k past `k` are
// zero. The portable path, and the tail of the SSE2 ones.
template <typename T>
void pack_panel(const uint8_t* a, size_t lda, size_t i0, size_t rows, size_t mr, size_t k,
                size_t g_begin, size_t groups, T* dst) {
  const size_t full = k / kS8KGroup;  // groups with 4 valid k
  const size_t stride = mr * kS8KGroup;
  for (size_t i = 0; i < mr; ++i) {
    T* out = dst + i * kS8KGroup;
    if (i >= rows) {
      for (size_t g = g_begin; g < groups; ++g) std::memset(out + g * stride, 0, kS8KGroup * sizeof(T));
      continue;
    }
    const uint8_t* row = a + (i0 + i) * lda;
    size_t g = g_begin;
    for (; g < full; ++g) {
      const uint8_t* src = row + g * kS8KGroup;
      T* o = out + g * stride;
      o[0] = static_cast<T>(src[0]);
      o[1] = static_cast<T>(src[1]);
      o[2] = static_cast<T>(src[2]);
      o[3] = static_cast<T>(src[3]);
    }
    for (; g < groups; ++g) {  // the partial last group (K % 4 != 0)
      T* o = out + g * stride;
      for (size_t t = 0; t < kS8KGroup; ++t) {
        const size_t p = g * kS8KGroup + t;
        o[t] = p < k ? static_cast<T>(row[p]) : T(0);
      }
    }
  }
}

// Packing is a transpose of 4-byte quads (rows x groups -> groups x rows). For small N it costs
// as much as a third of the product when done byte by byte, so full panels go through SSE2 in
// blocks of 4 groups (16 bytes of each row). Each returns the number of groups it packed.
#if defined(__SSE2__)
constexpr size_t kBlock = 4;  // groups per SSE2 block

size_t pack_u8_sse2(const uint8_t* a, size_t lda, size_t i0, size_t mr, size_t full, uint8_t* dst) {
  if (mr != 4 && mr != 6) return 0;
  const size_t blocks = full / kBlock;
  const size_t stride = mr * kS8KGroup;  // bytes per group
  for (size_t q = 0; q < blocks; ++q) {
    const uint8_t* src = a + i0 * lda + q * kBlock * kS8KGroup;
    uint8_t* d = dst + q * kBlock * stride;
    auto row = [&](size_t i) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i * lda)); };
    // Rows 0-3: a 4 x 4 transpose of 32-bit quads.
    const __m128i x0 = row(0), x1 = row(1), x2 = row(2), x3 = row(3);
    const __m128i t0 = _mm_unpacklo_epi32(x0, x1), t1 = _mm_unpacklo_epi32(x2, x3);
    const __m128i t2 = _mm_unpackhi_epi32(x0, x1), t3 = _mm_unpackhi_epi32(x2, x3);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 0 * stride), _mm_unpacklo_epi64(t0, t1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 1 * stride), _mm_unpackhi_epi64(t0, t1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 2 * stride), _mm_unpacklo_epi64(t2, t3));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 3 * stride), _mm_unpackhi_epi64(t2, t3));
    if (mr == 6) {  // rows 4-5: pairs of quads
      const __m128i lo = _mm_unpacklo_epi32(row(4), row(5)), hi = _mm_unpackhi_epi32(row(4), row(5));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d + 0 * stride + 16), lo);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d + 1 * stride + 16), _mm_unpackhi_epi64(lo, lo));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d + 2 * stride + 16), hi);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d + 3 * stride + 16), _mm_unpackhi_epi64(hi, hi));
    }
  }
  return blocks * kBlock;
}

size_t pack_i16_sse2(const uint8_t* a, size_t lda, size_t i0, size_t mr, size_t full, int16_t* dst) {
  if (mr % 2 != 0) return 0;
  const size_t blocks = full / kBlock;
  const size_t stride = mr * kS8KGroup;  // int16 per group
  const __m128i zero = _mm_setzero_si128();
  for (size_t q = 0; q < blocks; ++q) {
    const uint8_t* src = a + i0 * lda + q * kBlock * kS8KGroup;
    int16_t* d = dst + q * kBlock * stride;
    for (size_t i = 0; i < mr; i += 2) {  // two rows make one 16-byte store per group
      const __m128i x0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i * lda));
      const __m128i x1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + (i + 1) * lda));
      // Widened: groups 0-1 and 2-3 of each row, 8 bytes (4 int16) per group.
      const __m128i a01 = _mm_unpacklo_epi8(x0, zero), a23 = _mm_unpackhi_epi8(x0, zero);
      const __m128i b01 = _mm_unpacklo_epi8(x1, zero), b23 = _mm_unpackhi_epi8(x1, zero);
      int16_t* o = d + i * kS8KGroup;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 0 * stride), _mm_unpacklo_epi64(a01, b01));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 1 * stride), _mm_unpackhi_epi64(a01, b01));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 2 * stride), _mm_unpacklo_epi64(a23, b23));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 3 * stride), _mm_unpackhi_epi64(a23, b23));
    }
  }
  return blocks * kBlock;
}
#endif

}  // namespace

void pack_s8_a_u8(const uint8_t* a, size_t lda, size_t i0, size_t rows, size_t mr, size_t k,
                  size_t groups, uint8_t* dst) {
  size_t done = 0;
#if defined(__SSE2__)
  if (rows == mr) done = pack_u8_sse2(a, lda, i0, mr, k / kS8KGroup, dst);
#endif
  pack_panel<uint8_t>(a, lda, i0, rows, mr, k, done, groups, dst);
}

void pack_s8_a_i16(const uint8_t* a, size_t lda, size_t i0, size_t rows, size_t mr, size_t k,
                   size_t groups, int16_t* dst) {
  size_t done = 0;
#if defined(__SSE2__)
  if (rows == mr) done = pack_i16_sse2(a, lda, i0, mr, k / kS8KGroup, dst);
#endif
  pack_panel<int16_t>(a, lda, i0, rows, mr, k, done, groups, dst);
}

PackedS8B::PackedS8B(bool trans, size_t k, size_t n, const int8_t* b, size_t ldb)
    : k_(k), n_(n), kp_(div_up(k, kS8KGroup) * kS8KGroup) {
  const size_t panels = div_up(n, kS8PanelN);
  data_.assign(panels * kp_ * kS8PanelN, 0);
  col_sums_.assign(n, 0);
  // Column sums wrap like the kernels' sums (|sum| <= 128 * K: exact below K = 2^24).
  uint32_t sums[kS8PanelN];
  for (size_t q = 0; q < panels; ++q) {
    const size_t j0 = q * kS8PanelN;
    const size_t width = n - j0 < kS8PanelN ? n - j0 : kS8PanelN;
    int8_t* panel = data_.data() + q * kp_ * kS8PanelN;
    for (size_t j = 0; j < width; ++j) sums[j] = 0;
    for (size_t p = 0; p < k; ++p) {
      int8_t* dst = panel + (p / kS8KGroup) * kS8GroupBytes + p % kS8KGroup;
      // Both orders read the source sequentially: along a row of B, or along a row of B^T.
      for (size_t j = 0; j < width; ++j) {
        const int8_t v = trans ? b[(j0 + j) * ldb + p] : b[p * ldb + j0 + j];
        dst[j * kS8KGroup] = v;
        sums[j] += static_cast<uint32_t>(static_cast<int32_t>(v));
      }
    }
    for (size_t j = 0; j < width; ++j) col_sums_[j0 + j] = static_cast<int32_t>(sums[j]);
  }
}

}  // namespace kiln
