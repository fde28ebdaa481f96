// Packing for the int8 GEMM: weights once (PackedS8B), activations per call (one panel of rows
// at a time, in the layout the active kernel wants).
#include "s8-gemm/s8-gemm-pack.h"

#include <cstring>

#include "kiln/s8-gemm.h"
#include "s8-gemm/s8-gemm-ukernel.h"

namespace kiln {
namespace {

size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }

// Copies A(i0 + i, 4g .. 4g + 3) for every row and group through `put(dst_index, value)`.
template <typename T>
void pack_panel(const uint8_t* a, size_t lda, size_t i0, size_t rows, size_t mr, size_t k,
                size_t groups, T* dst) {
  const size_t full = k / kS8KGroup;  // groups with 4 valid k
  for (size_t i = 0; i < mr; ++i) {
    T* out = dst + i * kS8KGroup;
    const size_t stride = mr * kS8KGroup;
    if (i >= rows) {
      for (size_t g = 0; g < groups; ++g) std::memset(out + g * stride, 0, kS8KGroup * sizeof(T));
      continue;
    }
    const uint8_t* row = a + (i0 + i) * lda;
    size_t g = 0;
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

}  // namespace

void pack_s8_a_u8(const uint8_t* a, size_t lda, size_t i0, size_t rows, size_t mr, size_t k,
                  size_t groups, uint8_t* dst) {
  pack_panel<uint8_t>(a, lda, i0, rows, mr, k, groups, dst);
}

void pack_s8_a_i16(const uint8_t* a, size_t lda, size_t i0, size_t rows, size_t mr, size_t k,
                   size_t groups, int16_t* dst) {
  pack_panel<int16_t>(a, lda, i0, rows, mr, k, groups, dst);
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
