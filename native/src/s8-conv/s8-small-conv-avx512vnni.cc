// The small-patch QLinearConv + 2x2/2 max pool kernel on AVX-512 VNNI (s8-conv/s8-small-conv.h):
// per pooled pixel, its four convolution pixels' sums for 16 or 32 channels live in 4 x V
// registers; each 4-byte input group is broadcast once per pixel and meets V weight vectors.
#include "common/simd.h"

#include <cstring>

#include "s8-conv/s8-small-conv.h"

namespace kiln {
namespace {

inline __m512i broadcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// The pool and requantization of one pooled pixel: the max of its four convolution pixels' sums
// (4 x V vectors), then requantized to uint8 and stored (the last vector under the channel mask).
template <int V>
struct PoolStore {
  __m512 scale[V];
  __m512 lo, hi;
  __m512i zp;
  __mmask16 tail;
  explicit PoolStore(const S8SmallConvKernel& k) {
    for (int v = 0; v < V; ++v) scale[v] = _mm512_loadu_ps(k.scale + 16 * v);
    lo = _mm512_set1_ps(k.lo);
    hi = _mm512_set1_ps(k.hi);
    zp = _mm512_set1_epi32(k.zero_point);
    const size_t last = k.out_channels - 16 * (V - 1);  // channels of the last vector
    tail = last >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << last) - 1);
  }
  void operator()(const __m512i (&acc)[4][V], uint8_t* y) const {
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      const __m512i m = _mm512_max_epi32(_mm512_max_epi32(acc[0][v], acc[1][v]), _mm512_max_epi32(acc[2][v], acc[3][v]));
      __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(m), scale[v]);
      f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
      const __m128i b = _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(f), zp));
      if (v + 1 < V) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + 16 * v), b);
      } else {
        _mm_mask_storeu_epi8(y + 16 * v, tail, b);
      }
    }
  }
};

template <int V, int G>
void rows(const S8SmallConvKernel& k, const uint8_t* in, uint8_t* out, size_t row0, size_t row1) {
  const size_t row_bytes = k.width * k.channels, c = k.channels, o_count = k.out_channels;
  __m512i w[G][V];
  for (int g = 0; g < G; ++g) {
    for (int v = 0; v < V; ++v) w[g][v] = _mm512_loadu_si512(k.weight + (g * V + v) * 64);
  }
  int32_t off[G];
  for (int g = 0; g < G; ++g) off[g] = k.group_offset[g];
  __m512i bias[V];
  for (int v = 0; v < V; ++v) bias[v] = _mm512_loadu_si512(k.offset + 16 * v);
  const PoolStore<V> store(k);
  for (size_t py = row0; py < row1; ++py) {
    const uint8_t* top = in + 2 * py * row_bytes;
    uint8_t* y = out + py * k.pooled_w * o_count;
    for (size_t px = 0; px < k.pooled_w; ++px, y += o_count) {
      const uint8_t* p[4] = {top + 2 * px * c, top + (2 * px + 1) * c, top + row_bytes + 2 * px * c,
                             top + row_bytes + (2 * px + 1) * c};
      __m512i acc[4][V];
      for (int q = 0; q < 4; ++q) {
        for (int v = 0; v < V; ++v) acc[q][v] = bias[v];
      }
      for (int g = 0; g < G; ++g) {
        for (int q = 0; q < 4; ++q) {
          const __m512i x = broadcast4(p[q] + off[g]);
          for (int v = 0; v < V; ++v) acc[q][v] = _mm512_dpbusd_epi32(acc[q][v], x, w[g][v]);
        }
      }
      store(acc, y);
    }
  }
}

// A 3x3 kernel over C = 1 or 3 channels (SeedCNN's MNIST and CIFAR conv1), P pooled pixels per
// step: their 4 x V x P sums are independent chains. One pooled pixel at a time (the general
// kernel above: 8 chains of G vpdpbusd, then its requantization) is bound by the instruction's
// latency: CIFAR conv1 (G = 9) ran at 41% of the VNNI peak, 54% of what its 75% lane use
// allows. With C known, every input byte is one of the four input rows the pooled row reads plus
// a constant, so four pointers address all of them; the weights come from L1, one load per
// group and vector for the 4 x P broadcasts that meet them, leaving the registers to the sums.
template <int V, int C, int P>
inline void pooled_pixels_3x3(const uint8_t* const (&row)[4], const int8_t* weight, const __m512i (&bias)[V],
                              __m512i (&acc)[P][4][V]) {
  constexpr int kGroupsPerRow = (3 * C + 3) / 4;
#pragma GCC unroll 4
  for (int i = 0; i < P; ++i) {
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[i][q][v] = bias[v];
    }
  }
#pragma GCC unroll 3
  for (int kr = 0; kr < 3; ++kr) {
#pragma GCC unroll 3
    for (int j = 0; j < kGroupsPerRow; ++j) {
      __m512i w[V];
      const int8_t* wg = weight + (kr * kGroupsPerRow + j) * V * 64;
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) w[v] = _mm512_loadu_si512(wg + v * 64);
#pragma GCC unroll 4
      for (int i = 0; i < P; ++i) {
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          const __m512i x = broadcast4(row[kr + (q >> 1)] + (2 * i + (q & 1)) * C + 4 * j);
#pragma GCC unroll 2
          for (int v = 0; v < V; ++v) acc[i][q][v] = _mm512_dpbusd_epi32(acc[i][q][v], x, w[v]);
        }
      }
    }
  }
}

template <int V, int C, int P>
void rows_3x3(const S8SmallConvKernel& k, const uint8_t* in, uint8_t* out, size_t row0, size_t row1) {
  const size_t row_bytes = k.width * C, o_count = k.out_channels;
  __m512i bias[V];
  for (int v = 0; v < V; ++v) bias[v] = _mm512_loadu_si512(k.offset + 16 * v);
  const PoolStore<V> store(k);

  for (size_t py = row0; py < row1; ++py) {
    const uint8_t* row[4];
    for (int r = 0; r < 4; ++r) row[r] = in + (2 * py + r) * row_bytes;
    uint8_t* y = out + py * k.pooled_w * o_count;
    size_t px = 0;
    for (; px + P <= k.pooled_w; px += P) {
      __m512i acc[P][4][V];
      pooled_pixels_3x3<V, C, P>(row, k.weight, bias, acc);
#pragma GCC unroll 4
      for (int i = 0; i < P; ++i) store(acc[i], y + (px + i) * o_count);
      for (int r = 0; r < 4; ++r) row[r] += 2 * C * P;
    }
    for (; px < k.pooled_w; ++px) {
      __m512i acc[1][4][V];
      pooled_pixels_3x3<V, C, 1>(row, k.weight, bias, acc);
      store(acc[0], y + px * o_count);
      for (int r = 0; r < 4; ++r) row[r] += 2 * C;
    }
  }
}

template <int V>
void dispatch_groups(const S8SmallConvKernel& k, const uint8_t* in, uint8_t* out, size_t row0, size_t row1) {
  switch (k.groups) {
    case 1: return rows<V, 1>(k, in, out, row0, row1);
    case 2: return rows<V, 2>(k, in, out, row0, row1);
    case 3: return rows<V, 3>(k, in, out, row0, row1);
    case 4: return rows<V, 4>(k, in, out, row0, row1);
    case 5: return rows<V, 5>(k, in, out, row0, row1);
    case 6: return rows<V, 6>(k, in, out, row0, row1);
    case 7: return rows<V, 7>(k, in, out, row0, row1);
    case 8: return rows<V, 8>(k, in, out, row0, row1);
    case 9: return rows<V, 9>(k, in, out, row0, row1);
    case 10: return rows<V, 10>(k, in, out, row0, row1);
    case 11: return rows<V, 11>(k, in, out, row0, row1);
    default: return rows<V, 12>(k, in, out, row0, row1);
  }
}

}  // namespace

void s8_small_conv_pool_avx512vnni(const S8SmallConvKernel& k, const uint8_t* in, uint8_t* out, size_t row0,
                                   size_t row1) {
  // Pooled pixels per step: 2 for 32 channels (16 sums), 4 for 16 (16 sums). CIFAR conv1 at
  // batch 64, 1 thread, the kernel alone: 0.24-0.26 ms one at a time, 0.21-0.23 ms two, 0.40 ms
  // three (GCC 12 spills the 24 sums: 106 zmm stores to the stack in the step's code).
  if (k.kernel_h == 3 && k.kernel_w == 3 && (k.channels == 1 || k.channels == 3)) {
    const bool two = k.vectors == 2;
    if (k.channels == 1) return two ? rows_3x3<2, 1, 2>(k, in, out, row0, row1) : rows_3x3<1, 1, 4>(k, in, out, row0, row1);
    return two ? rows_3x3<2, 3, 2>(k, in, out, row0, row1) : rows_3x3<1, 3, 4>(k, in, out, row0, row1);
  }
  if (k.vectors == 1) {
    dispatch_groups<1>(k, in, out, row0, row1);
  } else {
    dispatch_groups<2>(k, in, out, row0, row1);
  }
}

}  // namespace kiln
