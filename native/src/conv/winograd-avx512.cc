// The F(2x2, 3x3) image kernel (see winograd.h), channels in AVX-512 lanes throughout:
//   1. the image to a zero-padded NHWC copy (16 x 16 register transposes), so that padding and
//      the tiles past the right and bottom edges read zeros;
//   2. per band of tile rows: V = B^T d B for every tile and input channel vector;
//   3. 16 GEMMs M[xi] = U[xi] (Cin x Cout) x V[xi] (Cin x tiles), 6 tiles x 64 output channels of
//      accumulators, each V value broadcast;
//   4. Y = A^T M A per tile, bias, ReLU, the 2x2 max when pooled, to an NHWC band, then
//      transposed into the NCHW output planes.
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <limits>

#include "conv/transpose-avx512.h"
#include "conv/winograd.h"

namespace kiln {
namespace {

float* align64(float* p) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
}

// NCHW image -> NHWC rows of the padded buffer (pixel (y, x) at (y + pad_top, x + pad_left)); only
// the pixels no input lands on are zeroed (none for SeedCNN's unpadded conv2, whose 12 x 12 tile
// area lies inside its 13 x 13 input).
void stage_input(const WinogradArgs& a, const float* image, float* padded, size_t padded_h, size_t padded_w) {
  const size_t plane = a.in_height * a.in_width;
  const size_t rows = a.in_height < padded_h - a.pad_top ? a.in_height : padded_h - a.pad_top;
  const size_t cols = a.in_width < padded_w - a.pad_left ? a.in_width : padded_w - a.pad_left;
  const size_t pixel = a.cin_padded * sizeof(float);
  std::memset(padded, 0, a.pad_top * padded_w * pixel);
  for (size_t y = 0; y < rows; ++y) {
    float* row = padded + (y + a.pad_top) * padded_w * a.cin_padded;
    std::memset(row, 0, a.pad_left * pixel);
    nchw_to_nhwc_planes(image + y * a.in_width, plane, cols, a.cin, a.cin_padded, row + a.pad_left * a.cin_padded);
    std::memset(row + (a.pad_left + cols) * a.cin_padded, 0, (padded_w - a.pad_left - cols) * pixel);
  }
  std::memset(padded + (a.pad_top + rows) * padded_w * a.cin_padded, 0, (padded_h - a.pad_top - rows) * padded_w * pixel);
}

// V[xi][t][c] for the tiles of tile rows [ty0, ty1): B^T d B, rows then columns, with
// B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
void transform_input(const WinogradArgs& a, const float* padded, size_t padded_w, size_t ty0, size_t ty1, float* v) {
  const size_t band_tiles = (ty1 - ty0) * a.tiles_w;
  const size_t xi_stride = band_tiles * a.cin_padded;
  for (size_t ty = ty0; ty < ty1; ++ty) {
    for (size_t tx = 0; tx < a.tiles_w; ++tx) {
      const size_t t = (ty - ty0) * a.tiles_w + tx;
      const float* corner = padded + (2 * ty * padded_w + 2 * tx) * a.cin_padded;
      for (size_t c = 0; c < a.cin_padded; c += 16) {
        __m512 d[4][4];
        for (int i = 0; i < 4; ++i) {
          for (int j = 0; j < 4; ++j) d[i][j] = _mm512_load_ps(corner + (i * padded_w + j) * a.cin_padded + c);
        }
        __m512 r[4][4];
        for (int j = 0; j < 4; ++j) {
          r[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
          r[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
          r[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
          r[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
        }
        float* dst = v + t * a.cin_padded + c;
        for (int i = 0; i < 4; ++i) {
          _mm512_store_ps(dst + (4 * i + 0) * xi_stride, _mm512_sub_ps(r[i][0], r[i][2]));
          _mm512_store_ps(dst + (4 * i + 1) * xi_stride, _mm512_add_ps(r[i][1], r[i][2]));
          _mm512_store_ps(dst + (4 * i + 2) * xi_stride, _mm512_sub_ps(r[i][2], r[i][1]));
          _mm512_store_ps(dst + (4 * i + 3) * xi_stride, _mm512_sub_ps(r[i][1], r[i][3]));
        }
      }
    }
  }
}

// m[t][co] = sum over c of u[c][co] * v[t][c] for NT tiles and NV x 16 output channels.
template <int NT, int NV>
void gemm_tile(const float* u, size_t cout_padded, const float* v, size_t cin_padded, size_t cin, float* m) {
  // Fully unrolled (the pragmas), so that the 24 accumulators live in registers: without them GCC
  // kept a copy of the array on the stack, stored and reloaded around every call (~20% of its time).
  __m512 acc[NT][NV];
#pragma GCC unroll 6
  for (int i = 0; i < NT; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  for (size_t c = 0; c < cin; ++c) {
    __m512 w[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) w[j] = _mm512_load_ps(u + c * cout_padded + 16 * j);
#pragma GCC unroll 6
    for (int i = 0; i < NT; ++i) {
      const __m512 x = _mm512_set1_ps(v[i * cin_padded + c]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_fmadd_ps(w[j], x, acc[i][j]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < NT; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) _mm512_store_ps(m + i * cout_padded + 16 * j, acc[i][j]);
  }
}

using GemmTileFn = void (*)(const float*, size_t, const float*, size_t, size_t, float*);

template <int NV>
GemmTileFn pick_tiles(size_t nt) {
  switch (nt) {
    case 1: return gemm_tile<1, NV>;
    case 2: return gemm_tile<2, NV>;
    case 3: return gemm_tile<3, NV>;
    case 4: return gemm_tile<4, NV>;
    case 5: return gemm_tile<5, NV>;
    default: return gemm_tile<6, NV>;
  }
}

GemmTileFn pick_gemm(size_t nt, size_t nv) {
  switch (nv) {
    case 1: return pick_tiles<1>(nt);
    case 2: return pick_tiles<2>(nt);
    case 3: return pick_tiles<3>(nt);
    default: return pick_tiles<4>(nt);
  }
}

void multiply(const WinogradArgs& a, const float* v, size_t band_tiles, float* m) {
  constexpr size_t kTiles = 6;
  for (size_t xi = 0; xi < 16; ++xi) {
    const float* u = a.u + xi * a.cin * a.cout_padded;
    const float* vx = v + xi * band_tiles * a.cin_padded;
    float* mx = m + xi * band_tiles * a.cout_padded;
    for (size_t co = 0; co < a.cout_padded; co += 64) {
      const size_t nv = (a.cout_padded - co) / 16 < 4 ? (a.cout_padded - co) / 16 : 4;
      for (size_t t = 0; t < band_tiles; t += kTiles) {
        const size_t nt = band_tiles - t < kTiles ? band_tiles - t : kTiles;
        pick_gemm(nt, nv)(u + co, a.cout_padded, vx + t * a.cin_padded, a.cin_padded, a.cin, mx + t * a.cout_padded + co);
      }
    }
  }
}

// Y = A^T M A with A^T = [1 1 1 0; 0 1 -1 -1], plus bias and ReLU; the 2x2 max when pooled. Writes
// the band as NHWC rows: pooled, one pixel per tile; else 2 output rows per tile row, clipped.
void transform_output(const WinogradArgs& a, const float* m, size_t band_tiles, size_t ty0, size_t ty1, float* out) {
  const size_t xi_stride = band_tiles * a.cout_padded;
  const __m512 zero = _mm512_setzero_ps();
  for (size_t ty = ty0; ty < ty1; ++ty) {
    for (size_t tx = 0; tx < a.tiles_w; ++tx) {
      const size_t t = (ty - ty0) * a.tiles_w + tx;
      for (size_t c = 0; c < a.cout_padded; c += 16) {
        const float* src = m + t * a.cout_padded + c;
        __m512 s[2][4];
        for (int j = 0; j < 4; ++j) {
          const __m512 m0 = _mm512_load_ps(src + (0 + j) * xi_stride), m1 = _mm512_load_ps(src + (4 + j) * xi_stride);
          const __m512 m2 = _mm512_load_ps(src + (8 + j) * xi_stride), m3 = _mm512_load_ps(src + (12 + j) * xi_stride);
          s[0][j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
          s[1][j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
        }
        const __m512 bias = _mm512_load_ps(a.bias + c);
        __m512 y[2][2];
        for (int i = 0; i < 2; ++i) {
          y[i][0] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[i][0], s[i][1]), s[i][2]), bias);
          y[i][1] = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s[i][1], s[i][2]), s[i][3]), bias);
        }
        if (a.pooled) {
          __m512 best = _mm512_max_ps(_mm512_max_ps(y[0][0], y[0][1]), _mm512_max_ps(y[1][0], y[1][1]));
          // MAXPS drops a NaN in its first operand; the pool kernels return NaN for a window
          // holding one, so put it back.
          const __mmask16 nan = _mm512_cmp_ps_mask(y[0][0], y[0][1], _CMP_UNORD_Q) |
                                _mm512_cmp_ps_mask(y[1][0], y[1][1], _CMP_UNORD_Q);
          best = _mm512_mask_mov_ps(best, nan, _mm512_set1_ps(std::numeric_limits<float>::quiet_NaN()));
          // max(0, y) returns y when y is NaN, as the GEMM epilogue does.
          if (a.relu) best = _mm512_max_ps(zero, best);
          _mm512_store_ps(out + t * a.cout_padded + c, best);
          continue;
        }
        for (size_t i = 0; i < 2; ++i) {
          const size_t oy = 2 * ty + i;
          if (oy >= a.out_height) break;
          for (size_t j = 0; j < 2; ++j) {
            const size_t ox = 2 * tx + j;
            if (ox >= a.out_width) break;
            const __m512 val = a.relu ? _mm512_max_ps(zero, y[i][j]) : y[i][j];
            _mm512_store_ps(out + ((oy - 2 * ty0) * a.out_width + ox) * a.cout_padded + c, val);
          }
        }
      }
    }
  }
}

}  // namespace

void winograd_image_avx512(const WinogradArgs& a, const float* image, float* out, float* scratch) {
  const size_t padded_h = 2 * a.tiles_h + 2, padded_w = 2 * a.tiles_w + 2;
  const size_t band_max = a.band_rows * a.tiles_w;
  float* padded = align64(scratch);
  float* v = align64(padded + padded_h * padded_w * a.cin_padded);
  float* m = align64(v + 16 * band_max * a.cin_padded);
  float* staged = align64(m + 16 * band_max * a.cout_padded);
  stage_input(a, image, padded, padded_h, padded_w);
  const size_t out_plane = a.pooled ? a.tiles_h * a.tiles_w : a.out_height * a.out_width;
  for (size_t ty0 = 0; ty0 < a.tiles_h; ty0 += a.band_rows) {
    const size_t ty1 = ty0 + a.band_rows < a.tiles_h ? ty0 + a.band_rows : a.tiles_h;
    const size_t band_tiles = (ty1 - ty0) * a.tiles_w;
    transform_input(a, padded, padded_w, ty0, ty1, v);
    multiply(a, v, band_tiles, m);
    transform_output(a, m, band_tiles, ty0, ty1, staged);
    if (a.pooled) {
      nhwc_to_nchw_planes(staged, band_tiles, a.cout, a.cout_padded, out + ty0 * a.tiles_w, out_plane);
    } else {
      const size_t y0 = 2 * ty0, y1 = 2 * ty1 < a.out_height ? 2 * ty1 : a.out_height;
      nhwc_to_nchw_planes(staged, (y1 - y0) * a.out_width, a.cout, a.cout_padded, out + y0 * a.out_width, out_plane);
    }
  }
}

}  // namespace kiln
