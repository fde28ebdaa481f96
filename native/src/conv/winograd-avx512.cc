// The F(2x2, 3x3) and F(4x4, 3x3) image kernels (see winograd.h), channels in AVX-512 lanes
// throughout:
//   1. the image to a zero-padded NHWC copy (16 x 16 register transposes), so that padding and
//      the tiles past the right and bottom edges read zeros;
//   2. per band of tile rows: V = B^T d B for every tile and input channel vector;
//   3. (m + 2)^2 GEMMs M[xi] = U[xi] (Cin x Cout) x V[xi] (Cin x tiles), 6 tiles x 64 output
//      channels of accumulators, each V value broadcast;
//   4. Y = A^T M A per tile, bias, ReLU, the 2x2 max when pooled, to NHWC rows of the plane
//      written, then transposed into the NCHW output planes.
#include "common/simd.h"

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

// Whether the n floats (a multiple of 16, 64-byte aligned) are all finite: x - x is 0, or NaN
// for an infinity or NaN, and a sum of those stays NaN.
bool all_finite(const float* p, size_t n) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    for (int k = 0; k < 4; ++k) {
      const __m512 x = _mm512_load_ps(p + i + 16 * k);
      acc[k] = _mm512_add_ps(acc[k], _mm512_sub_ps(x, x));
    }
  }
  for (; i < n; i += 16) {
    const __m512 x = _mm512_load_ps(p + i);
    acc[0] = _mm512_add_ps(acc[0], _mm512_sub_ps(x, x));
  }
  const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
  return _mm512_cmp_ps_mask(sum, sum, _CMP_UNORD_Q) == 0;
}

// B^T d B for one tile and 16 channels, F(2x2), rows then columns, with
// B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. d(i, j) at d + i * row + j * col; V[xi] at
// v + xi * xi_stride.
void input_tile_f2(const float* d0, size_t row, size_t col, float* v, size_t xi_stride) {
  __m512 d[4][4];
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) d[i][j] = _mm512_load_ps(d0 + i * row + j * col);
  }
  __m512 r[4][4];
  for (int j = 0; j < 4; ++j) {
    r[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
    r[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
    r[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
    r[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
  }
  for (int i = 0; i < 4; ++i) {
    _mm512_store_ps(v + (4 * i + 0) * xi_stride, _mm512_sub_ps(r[i][0], r[i][2]));
    _mm512_store_ps(v + (4 * i + 1) * xi_stride, _mm512_add_ps(r[i][1], r[i][2]));
    _mm512_store_ps(v + (4 * i + 2) * xi_stride, _mm512_sub_ps(r[i][2], r[i][1]));
    _mm512_store_ps(v + (4 * i + 3) * xi_stride, _mm512_sub_ps(r[i][1], r[i][3]));
  }
}

// t = B^T d for 6 values, F(4x4):
// B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1].
inline void input_f4_1d(const __m512* d, __m512* t) {
  const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f), two = _mm512_set1_ps(2.0f);
  const __m512 p = _mm512_fnmadd_ps(four, d[2], d[4]);  // d4 - 4 d2
  const __m512 q = _mm512_fnmadd_ps(four, d[1], d[3]);  // d3 - 4 d1
  const __m512 r = _mm512_sub_ps(d[4], d[2]);
  const __m512 s = _mm512_mul_ps(two, _mm512_sub_ps(d[3], d[1]));
  t[0] = _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4]));
  t[1] = _mm512_add_ps(p, q);
  t[2] = _mm512_sub_ps(p, q);
  t[3] = _mm512_add_ps(r, s);
  t[4] = _mm512_sub_ps(r, s);
  t[5] = _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5]));
}

// B^T d B for one 6 x 6 tile and 16 channels, F(4x4) (layout as input_tile_f2).
void input_tile_f4(const float* d0, size_t row, size_t col, float* v, size_t xi_stride) {
  __m512 r[6][6];  // r[i][x] = (B^T d)[i][x], one input column at a time
  for (int x = 0; x < 6; ++x) {
    __m512 d[6], t[6];
    for (int y = 0; y < 6; ++y) d[y] = _mm512_load_ps(d0 + y * row + x * col);
    input_f4_1d(d, t);
    for (int i = 0; i < 6; ++i) r[i][x] = t[i];
  }
  for (int i = 0; i < 6; ++i) {
    __m512 t[6];
    input_f4_1d(r[i], t);
    for (int j = 0; j < 6; ++j) _mm512_store_ps(v + (6 * i + j) * xi_stride, t[j]);
  }
}

// V[xi][t][c] for the tiles of tile rows [ty0, ty1), F(M x M).
// `band_tiles`: the tiles V holds per xi (its xi stride), this image's and any others'.
template <int M>
void transform_input(const WinogradArgs& a, const float* padded, size_t padded_w, size_t ty0, size_t ty1,
                     size_t band_tiles, float* v) {
  const size_t xi_stride = band_tiles * a.cin_padded;
  const size_t row = padded_w * a.cin_padded;
  for (size_t ty = ty0; ty < ty1; ++ty) {
    for (size_t tx = 0; tx < a.tiles_w; ++tx) {
      const size_t t = (ty - ty0) * a.tiles_w + tx;
      const float* corner = padded + (M * ty * padded_w + M * tx) * a.cin_padded;
      for (size_t c = 0; c < a.cin_padded; c += 16) {
        float* dst = v + t * a.cin_padded + c;
        if constexpr (M == 4) {
          input_tile_f4(corner + c, row, a.cin_padded, dst, xi_stride);
        } else {
          input_tile_f2(corner + c, row, a.cin_padded, dst, xi_stride);
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
  const size_t xis = (a.m + 2) * (a.m + 2);
  for (size_t xi = 0; xi < xis; ++xi) {
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

// Bias, then the 2x2 max when pooled, then ReLU, of one tile's outputs y[i][j] (side m), to the
// NHWC rows of the plane written (`staged`, from plane row `row0`), clipped to the plane.
template <int M>
inline void store_tile(const WinogradArgs& a, __m512 (&y)[M][M], __m512 bias, size_t ty, size_t tx, size_t row0,
                       size_t c, float* staged) {
  const __m512 zero = _mm512_setzero_ps();
  if (a.pooled) {
    for (int i = 0; i < M / 2; ++i) {
      const size_t py = (M / 2) * ty + i;
      if (py >= a.out_height) break;
      for (int j = 0; j < M / 2; ++j) {
        const size_t px = (M / 2) * tx + j;
        if (px >= a.out_width) break;
        const __m512 y00 = _mm512_add_ps(y[2 * i][2 * j], bias), y01 = _mm512_add_ps(y[2 * i][2 * j + 1], bias);
        const __m512 y10 = _mm512_add_ps(y[2 * i + 1][2 * j], bias), y11 = _mm512_add_ps(y[2 * i + 1][2 * j + 1], bias);
        __m512 best = _mm512_max_ps(_mm512_max_ps(y00, y01), _mm512_max_ps(y10, y11));
        // MAXPS drops a NaN in its first operand; the pool kernels return NaN for a window
        // holding one, so put it back.
        const __mmask16 nan = _mm512_cmp_ps_mask(y00, y01, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(y10, y11, _CMP_UNORD_Q);
        best = _mm512_mask_mov_ps(best, nan, _mm512_set1_ps(std::numeric_limits<float>::quiet_NaN()));
        // max(0, y) returns y when y is NaN, as the GEMM epilogue does.
        if (a.relu) best = _mm512_max_ps(zero, best);
        _mm512_store_ps(staged + ((py - row0) * a.out_width + px) * a.cout_padded + c, best);
      }
    }
    return;
  }
  for (int i = 0; i < M; ++i) {
    const size_t oy = M * ty + i;
    if (oy >= a.out_height) break;
    for (int j = 0; j < M; ++j) {
      const size_t ox = M * tx + j;
      if (ox >= a.out_width) break;
      __m512 val = _mm512_add_ps(y[i][j], bias);
      if (a.relu && !a.accumulate) val = _mm512_max_ps(zero, val);  // else after the residual
      _mm512_store_ps(staged + ((oy - row0) * a.out_width + ox) * a.cout_padded + c, val);
    }
  }
}

// A^T M A for one tile and 16 channels, F(2x2), with A^T = [1 1 1 0; 0 1 -1 -1]; M[xi] at
// m + xi * xi_stride.
void output_tile_f2(const float* m, size_t xi_stride, __m512 (&y)[2][2]) {
  __m512 s[2][4];
  for (int j = 0; j < 4; ++j) {
    const __m512 m0 = _mm512_load_ps(m + (0 + j) * xi_stride), m1 = _mm512_load_ps(m + (4 + j) * xi_stride);
    const __m512 m2 = _mm512_load_ps(m + (8 + j) * xi_stride), m3 = _mm512_load_ps(m + (12 + j) * xi_stride);
    s[0][j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
    s[1][j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
  }
  for (int i = 0; i < 2; ++i) {
    y[i][0] = _mm512_add_ps(_mm512_add_ps(s[i][0], s[i][1]), s[i][2]);
    y[i][1] = _mm512_sub_ps(_mm512_sub_ps(s[i][1], s[i][2]), s[i][3]);
  }
}

// y = A^T m for 6 values, F(4x4): A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
inline void output_f4_1d(const __m512* m, __m512* y) {
  const __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
  const __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
  y[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
  y[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d34, d12);
  y[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), s34, s12);
  y[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d34, d12), m[5]);
}

// A^T M A for one tile and 16 channels, F(4x4) (layout as output_tile_f2).
void output_tile_f4(const float* m, size_t xi_stride, __m512 (&y)[4][4]) {
  __m512 s[4][6];  // A^T M, one column of M at a time
  for (int j = 0; j < 6; ++j) {
    __m512 col[6], t[4];
    for (int i = 0; i < 6; ++i) col[i] = _mm512_load_ps(m + (6 * i + j) * xi_stride);
    output_f4_1d(col, t);
    for (int i = 0; i < 4; ++i) s[i][j] = t[i];
  }
  for (int i = 0; i < 4; ++i) output_f4_1d(s[i], y[i]);
}

// Y = A^T M A for the tiles of tile rows [ty0, ty1), F(M x M), stored by store_tile; `band_tiles`
// as for transform_input.
template <int M>
void transform_output(const WinogradArgs& a, const float* m, size_t band_tiles, size_t ty0, size_t ty1, float* staged) {
  const size_t xi_stride = band_tiles * a.cout_padded;
  const size_t row0 = (a.pooled ? M / 2 : M) * ty0;  // first plane row of the band
  for (size_t ty = ty0; ty < ty1; ++ty) {
    for (size_t tx = 0; tx < a.tiles_w; ++tx) {
      const size_t t = (ty - ty0) * a.tiles_w + tx;
      for (size_t c = 0; c < a.cout_padded; c += 16) {
        __m512 y[M][M];
        if constexpr (M == 4) {
          output_tile_f4(m + t * a.cout_padded + c, xi_stride, y);
        } else {
          output_tile_f2(m + t * a.cout_padded + c, xi_stride, y);
        }
        store_tile<M>(a, y, _mm512_load_ps(a.bias + c), ty, tx, row0, c, staged);
      }
    }
  }
}

// The staged NHWC rows of `pixels` outputs into the NCHW planes at `out`: moved, or added to the
// residual there and then through the ReLU (a.accumulate).
void move_home(const WinogradArgs& a, const float* staged, size_t pixels, float* out, size_t plane) {
  if (a.accumulate) {
    nhwc_to_nchw_planes<true>(staged, pixels, a.cout, a.cout_padded, out, plane, a.relu);
  } else {
    nhwc_to_nchw_planes(staged, pixels, a.cout, a.cout_padded, out, plane);
  }
}

// V, M and the staged output rows in a band's scratch (winograd_band_floats): room for
// band_rows x tiles_w tiles of each of a.group images.
struct BandBuffers {
  float* v;
  float* m;
  float* staged;
};
BandBuffers band_buffers(const WinogradArgs& a, float* band_scratch) {
  const size_t tiles = a.band_rows * a.tiles_w * a.group, xis = (a.m + 2) * (a.m + 2);
  float* v = align64(band_scratch);
  float* m = align64(v + xis * tiles * a.cin_padded);
  return {v, m, align64(m + xis * tiles * a.cout_padded)};
}

}  // namespace

bool winograd_stage_avx512(const WinogradArgs& a, const float* image, float* padded_scratch) {
  const size_t padded_h = a.m * a.tiles_h + 2, padded_w = a.m * a.tiles_w + 2;
  float* padded = align64(padded_scratch);
  stage_input(a, image, padded, padded_h, padded_w);
  return a.m != 4 || all_finite(padded, padded_h * padded_w * a.cin_padded);
}

void winograd_bands_avx512(const WinogradArgs& a, const float* padded_scratch, float* out, float* band_scratch,
                           size_t ty_begin, size_t ty_end) {
  const size_t padded_w = a.m * a.tiles_w + 2;
  const size_t rows_per_tile = a.pooled ? a.m / 2 : a.m;  // rows of the written plane per tile row
  const float* padded = align64(const_cast<float*>(padded_scratch));
  const auto [v, m, staged] = band_buffers(a, band_scratch);
  const size_t out_plane = a.out_height * a.out_width;
  for (size_t ty0 = ty_begin; ty0 < ty_end; ty0 += a.band_rows) {
    const size_t ty1 = ty0 + a.band_rows < ty_end ? ty0 + a.band_rows : ty_end;
    const size_t band_tiles = (ty1 - ty0) * a.tiles_w;
    if (a.m == 4) {
      transform_input<4>(a, padded, padded_w, ty0, ty1, band_tiles, v);
      multiply(a, v, band_tiles, m);
      transform_output<4>(a, m, band_tiles, ty0, ty1, staged);
    } else {
      transform_input<2>(a, padded, padded_w, ty0, ty1, band_tiles, v);
      multiply(a, v, band_tiles, m);
      transform_output<2>(a, m, band_tiles, ty0, ty1, staged);
    }
    const size_t y0 = rows_per_tile * ty0;
    const size_t y1 = rows_per_tile * ty1 < a.out_height ? rows_per_tile * ty1 : a.out_height;
    if (y0 < y1) {
      move_home(a, staged, (y1 - y0) * a.out_width, out + y0 * a.out_width, out_plane);
    }
  }
}

void winograd_group_avx512(const WinogradArgs& a, const float* input, size_t in_image, float* output, size_t out_image,
                           size_t count, float* scratch) {
  const size_t padded_h = a.m * a.tiles_h + 2, padded_w = a.m * a.tiles_w + 2;
  const size_t tiles = a.tiles_h * a.tiles_w, band_tiles = count * tiles;
  float* padded = align64(scratch);
  // The image kernel's layout: the padded copy, then one band (here a.group whole images).
  const auto [v, m, staged] = band_buffers(a, scratch + winograd_padded_floats(a));
  // Each image staged in turn into the one padded buffer and transformed into its own tiles of V;
  // then one multiply over all of them, so each U[xi] comes in once for the group.
  for (size_t i = 0; i < count; ++i) {
    stage_input(a, input + i * in_image, padded, padded_h, padded_w);
    transform_input<2>(a, padded, padded_w, 0, a.tiles_h, band_tiles, v + i * tiles * a.cin_padded);
  }
  multiply(a, v, band_tiles, m);
  const size_t out_plane = a.out_height * a.out_width;
  for (size_t i = 0; i < count; ++i) {
    transform_output<2>(a, m + i * tiles * a.cout_padded, band_tiles, 0, a.tiles_h, staged);
    move_home(a, staged, out_plane, output + i * out_image, out_plane);
  }
}

bool winograd_image_avx512(const WinogradArgs& a, const float* image, float* out, float* scratch) {
  if (!winograd_stage_avx512(a, image, scratch)) return false;
  winograd_bands_avx512(a, scratch, out, scratch + winograd_padded_floats(a), 0, a.tiles_h);
  return true;
}

}  // namespace kiln
