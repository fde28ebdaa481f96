// AVX-512 direct convolution tiles (see direct-conv.h) and the NHWC -> NCHW writers.
// Register budget: MR x NB accumulators + NB weight vectors + 1 broadcast <= 32 zmm. Each tap
// costs NB weight loads and MR broadcasts (memory operands of the FMAs) for MR * NB FMAs.
// GCC 12 flags the _mm512_undefined_ps pass-through inside _mm512_max_ps / _mm512_min_ps as used
// uninitialized once inlined into the tiles (GCC bug 105593, fixed in GCC 13): a false positive.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "common/simd.h"

#include "conv/direct-conv.h"
#include "conv/transpose-avx512.h"

namespace kiln {
namespace {

using TileFn = void (*)(const float* x, const int32_t* offsets, const float* w, size_t k, const float* bias,
                        float lo, float hi, float* out, size_t ld);

// Widest row tile per number of 16-channel vectors: 24 accumulators for NB >= 2.
constexpr int kMaxRows[5] = {0, 12, 12, 8, 6};

// MR output pixels SW input columns apart (stride 1 or 2) x NB channel vectors.
template <int MR, int NB, int SW>
void tile(const float* x, const int32_t* offsets, const float* w, size_t k, const float* bias, float lo, float hi,
          float* out, size_t ld) {
  __m512 acc[MR][NB];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NB; ++v) acc[i][v] = _mm512_setzero_ps();
  }
  for (size_t p = 0; p < k; ++p) {
    const float* xp = x + offsets[p];
    __m512 wv[NB];
#pragma GCC unroll 4
    for (int v = 0; v < NB; ++v) wv[v] = _mm512_loadu_ps(w + 16 * v);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 b = _mm512_set1_ps(xp[i * SW]);
#pragma GCC unroll 4
      for (int v = 0; v < NB; ++v) acc[i][v] = _mm512_fmadd_ps(b, wv[v], acc[i][v]);
    }
    w += 16 * NB;
  }
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NB; ++v) {
      __m512 y = _mm512_add_ps(acc[i][v], _mm512_loadu_ps(bias + 16 * v));
      // max and min return their second operand, y, when y is NaN, as the GEMM epilogue does.
      y = _mm512_min_ps(vhi, _mm512_max_ps(vlo, y));
      _mm512_storeu_ps(out + i * ld + 16 * v, y);
    }
  }
}

template <int NB, int SW, int MR = 1>
TileFn pick(size_t mr) {
  if constexpr (MR > kMaxRows[NB]) {
    return nullptr;
  } else {
    return mr == MR ? tile<MR, NB, SW> : pick<NB, SW, MR + 1>(mr);
  }
}

template <int SW>
TileFn pick_strided(size_t nb, size_t mr) {
  switch (nb) {
    case 1: return pick<1, SW>(mr);
    case 2: return pick<2, SW>(mr);
    case 3: return pick<3, SW>(mr);
    default: return pick<4, SW>(mr);
  }
}

TileFn pick_tile(size_t nb, size_t mr, size_t stride_w) {
  return stride_w == 2 ? pick_strided<2>(nb, mr) : pick_strided<1>(nb, mr);
}

using WeightTileFn = void (*)(const float* x, const int32_t* offsets, const float* g, size_t ld, size_t out_height,
                              size_t out_width, size_t in_width, size_t stride_h, bool first, float* partial);

// MR taps x NB channel vectors, summed over every pixel of one image.
template <int MR, int NB>
void weight_tile(const float* x, const int32_t* offsets, const float* g, size_t ld, size_t out_height,
                 size_t out_width, size_t in_width, size_t stride_h, bool first, float* partial) {
  __m512 acc[MR][NB];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NB; ++v) acc[i][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(partial + i * ld + 16 * v);
  }
  int32_t off[MR];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) off[i] = offsets[i];
  for (size_t oh = 0; oh < out_height; ++oh) {
    const float* row = x + oh * stride_h * in_width;
    const float* grow = g + oh * out_width * ld;
    for (size_t ow = 0; ow < out_width; ++ow) {
      __m512 gv[NB];
#pragma GCC unroll 4
      for (int v = 0; v < NB; ++v) gv[v] = _mm512_loadu_ps(grow + ow * ld + 16 * v);
#pragma GCC unroll 12
      for (int i = 0; i < MR; ++i) {
        const __m512 b = _mm512_set1_ps(row[ow + off[i]]);
#pragma GCC unroll 4
        for (int v = 0; v < NB; ++v) acc[i][v] = _mm512_fmadd_ps(b, gv[v], acc[i][v]);
      }
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NB; ++v) _mm512_storeu_ps(partial + i * ld + 16 * v, acc[i][v]);
  }
}

template <int NB, int MR = 1>
WeightTileFn pick_weight(size_t mr) {
  if constexpr (MR > kMaxRows[NB]) {
    return nullptr;
  } else {
    return mr == MR ? weight_tile<MR, NB> : pick_weight<NB, MR + 1>(mr);
  }
}

WeightTileFn pick_weight_tile(size_t nb, size_t mr) {
  switch (nb) {
    case 1: return pick_weight<1>(mr);
    case 2: return pick_weight<2>(mr);
    case 3: return pick_weight<3>(mr);
    default: return pick_weight<4>(mr);
  }
}

}  // namespace

void direct_conv_weight_rows_avx512(const float* x, const int32_t* offsets, size_t k0, size_t k1, const float* g,
                                    size_t ld, size_t c0, size_t nb, size_t out_height, size_t out_width,
                                    size_t in_width, size_t stride_h, bool first, float* partial) {
  const size_t taps = k1 - k0;
  const size_t tiles = (taps + kMaxRows[nb] - 1) / kMaxRows[nb];
  const size_t base = taps / tiles, wide = taps % tiles;
  const WeightTileFn wide_fn = pick_weight_tile(nb, base + 1), base_fn = pick_weight_tile(nb, base);
  size_t k = k0;
  for (size_t t = 0; t < tiles; ++t) {
    const size_t mr = t < wide ? base + 1 : base;
    (t < wide ? wide_fn : base_fn)(x, offsets + k, g + c0, ld, out_height, out_width, in_width, stride_h, first,
                                   partial + k * ld + c0);
    k += mr;
  }
}

void nhwc_column_sums_avx512(const float* nhwc, size_t pixels, size_t cout_padded, double* sums) {
  for (size_t c = 0; c < cout_padded; c += 16) {
    __m512d lo = _mm512_loadu_pd(sums + c), hi = _mm512_loadu_pd(sums + c + 8);
    for (size_t p = 0; p < pixels; ++p) {
      const __m512 v = _mm512_loadu_ps(nhwc + p * cout_padded + c);
      lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
      hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
    }
    _mm512_storeu_pd(sums + c, lo);
    _mm512_storeu_pd(sums + c + 8, hi);
  }
}

void nchw_to_nhwc_avx512(const float* nchw, size_t pixels, size_t channels, size_t cout_padded, float* nhwc) {
  nchw_to_nhwc_planes(nchw, pixels, pixels, channels, cout_padded, nhwc);
}

void direct_conv_rows_avx512(const DirectConvArgs& a, const float* input, size_t oh0, size_t oh1, size_t cols,
                             float* rows) {
  const size_t ow_count = cols, ld = a.cout_padded;
  for (size_t c0 = 0; c0 < a.cout_padded; c0 += kDirectConvBlock) {
    const size_t left = (a.cout_padded - c0) / 16;
    const size_t nb = left < 4 ? left : 4;
    const float* w = a.weight + (c0 / kDirectConvBlock) * a.k * kDirectConvBlock;
    // Even tiles (26 = 9 + 9 + 8, not 12 + 12 + 2): a narrow tail tile would be latency-bound.
    const size_t tiles = (ow_count + kMaxRows[nb] - 1) / kMaxRows[nb];
    const size_t base = ow_count / tiles, wide = ow_count % tiles;
    const TileFn wide_fn = pick_tile(nb, base + 1, a.stride_w), base_fn = pick_tile(nb, base, a.stride_w);
    for (size_t oh = oh0; oh < oh1; ++oh) {
      const float* row = input + oh * a.stride_h * a.in_width;
      float* out = rows + (oh - oh0) * ow_count * ld + c0;
      size_t ow = 0;
      for (size_t t = 0; t < tiles; ++t) {
        const size_t mr = t < wide ? base + 1 : base;
        (t < wide ? wide_fn : base_fn)(row + ow * a.stride_w, a.offsets, w, a.k, a.bias + c0, a.lo, a.hi, out + ow * ld, ld);
        ow += mr;
      }
    }
  }
}

void nhwc_to_nchw_avx512(const float* nhwc, size_t pixels, size_t channels, size_t cout_padded, float* out,
                         size_t plane_stride) {
  nhwc_to_nchw_planes(nhwc, pixels, channels, cout_padded, out, plane_stride);
}

namespace {

// The taps [lo, hi) of a window starting at `start` (in positions + pad, `step` apart, `kernel`
// of them) that fall inside [first, end) (positions): its rows or columns in the output.
struct TapRange {
  size_t lo = 0, hi = 0;
};
TapRange taps_inside(size_t start, size_t pad, size_t step, size_t kernel, size_t first, size_t end) {
  TapRange r;
  const size_t first_p = first + pad, end_p = end + pad;  // in positions + pad
  r.lo = start >= first_p ? 0 : (first_p - start + step - 1) / step;
  r.hi = start >= end_p ? 0 : std::min(kernel, (end_p - start + step - 1) / step);
  return r;
}

}  // namespace

void nhwc_max_pool_rows_avx512(const float* rows, size_t row0, size_t row_end, size_t cols, size_t cout_padded,
                               const ConvMaxPool& pool, size_t y0, size_t y1, size_t plane_width, float* pooled,
                               int32_t* where) {
  for (size_t y = y0; y < y1; ++y) {
    const TapRange ti = taps_inside(y * pool.stride_h, pool.pad_top, pool.dilation_h, pool.kernel_h, row0, row_end);
    for (size_t x = 0; x < pool.out_w; ++x) {
      const TapRange tj = taps_inside(x * pool.stride_w, pool.pad_left, pool.dilation_w, pool.kernel_w, 0, cols);
      // The window's first tap inside the output: its conv row and column, its place in `rows`.
      const size_t r = y * pool.stride_h + ti.lo * pool.dilation_h - pool.pad_top;
      const size_t col = x * pool.stride_w + tj.lo * pool.dilation_w - pool.pad_left;
      const float* corner = rows + ((r - row0) * cols + col) * cout_padded;
      const size_t at = r * plane_width + col;  // its plane offset
      const size_t th = ti.hi - ti.lo, tw = tj.hi - tj.lo;
      const size_t row_step = pool.dilation_h * cols * cout_padded, col_step = pool.dilation_w * cout_padded;
      float* dst = pooled + (y * pool.out_w + x) * cout_padded;
      for (size_t c = 0; c < cout_padded; c += 16) {
        // visit(v, i, j) for the window's taps after the first, in window order.
        auto later_taps = [&](auto visit) {
          for (size_t i = 0; i < th; ++i) {
            const float* row = corner + i * row_step + c;
            for (size_t j = i == 0 ? 1 : 0; j < tw; ++j) visit(_mm512_loadu_ps(row + j * col_step), i, j);
          }
        };
        __m512 best = _mm512_loadu_ps(corner + c);
        if (where == nullptr) {
          // Without winners, max(v, best) per tap: it takes v only when larger, as the selects
          // below do. A NaN makes it wrong (max keeps best), so NaN lanes send the vector to the
          // selects, which keep the first NaN's bits.
          __m512 top = best;
          __mmask16 nans = _mm512_cmp_ps_mask(best, best, _CMP_UNORD_Q);
          later_taps([&](__m512 v, size_t, size_t) {
            nans |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
            top = _mm512_max_ps(v, top);
          });
          if (nans == 0) {
            _mm512_storeu_ps(dst + c, top);
            continue;
          }
        }
        __m512i winner = _mm512_set1_epi32(static_cast<int>(at));
        later_taps([&](__m512 v, size_t i, size_t j) {
          // Larger, or a NaN over a number: the selects of the pool kernels, lane by lane.
          const __mmask16 take = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) |
                                 (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q));
          best = _mm512_mask_mov_ps(best, take, v);
          const size_t tap = at + i * pool.dilation_h * plane_width + j * pool.dilation_w;
          winner = _mm512_mask_mov_epi32(winner, take, _mm512_set1_epi32(static_cast<int>(tap)));
        });
        _mm512_storeu_ps(dst + c, best);
        if (where != nullptr) _mm512_storeu_si512(where + (y * pool.out_w + x) * cout_padded + c, winner);
      }
    }
  }
}

}  // namespace kiln
