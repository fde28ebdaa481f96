// AVX-512 kernels of the small-patch direct convolution (see small-conv.h). One template per
// (Cin, KH, KW) so that a segment's input vectors are named registers; the accumulators of a few
// output channels (8 independent FMA chains) are summed from them with broadcast weights.
#include "common/simd.h"

#include "conv/small-conv.h"

namespace kiln {
namespace {

inline __mmask16 lanes(size_t n) { return static_cast<__mmask16>(n >= 16 ? 0xffffu : (1u << n) - 1u); }

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
  const size_t plane = a.out_height * a.out_width;
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int j = 0; j < NC; ++j) {
    const __m512 b = _mm512_set1_ps(a.bias[o + j]);
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) {
      __m512 y = _mm512_add_ps(acc[r][j], b);
      // max(0, y) returns y when y is NaN, as the GEMM epilogue does.
      if (a.relu) y = _mm512_max_ps(zero, y);
      _mm512_mask_storeu_ps(out + (o + j) * plane + r * a.out_width, store, y);
    }
  }
}

// Output rows [oh, oh + NR), columns [x0, x0 + n), every channel.
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
  constexpr int NC = 4;
  size_t o = 0;
  for (; o + NC <= a.out_channels; o += NC) plain_block<CIN, KH, KW, NR, NC>(a, x, o, out, m);
  switch (a.out_channels - o) {
    case 3: plain_block<CIN, KH, KW, NR, 3>(a, x, o, out, m); break;
    case 2: plain_block<CIN, KH, KW, NR, 2>(a, x, o, out, m); break;
    case 1: plain_block<CIN, KH, KW, NR, 1>(a, x, o, out, m); break;
    default: break;
  }
}

template <int CIN, int KH, int KW>
void plain_image(const SmallConvArgs& a, const float* input, float* output) {
  for (size_t x0 = 0; x0 < a.out_width; x0 += 16) {
    const size_t n = a.out_width - x0 < 16 ? a.out_width - x0 : 16;
    size_t oh = 0;
    // Two rows at a time: 8 FMA chains with 4 channels.
    for (; oh + 2 <= a.out_height; oh += 2) plain_rows<CIN, KH, KW, 2>(a, input, oh, x0, n, output);
    if (oh < a.out_height) plain_rows<CIN, KH, KW, 1>(a, input, oh, x0, n, output);
  }
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
  const size_t pooled_plane = (a.out_height / 2) * (a.out_width / 2);
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int j = 0; j < NC; ++j) {
    const __m512 b = _mm512_set1_ps(a.bias[o + j]);
    const size_t at = (o + j) * pooled_plane + pooled_at;
    if constexpr (INDICES) {
      // Each window's taps in max_pool2d_forward's order, after bias and ReLU: ties and NaNs pick
      // the same winner.
      __m512 best = _mm512_add_ps(acc[0][j], b);
      if (a.relu) best = _mm512_max_ps(zero, best);
      __m512i winner = where;
#pragma GCC unroll 4
      for (int t = 1; t < 4; ++t) {
        __m512 v = _mm512_add_ps(acc[t][j], b);
        if (a.relu) v = _mm512_max_ps(zero, v);
        // v > best, or v NaN over a number: not (v <= best) while best is a number.
        const __mmask16 take = _mm512_cmp_ps_mask(v, best, _CMP_NLE_UQ) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q);
        best = _mm512_mask_mov_ps(best, take, v);
        const int tap = static_cast<int>((t / 2) * a.out_width + t % 2);
        winner = _mm512_mask_mov_epi32(winner, take, _mm512_add_epi32(where, _mm512_set1_epi32(tap)));
      }
      _mm512_mask_storeu_ps(output + at, store, best);
      _mm512_mask_storeu_epi32(indices + at, store, winner);
    } else {
      // Bias and ReLU are monotone, so the largest sum gives the pooled value; the window's order
      // only decides which of equal values wins, and equal floats are the same bits here (a sum
      // that starts at +0 never is -0). MAXPS drops a NaN in its first operand: where a window
      // holds one, the sum in window order carries its first NaN instead, as the taps' order would.
      const __m512 a0 = acc[0][j], a1 = acc[1][j], a2 = acc[2][j], a3 = acc[3][j];
      __m512 m = _mm512_max_ps(_mm512_max_ps(a1, a0), _mm512_max_ps(a3, a2));
      const __mmask16 nan = _mm512_cmp_ps_mask(a0, a1, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(a2, a3, _CMP_UNORD_Q);
      m = _mm512_mask_mov_ps(m, nan, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
      __m512 y = _mm512_add_ps(m, b);
      if (a.relu) y = _mm512_max_ps(zero, y);
      _mm512_mask_storeu_ps(output + at, store, y);
    }
  }
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
      constexpr int NC = 3;  // 12 accumulators (4 taps x 3 channels) beside the input vectors
      size_t o = 0;
      for (; o + NC <= a.out_channels; o += NC) {
        pooled_block<CIN, KH, KW, NC, INDICES>(a, x, o, pooled_at, where, output, indices, store);
      }
      if (a.out_channels - o >= 2) {
        pooled_block<CIN, KH, KW, 2, INDICES>(a, x, o, pooled_at, where, output, indices, store);
        o += 2;
      }
      if (o < a.out_channels) pooled_block<CIN, KH, KW, 1, INDICES>(a, x, o, pooled_at, where, output, indices, store);
    }
  }
}

template <int CIN, int KH, int KW>
constexpr SmallConvKernels kernels() {
  return {plain_image<CIN, KH, KW>, pooled_image<CIN, KH, KW, false>, pooled_image<CIN, KH, KW, true>};
}

#define KILN_SMALL_CONV_ENTRY(c, h, w) kernels<c, h, w>(),
constexpr SmallConvKernels kTable[] = {KILN_SMALL_CONV_SHAPES(KILN_SMALL_CONV_ENTRY)};
#undef KILN_SMALL_CONV_ENTRY

}  // namespace

void small_conv_image_avx512(const SmallConvArgs& args, const float* input, float* output) {
  run_small_conv(kTable, args, input, output, false, nullptr);
}

void small_conv_max_pool_image_avx512(const SmallConvArgs& args, const float* input, float* output, int32_t* indices) {
  run_small_conv(kTable, args, input, output, true, indices);
}

}  // namespace kiln
