// AVX-512 kernels of the small-patch direct convolution (see small-conv.h). One template per
// (Cin, KH, KW) so that a segment's input vectors are named registers; the accumulators of a few
// output channels (8 independent FMA chains) are summed from them with broadcast weights.
#include "common/simd.h"

#include "conv/small-conv-kernels.h"
#include "conv/small-conv.h"

namespace kiln {
namespace {

inline __mmask16 lanes(size_t n) { return static_cast<__mmask16>(n >= 16 ? 0xffffu : (1u << n) - 1u); }

// The stores' operations (conv/small-conv-kernels.h) on 16 lanes, masks in mask registers.
struct Avx512 {
  using Vec = __m512;
  using Mask = __mmask16;
  using Take = __mmask16;
  using Winner = __m512i;
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
  static void store(float* p, Mask m, Vec v) { _mm512_mask_storeu_ps(p, m, v); }
  // v > best, or v NaN over a number: not (v <= best) while best is a number.
  static Take takes_over(Vec v, Vec best) {
    return _mm512_cmp_ps_mask(v, best, _CMP_NLE_UQ) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q);
  }
  static Vec select(Vec a, Take take, Vec b) { return _mm512_mask_mov_ps(a, take, b); }
  static Take any_unordered(Vec a0, Vec a1, Vec a2, Vec a3) {
    return _mm512_cmp_ps_mask(a0, a1, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(a2, a3, _CMP_UNORD_Q);
  }
  static Winner select_winner(Winner w, Take take, Winner where, int tap) {
    return _mm512_mask_mov_epi32(w, take, _mm512_add_epi32(where, _mm512_set1_epi32(tap)));
  }
  static void store_winner(int32_t* p, Mask m, Winner w) { _mm512_mask_storeu_epi32(p, m, w); }
};

// NR output rows x NC output channels of one 16-column segment, from input vectors
// x[c][r][kw] = input row (row0 + r) of channel c, columns x0 + kw ...
template <int CIN, int KH, int KW, int NR, int NC>
inline void plain_block(const SmallConvArgs& a, const __m512 (&x)[CIN][NR + KH - 1][KW], size_t o, float* out,
                        __mmask16 store) {
  constexpr int K = CIN * KH * KW;
  __m512 acc[NR][NC];
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r) {
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) acc[r][j] = _mm512_setzero_ps();
  }
  const float* w = a.weight + o * K;
#pragma GCC unroll 8
  for (int c = 0; c < CIN; ++c) {
#pragma GCC unroll 8
    for (int kh = 0; kh < KH; ++kh) {
#pragma GCC unroll 8
      for (int kw = 0; kw < KW; ++kw) {
        const int k = (c * KH + kh) * KW + kw;
#pragma GCC unroll 8
        for (int j = 0; j < NC; ++j) {
          const __m512 wv = _mm512_set1_ps(w[j * K + k]);
#pragma GCC unroll 8
          for (int r = 0; r < NR; ++r) acc[r][j] = _mm512_fmadd_ps(x[c][r + kh][kw], wv, acc[r][j]);
        }
      }
    }
  }
  plain_store<Avx512, NR, NC>(a, acc, o, out, store);
}

template <int CIN, int KH, int KW, int NR>
void plain_rows(const SmallConvArgs& a, const float* input, size_t oh, size_t x0, size_t n, float* output) {
  const __mmask16 m = lanes(n);
  const size_t in_plane = a.in_height * a.in_width;
  __m512 x[CIN][NR + KH - 1][KW];
#pragma GCC unroll 8
  for (int c = 0; c < CIN; ++c) {
#pragma GCC unroll 8
    for (int r = 0; r < NR + KH - 1; ++r) {
      const float* row = input + c * in_plane + (oh + r) * a.in_width + x0;
#pragma GCC unroll 8
      for (int kw = 0; kw < KW; ++kw) x[c][r][kw] = _mm512_maskz_loadu_ps(m, row + kw);
    }
  }
  float* out = output + oh * a.out_width + x0;
  for_channel_blocks<4>(a.out_channels, [&](auto nc, size_t o) {
    plain_block<CIN, KH, KW, NR, decltype(nc)::value>(a, x, o, out, m);
  });
}

// Pooled pixels y, x0 + l (l < 16), NC channels from o, from x[c][r][q] = input row 2y + r of
// channel c, columns 2(x0 + l) + q. Accumulator 2i + j is the convolution output at row 2y + i,
// column 2(x0 + l) + j.
template <int CIN, int KH, int KW, int NC, bool INDICES>
inline void pooled_block(const SmallConvArgs& a, const __m512 (&x)[CIN][KH + 1][KW + 1], size_t o, size_t pooled_at,
                         __m512i where, float* output, int32_t* indices, __mmask16 store) {
  constexpr int K = CIN * KH * KW;
  __m512 acc[4][NC];
#pragma GCC unroll 4
  for (int t = 0; t < 4; ++t) {
#pragma GCC unroll 4
    for (int j = 0; j < NC; ++j) acc[t][j] = _mm512_setzero_ps();
  }
  const float* w = a.weight + o * K;
#pragma GCC unroll 8
  for (int c = 0; c < CIN; ++c) {
#pragma GCC unroll 8
    for (int kh = 0; kh < KH; ++kh) {
#pragma GCC unroll 8
      for (int kw = 0; kw < KW; ++kw) {
        const int k = (c * KH + kh) * KW + kw;
#pragma GCC unroll 4
        for (int j = 0; j < NC; ++j) {
          const __m512 wv = _mm512_set1_ps(w[j * K + k]);
#pragma GCC unroll 4
          for (int t = 0; t < 4; ++t) acc[t][j] = _mm512_fmadd_ps(x[c][kh + t / 2][kw + t % 2], wv, acc[t][j]);
        }
      }
    }
  }
  pooled_store<Avx512, NC, INDICES>(a, acc, o, pooled_at, where, output, indices, store);
}

template <int CIN, int KH, int KW, bool INDICES>
void pooled_image(const SmallConvArgs& a, const float* input, float* output, int32_t* indices) {
  const size_t ph = a.out_height / 2, pw = a.out_width / 2;
  const size_t in_plane = a.in_height * a.in_width;
  // Even lanes of a 32-float pair for VPERMT2PS, and the conv column of each pooled lane (2l).
  const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (size_t x0 = 0; x0 < pw; x0 += 16) {
    const size_t n = pw - x0 < 16 ? pw - x0 : 16;
    const __mmask16 store = lanes(n);
    // Lane l reads offsets q + 2l (l < n) of its row: the first 2n - 1 floats from column 2 x0 + q.
    const __mmask16 lo = lanes(2 * n - 1), hi = lanes(2 * n - 1 > 16 ? 2 * n - 1 - 16 : 0);
    for (size_t y = 0; y < ph; ++y) {
      __m512 x[CIN][KH + 1][KW + 1];
#pragma GCC unroll 8
      for (int c = 0; c < CIN; ++c) {
#pragma GCC unroll 8
        for (int r = 0; r < KH + 1; ++r) {
          const float* row = input + c * in_plane + (2 * y + r) * a.in_width + 2 * x0;
#pragma GCC unroll 8
          for (int q = 0; q < KW + 1; ++q) {
            x[c][r][q] = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(lo, row + q), evens,
                                                _mm512_maskz_loadu_ps(hi, row + q + 16));
          }
        }
      }
      const size_t pooled_at = y * pw + x0;
      const __m512i where = _mm512_add_epi32(evens, _mm512_set1_epi32(static_cast<int>(2 * y * a.out_width + 2 * x0)));
      // 3 channels: 12 accumulators (4 taps x 3 channels) beside the input vectors.
      for_channel_blocks<3>(a.out_channels, [&](auto nc, size_t o) {
        pooled_block<CIN, KH, KW, decltype(nc)::value, INDICES>(a, x, o, pooled_at, where, output, indices, store);
      });
    }
  }
}

}  // namespace

void small_conv_image_avx512(const SmallConvArgs& args, const float* input, float* output) {
  SmallConvEntries<16>::image(args, input, output);
}

void small_conv_max_pool_image_avx512(const SmallConvArgs& args, const float* input, float* output, int32_t* indices) {
  SmallConvEntries<16>::max_pool_image(args, input, output, indices);
}

}  // namespace kiln
