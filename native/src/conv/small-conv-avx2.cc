// AVX2 kernels of the small-patch direct convolution (see small-conv.h): 8 pixels in lanes. With
// 16 registers the input vectors cannot stay in registers as on AVX-512; each tap loads the few
// it needs (NR rows, or the pooled pixel's 4 positions) and the NC channel weights, an outer
// product of 8 FMA chains for 6 loads.
#include "common/simd.h"
#include "common/masked-load-avx2.h"

#include "conv/small-conv-kernels.h"
#include "conv/small-conv.h"

namespace kiln {
namespace {

inline __m256i lanes(size_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The stores' operations (conv/small-conv-kernels.h) on 8 lanes, masks as vectors.
struct Avx2 {
  using Vec = __m256;
  using Mask = __m256i;
  using Take = __m256;
  using Winner = __m256i;
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
  static void store(float* p, Mask m, Vec v) { _mm256_maskstore_ps(p, m, v); }
  static Take takes_over(Vec v, Vec best) {
    return _mm256_and_ps(_mm256_cmp_ps(v, best, _CMP_NLE_UQ), _mm256_cmp_ps(best, best, _CMP_ORD_Q));
  }
  static Vec select(Vec a, Take take, Vec b) { return _mm256_blendv_ps(a, b, take); }
  static Take any_unordered(Vec a0, Vec a1, Vec a2, Vec a3) {
    return _mm256_or_ps(_mm256_cmp_ps(a0, a1, _CMP_UNORD_Q), _mm256_cmp_ps(a2, a3, _CMP_UNORD_Q));
  }
  static Winner select_winner(Winner w, Take take, Winner where, int tap) {
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(w),
                                                _mm256_castsi256_ps(_mm256_add_epi32(where, _mm256_set1_epi32(tap))), take));
  }
  static void store_winner(int32_t* p, Mask m, Winner w) { _mm256_maskstore_epi32(p, m, w); }
};

// NR output rows x NC output channels of an 8-column segment at `in` (row oh, column x0 of
// channel 0), into `out` (same row and column of output channel o).
template <int CIN, int KH, int KW, int NR, int NC>
inline void plain_block(const SmallConvArgs& a, const float* in, size_t o, float* out, __m256i m) {
  constexpr int K = CIN * KH * KW;
  const size_t in_plane = a.in_height * a.in_width;
  __m256 acc[NR][NC];
#pragma GCC unroll 4
  for (int r = 0; r < NR; ++r) {
#pragma GCC unroll 4
    for (int j = 0; j < NC; ++j) acc[r][j] = _mm256_setzero_ps();
  }
  const float* w = a.weight + o * K;
  for (int c = 0; c < CIN; ++c) {
#pragma GCC unroll 8
    for (int kh = 0; kh < KH; ++kh) {
#pragma GCC unroll 8
      for (int kw = 0; kw < KW; ++kw) {
        const int k = (c * KH + kh) * KW + kw;
        __m256 x[NR];
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) x[r] = maskload_ps(in + c * in_plane + (r + kh) * a.in_width + kw, m);
#pragma GCC unroll 4
        for (int j = 0; j < NC; ++j) {
          const __m256 wv = _mm256_broadcast_ss(w + j * K + k);
#pragma GCC unroll 4
          for (int r = 0; r < NR; ++r) acc[r][j] = _mm256_fmadd_ps(x[r], wv, acc[r][j]);
        }
      }
    }
  }
  plain_store<Avx2, NR, NC>(a, acc, o, out, m);
}

template <int CIN, int KH, int KW, int NR>
void plain_rows(const SmallConvArgs& a, const float* input, size_t oh, size_t x0, size_t n, float* output) {
  const __m256i m = lanes(n);
  const float* in = input + oh * a.in_width + x0;
  float* out = output + oh * a.out_width + x0;
  for_channel_blocks<4>(a.out_channels, [&](auto nc, size_t o) {
    plain_block<CIN, KH, KW, NR, decltype(nc)::value>(a, in, o, out, m);
  });
}

// Pooled pixels y, x0 + l (l < 8), NC channels from o, from xs[c][r][q] (8 floats each) = input
// row 2y + r of channel c, columns 2(x0 + l) + q. Accumulator 2i + j is the convolution output at
// row 2y + i, column 2(x0 + l) + j.
template <int CIN, int KH, int KW, int NC, bool INDICES>
inline void pooled_block(const SmallConvArgs& a, const float* xs, size_t o, size_t pooled_at, __m256i where,
                         float* output, int32_t* indices, __m256i store) {
  constexpr int K = CIN * KH * KW;
  __m256 acc[4][NC];
#pragma GCC unroll 4
  for (int t = 0; t < 4; ++t) {
#pragma GCC unroll 4
    for (int j = 0; j < NC; ++j) acc[t][j] = _mm256_setzero_ps();
  }
  const float* w = a.weight + o * K;
  for (int c = 0; c < CIN; ++c) {
#pragma GCC unroll 8
    for (int kh = 0; kh < KH; ++kh) {
#pragma GCC unroll 8
      for (int kw = 0; kw < KW; ++kw) {
        const int k = (c * KH + kh) * KW + kw;
        __m256 x[4];
#pragma GCC unroll 4
        for (int t = 0; t < 4; ++t) x[t] = _mm256_load_ps(xs + ((c * (KH + 1) + kh + t / 2) * (KW + 1) + kw + t % 2) * 8);
#pragma GCC unroll 4
        for (int j = 0; j < NC; ++j) {
          const __m256 wv = _mm256_broadcast_ss(w + j * K + k);
#pragma GCC unroll 4
          for (int t = 0; t < 4; ++t) acc[t][j] = _mm256_fmadd_ps(x[t], wv, acc[t][j]);
        }
      }
    }
  }
  pooled_store<Avx2, NC, INDICES>(a, acc, o, pooled_at, where, output, indices, store);
}

template <int CIN, int KH, int KW, bool INDICES>
void pooled_image(const SmallConvArgs& a, const float* input, float* output, int32_t* indices) {
  const size_t ph = a.out_height / 2, pw = a.out_width / 2;
  const size_t in_plane = a.in_height * a.in_width;
  // Within each 128-bit half, the even floats first: two of these make the 8 even floats of 16.
  const __m256i split = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m256i twice_lane = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  alignas(32) float xs[CIN * (KH + 1) * (KW + 1) * 8];
  for (size_t x0 = 0; x0 < pw; x0 += 8) {
    const size_t n = pw - x0 < 8 ? pw - x0 : 8;
    const __m256i store = lanes(n);
    // Lane l reads offsets q + 2l (l < n) of its row: the first 2n - 1 floats from column 2 x0 + q.
    const __m256i lo = lanes(2 * n - 1 < 8 ? 2 * n - 1 : 8), hi = lanes(2 * n - 1 > 8 ? 2 * n - 1 - 8 : 0);
    for (size_t y = 0; y < ph; ++y) {
      for (int c = 0; c < CIN; ++c) {
#pragma GCC unroll 8
        for (int r = 0; r < KH + 1; ++r) {
          const float* row = input + c * in_plane + (2 * y + r) * a.in_width + 2 * x0;
#pragma GCC unroll 8
          for (int q = 0; q < KW + 1; ++q) {
            const __m256 l = _mm256_permutevar8x32_ps(maskload_ps(row + q, lo), split);
            const __m256 h = _mm256_permutevar8x32_ps(maskload_ps(row + q + 8, hi), split);
            _mm256_store_ps(xs + ((c * (KH + 1) + r) * (KW + 1) + q) * 8, _mm256_permute2f128_ps(l, h, 0x20));
          }
        }
      }
      const size_t pooled_at = y * pw + x0;
      const __m256i where = _mm256_add_epi32(twice_lane, _mm256_set1_epi32(static_cast<int>(2 * y * a.out_width + 2 * x0)));
      for_channel_blocks<2>(a.out_channels, [&](auto nc, size_t o) {
        pooled_block<CIN, KH, KW, decltype(nc)::value, INDICES>(a, xs, o, pooled_at, where, output, indices, store);
      });
    }
  }
}

}  // namespace

void small_conv_image_avx2(const SmallConvArgs& args, const float* input, float* output) {
  SmallConvEntries<8>::image(args, input, output);
}

void small_conv_max_pool_image_avx2(const SmallConvArgs& args, const float* input, float* output, int32_t* indices) {
  SmallConvEntries<8>::max_pool_image(args, input, output, indices);
}

}  // namespace kiln
