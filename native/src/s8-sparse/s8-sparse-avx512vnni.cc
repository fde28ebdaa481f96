// Sparse int8 kernels on AVX-512 VNNI: each stored 1x4 block is one vpdpbusd of its broadcast
// weight word against 16 consecutive output positions (conv) or 16 images (GEMM).
#include "common/simd.h"

#include <cstring>

#include "common/dispatch.h"
#include "quant/requantize.h"
#include "s8-sparse/s8-sparse-ukernel.h"

namespace kiln {
namespace {

// acc += x (u8) . w (s8) per dword: vpdpbusd. Written as asm because GCC 12 turned the
// intrinsic's loop-carried accumulators into a register-to-register copy per vpdpbusd (about as
// many vmovdqa32 as vpdpbusd in the block loop, measured with perf annotate).
inline __m512i dpbusd(__m512i acc, __m512i x, __m512i w) {
  asm("vpdpbusd %[w], %[x], %[acc]" : [acc] "+v"(acc) : [x] "v"(x), [w] "v"(w));
  return acc;
}

// Up to this many accumulators per tile: 12 + the broadcast word + loads stay in the 32 registers.
// Every loop over a register array is unrolled (#pragma GCC unroll): a loop GCC kept rolled indexes
// the array at run time, which spills it to the stack (seen in perf annotate of the pool epilogue).
constexpr int kMaxVectors = 12;

template <int V>
void conv_tile(const int32_t* x, const S8SpConvChannel& ch, int32_t* acc) {
  __m512i a[V];
  const __m512i init = _mm512_set1_epi32(ch.init);
  #pragma GCC unroll 16
  for (int v = 0; v < V; ++v) a[v] = init;
  for (size_t b = 0; b < ch.blocks; ++b) {
    const __m512i w = _mm512_set1_epi32(ch.word[b]);
    const int32_t* s = x + ch.offset[b];
    #pragma GCC unroll 16
    for (int v = 0; v < V; ++v) a[v] = dpbusd(a[v], _mm512_loadu_si512(s + 16 * v), w);
  }
  #pragma GCC unroll 16
  for (int v = 0; v < V; ++v) _mm512_storeu_si512(acc + 16 * v, a[v]);
}

using ConvTileFn = void (*)(const int32_t*, const S8SpConvChannel&, int32_t*);
const ConvTileFn kConvTiles[kMaxVectors] = {conv_tile<1>, conv_tile<2>, conv_tile<3>, conv_tile<4>,
                                             conv_tile<5>, conv_tile<6>, conv_tile<7>, conv_tile<8>,
                                             conv_tile<9>, conv_tile<10>, conv_tile<11>, conv_tile<12>};

// _mm512_max_epi32 with an explicit pass-through operand: GCC 12 builds the unmasked intrinsic's
// unused one from _mm512_undefined_epi32() and, inlined here, warns -Wuninitialized at the header
// line (simd.h covers only -Wmaybe-uninitialized). The same vpmaxsd.
inline __m512i max32(__m512i a, __m512i b) { return _mm512_mask_max_epi32(a, static_cast<__mmask16>(0xFFFF), a, b); }

// A whole plane in one tile (V vectors) with a row pitch under 32 and a fused 2x2 pool (SeedCNN's
// conv2: 16 in the aligned layout): the pool's maxima formed in registers, no store and reload of the sums.
// max(p, p + 1) comes from vpermt2d with the next vector (index lane + 1), max(., . + wp) from vpermt2d with the next
// vector (index lane + wp); lanes whose partner lies past the tile read a duplicate and are never
// output positions. m[p] for every position p, pooled pixel (py, px) at p = 2 py wp + 2 px, goes to v.
template <int V, int Q>
void conv_tile_pooled(const int32_t* x, const S8SpConvChannel& ch, __m512i down, int32_t* v) {
  const __m512i right = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
  __m512i a[V];
  const __m512i init = _mm512_set1_epi32(ch.init);
  #pragma GCC unroll 16
  for (int i = 0; i < V; ++i) a[i] = init;
  for (size_t b = 0; b < ch.blocks; ++b) {
    const __m512i w = _mm512_set1_epi32(ch.word[b]);
    const int32_t* s = x + ch.offset[b];
    #pragma GCC unroll 16
    for (int i = 0; i < V; ++i) a[i] = dpbusd(a[i], _mm512_loadu_si512(s + 16 * i), w);
  }
  __m512i h[V];
  #pragma GCC unroll 16
  for (int i = 0; i < V; ++i) h[i] = max32(a[i], _mm512_permutex2var_epi32(a[i], right, a[i + 1 < V ? i + 1 : i]));
  #pragma GCC unroll 16
  for (int i = 0; i < V; ++i) {
    // Q = pitch / 16 (0 or 1): the partner of lane l is lane l + pitch % 16 of h[i + Q] : h[i + Q + 1].
    constexpr int kLast = V - 1;
    const int a0 = i + Q < V ? i + Q : kLast, a1 = i + Q + 1 < V ? i + Q + 1 : kLast;
    _mm512_storeu_si512(v + 16 * i, max32(h[i], _mm512_permutex2var_epi32(h[a0], down, h[a1])));
  }
}

using PooledTileFn = void (*)(const int32_t*, const S8SpConvChannel&, __m512i, int32_t*);
template <int Q>
struct PooledTiles {
  static constexpr PooledTileFn kFns[kMaxVectors] = {
      conv_tile_pooled<1, Q>, conv_tile_pooled<2, Q>, conv_tile_pooled<3, Q>,  conv_tile_pooled<4, Q>,
      conv_tile_pooled<5, Q>, conv_tile_pooled<6, Q>, conv_tile_pooled<7, Q>,  conv_tile_pooled<8, Q>,
      conv_tile_pooled<9, Q>, conv_tile_pooled<10, Q>, conv_tile_pooled<11, Q>, conv_tile_pooled<12, Q>};
};

void sums(const S8SpConvImage& im, const S8SpConvChannel& ch, int32_t* acc) {
  const auto* x = reinterpret_cast<const int32_t*>(im.x);
  const size_t vectors = (im.positions + 15) / 16;
  // Balanced tiles of at most kMaxVectors vectors (MNIST conv2: 9 vectors, one tile).
  const size_t tiles = (vectors + kMaxVectors - 1) / kMaxVectors;
  for (size_t t = 0, v0 = 0; t < tiles; ++t) {
    const size_t v1 = vectors * (t + 1) / tiles;
    kConvTiles[v1 - v0 - 1](x + 16 * v0, ch, acc + 16 * v0);
    v0 = v1;
  }
}

// Channel i's output values, still int32, staged whole vectors at a time (no compress, no mask:
// plain stores) at values[i * values_stride]: pooled row py's columns in ceil(2 * pooled_w / 16)
// vectors of 16 (pooled column px at lane 2 * (px % 8) of vector px / 8), or output row oy's
// columns in ceil(out_w / 16) vectors. The requantization then runs across channels (below).
void stage_values(const S8SpConvImage& im, const int32_t* a, int32_t* v) {
  if (im.pool) {
    // Lane 2j of max(row, row shifted by one) over both rows is pooled column c0 / 2 + j. The
    // loads past a row read the next row or the acc slack: those lanes are never read back.
    for (size_t py = 0; py < im.pooled_h; ++py) {
      const int32_t* r0 = a + 2 * py * im.wp;
      const int32_t* r1 = r0 + im.wp;
      for (size_t c0 = 0; c0 < 2 * im.pooled_w; c0 += 16, v += 16) {
        const __m512i m0 = _mm512_max_epi32(_mm512_loadu_si512(r0 + c0), _mm512_loadu_si512(r0 + c0 + 1));
        const __m512i m1 = _mm512_max_epi32(_mm512_loadu_si512(r1 + c0), _mm512_loadu_si512(r1 + c0 + 1));
        _mm512_storeu_si512(v, _mm512_max_epi32(m0, m1));
      }
    }
    return;
  }
  for (size_t oy = 0; oy < im.rows; ++oy) {
    for (size_t c0 = 0; c0 < im.out_w; c0 += 16, v += 16) _mm512_storeu_si512(v, _mm512_loadu_si512(a + oy * im.wp + c0));
  }
}

// The channels' values requantized 16 channels (one output pixel's bytes) at a time: one gather
// per pixel instead of 16 strided byte stores per channel vector.
void store_pixels(const S8SpConvImage& im, const S8SpConvChannel* ch, size_t count, const int32_t* v, uint8_t* out,
                  bool by_position) {
  alignas(64) float scale_of[16] = {};
  for (size_t i = 0; i < count; ++i) scale_of[i] = ch[i].scale;
  const __m512 scale = _mm512_load_ps(scale_of), lo = _mm512_set1_ps(im.lo), hi = _mm512_set1_ps(im.hi);
  const __m512i zp = _mm512_set1_epi32(im.zero_point);
  const __mmask16 k = count >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << count) - 1);
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(static_cast<int>(im.values_stride)));
  const size_t out_h = im.pool ? im.pooled_h : im.rows, out_w = im.pool ? im.pooled_w : im.out_w;
  const size_t per_vector = im.pool ? 8 : 16, step = im.pool ? 2 : 1;
  const size_t row_ints = (out_w + per_vector - 1) / per_vector * 16;
  uint8_t* y = out;
  for (size_t r = 0; r < out_h; ++r) {
    for (size_t c = 0; c < out_w; ++c, y += im.out_stride) {
      const int32_t* at = by_position ? v + 2 * (r * im.wp + c) : v + r * row_ints + c / per_vector * 16 + step * (c % per_vector);
      const __m512i acc = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), k, idx, at, 4);
      __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale);
      f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
      // In range after the clamp; cvtps2dq rounds half to even (default MXCSR).
      _mm_mask_storeu_epi8(y, k, _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(f), zp)));
    }
  }
}

// r[i] lane c -> r[c] lane i. 32-bit then 64-bit unpacks leave, per 128-bit lane L and 4-row
// block b, column 4L + c' of rows 4b..4b+3 in u[b][c']; a 4x4 transpose of 128-bit lanes
// (shuffle_i32x4) then puts block b of column 4L + c' into lane b.
inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  #pragma GCC unroll 16
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  #pragma GCC unroll 16
  for (int b = 0; b < 4; ++b) {  // u[4b + c'] = rows 4b..4b+3 of column 4L + c' in lane L
    u[4 * b + 0] = _mm512_unpacklo_epi64(t[4 * b], t[4 * b + 2]);
    u[4 * b + 1] = _mm512_unpackhi_epi64(t[4 * b], t[4 * b + 2]);
    u[4 * b + 2] = _mm512_unpacklo_epi64(t[4 * b + 1], t[4 * b + 3]);
    u[4 * b + 3] = _mm512_unpackhi_epi64(t[4 * b + 1], t[4 * b + 3]);
  }
  #pragma GCC unroll 16
  for (int c = 0; c < 4; ++c) {
    const __m512i p0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44), p1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xEE);
    const __m512i q0 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44), q1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xEE);
    r[0 + c] = _mm512_shuffle_i32x4(p0, q0, 0x88);
    r[4 + c] = _mm512_shuffle_i32x4(p0, q0, 0xDD);
    r[8 + c] = _mm512_shuffle_i32x4(p1, q1, 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(p1, q1, 0xDD);
  }
}

// Pitch exactly 16 (the aligned layout of images up to 16 wide, SeedCNN's conv2): vector i is conv
// row i, so pooled row py is the even lanes of max over rows 2py and 2py + 1. Two pooled rows are
// packed per vector (px < 8 at lanes px and 8 + px) and stored at v[16 pp], pp = py / 2: the
// values of 16 channels then transpose (16x16) into one vector per pooled pixel.
template <int V>
void conv_tile_pooled16(const int32_t* x, const S8SpConvChannel& ch, int32_t* v) {
  const __m512i right = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  __m512i a[V];
  const __m512i init = _mm512_set1_epi32(ch.init);
  #pragma GCC unroll 16
  for (int i = 0; i < V; ++i) a[i] = init;
  for (size_t b = 0; b < ch.blocks; ++b) {
    const __m512i w = _mm512_set1_epi32(ch.word[b]);
    const int32_t* s = x + ch.offset[b];
    #pragma GCC unroll 16
    for (int i = 0; i < V; ++i) a[i] = dpbusd(a[i], _mm512_loadu_si512(s + 16 * i), w);
  }
  // m[py]: the 2x2 maximum at every column of conv rows 2py, 2py + 1 (valid at even columns).
  constexpr int kRows = V / 2 > 0 ? V / 2 : 1;
  __m512i m[kRows];
  #pragma GCC unroll 16
  for (int py = 0; py < kRows; ++py) {
    const __m512i r0 = a[2 * py < V ? 2 * py : V - 1], r1 = a[2 * py + 1 < V ? 2 * py + 1 : V - 1];
    const __m512i h0 = max32(r0, _mm512_permutex2var_epi32(r0, right, r0));
    const __m512i h1 = max32(r1, _mm512_permutex2var_epi32(r1, right, r1));
    m[py] = max32(h0, h1);
  }
  #pragma GCC unroll 16
  for (int pp = 0; 2 * pp < kRows; ++pp) {
    const __m512i second = m[2 * pp + 1 < kRows ? 2 * pp + 1 : 2 * pp];
    _mm512_storeu_si512(v + 16 * pp, _mm512_permutex2var_epi32(m[2 * pp], even, second));
  }
}

using Pooled16Fn = void (*)(const int32_t*, const S8SpConvChannel&, int32_t*);
const Pooled16Fn kPooled16[kMaxVectors] = {conv_tile_pooled16<1>,  conv_tile_pooled16<2>,  conv_tile_pooled16<3>,
                                           conv_tile_pooled16<4>,  conv_tile_pooled16<5>,  conv_tile_pooled16<6>,
                                           conv_tile_pooled16<7>,  conv_tile_pooled16<8>,  conv_tile_pooled16<9>,
                                           conv_tile_pooled16<10>, conv_tile_pooled16<11>, conv_tile_pooled16<12>};

// The channels' packed pooled rows (conv_tile_pooled16) transposed: lane l of pair pp is pooled
// pixel (2 pp + l / 8, l % 8), requantized 16 channels at a time, one 16-byte store per pixel.
void store_pooled16(const S8SpConvImage& im, const S8SpConvChannel* ch, size_t count, uint8_t* out) {
  alignas(64) float scale_of[16] = {};
  for (size_t i = 0; i < count; ++i) scale_of[i] = ch[i].scale;
  const __m512 scale = _mm512_load_ps(scale_of), lo = _mm512_set1_ps(im.lo), hi = _mm512_set1_ps(im.hi);
  const __m512i zp = _mm512_set1_epi32(im.zero_point);
  const __mmask16 k = count >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << count) - 1);
  for (size_t pp = 0; 2 * pp < im.pooled_h; ++pp) {
    __m512i r[16];
    for (size_t i = 0; i < 16; ++i) r[i] = _mm512_loadu_si512(im.values + (i < count ? i : 0) * im.values_stride + 16 * pp);
    transpose16(r);
    for (size_t l = 0; l < 16; ++l) {
      const size_t py = 2 * pp + l / 8, px = l % 8;
      if (py >= im.pooled_h || px >= im.pooled_w) continue;
      __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(r[l]), scale);
      f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
      // In range after the clamp; cvtps2dq rounds half to even (default MXCSR).
      _mm_mask_storeu_epi8(out + (py * im.pooled_w + px) * im.out_stride, k,
                           _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(f), zp)));
    }
  }
}

void spconv_channels(const S8SpConvImage& im, const S8SpConvChannel* ch, size_t count, uint8_t* out) {
  const size_t vectors = (im.positions + 15) / 16;
  if (im.pool && im.wp == 16 && im.pooled_w <= 8 && vectors <= kMaxVectors && count > 0) {
    const auto* x = reinterpret_cast<const int32_t*>(im.x);
    for (size_t i = 0; i < count; ++i) kPooled16[vectors - 1](x, ch[i], im.values + i * im.values_stride);
    store_pooled16(im, ch, count, out);
    return;
  }
  if (im.pool && im.wp < 32 && vectors <= kMaxVectors && count > 0) {
    const __m512i down = _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                          _mm512_set1_epi32(static_cast<int>(im.wp % 16)));
    const auto* x = reinterpret_cast<const int32_t*>(im.x);
    const PooledTileFn tile = im.wp < 16 ? PooledTiles<0>::kFns[vectors - 1] : PooledTiles<1>::kFns[vectors - 1];
    for (size_t i = 0; i < count; ++i) tile(x, ch[i], down, im.values + i * im.values_stride);
    store_pixels(im, ch, count, im.values, out, true);
    return;
  }
  // A channel's values are read back after the next channel's sums (see S8SpConvChannelsFn).
  for (size_t i = 0; i < count; ++i) {
    sums(im, ch[i], im.acc + (i & 1) * im.acc_plane);
    if (i > 0) stage_values(im, im.acc + ((i - 1) & 1) * im.acc_plane, im.values + (i - 1) * im.values_stride);
  }
  if (count == 0) return;
  stage_values(im, im.acc + ((count - 1) & 1) * im.acc_plane, im.values + (count - 1) * im.values_stride);
  store_pixels(im, ch, count, im.values, out, false);
}

// 16 pixels x 16 channel groups per 16x16 dword transpose (gathers cost about 3 times as much).
void transform(const uint8_t* in, size_t height, size_t width, size_t groups, size_t plane, size_t wp, size_t top,
               size_t left, uint8_t* x) {
  auto* dst = reinterpret_cast<int32_t*>(x);
  size_t h = 0;
  if (groups <= 8) {
    // Two image rows per transpose (SeedCNN conv2: 8 groups): pixel i of rows h and h + 1 share
    // r[i] (groups in lanes 0..7 and 8..15), so r[g] and r[8 + g] come out as group g of each row.
    const __mmask8 kg8 = static_cast<__mmask8>((1u << groups) - 1);
    for (; h + 1 < height; h += 2) {
      const auto* row0 = reinterpret_cast<const int32_t*>(in + h * width * groups * 4);
      const int32_t* row1 = row0 + width * groups;
      int32_t* line = dst + (h + top) * wp + left;
      for (size_t w0 = 0; w0 < width; w0 += 16) {
        const size_t n = width - w0 < 16 ? width - w0 : 16;
        const __mmask16 kn = n == 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1);
        __m512i r[16];
#pragma GCC unroll 16
        for (size_t i = 0; i < 16; ++i) {
          if (i < n) {
            const __m256i a = _mm256_maskz_loadu_epi32(kg8, row0 + (w0 + i) * groups);
            const __m256i b = _mm256_maskz_loadu_epi32(kg8, row1 + (w0 + i) * groups);
            r[i] = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
          } else {
            r[i] = _mm512_setzero_si512();
          }
        }
        transpose16(r);
        for (size_t g = 0; g < groups; ++g) {
          _mm512_mask_storeu_epi32(line + g * plane + w0, kn, r[g]);
          _mm512_mask_storeu_epi32(line + g * plane + wp + w0, kn, r[8 + g]);
        }
      }
    }
  }
  for (; h < height; ++h) {
    const auto* row = reinterpret_cast<const int32_t*>(in + h * width * groups * 4);
    int32_t* line = dst + (h + top) * wp + left;
    for (size_t w0 = 0; w0 < width; w0 += 16) {
      const size_t n = width - w0 < 16 ? width - w0 : 16;
      const __mmask16 kn = n == 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1);
      for (size_t g0 = 0; g0 < groups; g0 += 16) {
        const size_t ng = groups - g0 < 16 ? groups - g0 : 16;
        const __mmask16 kg = ng == 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << ng) - 1);
        __m512i r[16];
        for (size_t i = 0; i < 16; ++i) r[i] = i < n ? _mm512_maskz_loadu_epi32(kg, row + (w0 + i) * groups + g0) : _mm512_setzero_si512();
        transpose16(r);
        for (size_t g = 0; g < ng; ++g) _mm512_mask_storeu_epi32(line + (g0 + g) * plane + w0, kn, r[g]);
      }
    }
  }
}

// GEMM rows, batch in lanes: up to kMaxVectors x 16 images per pass over a row's blocks.
template <int V>
void lanes_tile(const S8SpmmJob& j, size_t n, size_t i0, int32_t* acc) {
  __m512i a[V];
  const __m512i init = _mm512_set1_epi32(j.init[n]);
  #pragma GCC unroll 16
  for (int v = 0; v < V; ++v) a[v] = init;
  const auto* x = reinterpret_cast<const int32_t*>(j.x) + i0;
  for (uint32_t b = j.row_ptr[n]; b < j.row_ptr[n + 1]; ++b) {
    const __m512i w = _mm512_set1_epi32(j.word[b]);
    const int32_t* s = x + static_cast<size_t>(j.group[b]) * j.lanes;
    #pragma GCC unroll 16
    for (int v = 0; v < V; ++v) a[v] = dpbusd(a[v], _mm512_loadu_si512(s + 16 * v), w);
  }
  #pragma GCC unroll 16
  for (int v = 0; v < V; ++v) _mm512_storeu_si512(acc + i0 + 16 * v, a[v]);
}

using LanesTileFn = void (*)(const S8SpmmJob&, size_t, size_t, int32_t*);
const LanesTileFn kLanesTiles[kMaxVectors] = {lanes_tile<1>, lanes_tile<2>, lanes_tile<3>, lanes_tile<4>,
                                               lanes_tile<5>, lanes_tile<6>, lanes_tile<7>, lanes_tile<8>,
                                               lanes_tile<9>, lanes_tile<10>, lanes_tile<11>, lanes_tile<12>};

// Rows in groups of 16: their sums staged as 16 rows of lanes, then 16x16 transposes give each
// image's 16 outputs as one vector: one requantization and one 16-byte (or 64-byte float) store
// per image and row group instead of 16 strided stores.
void spmm_lanes(const S8SpmmJob& j, size_t row0, size_t row1) {
  const size_t vectors = j.lanes / 16;
  const size_t tiles = (vectors + kMaxVectors - 1) / kMaxVectors;
  const __m512 lo = _mm512_set1_ps(j.lo), hi = _mm512_set1_ps(j.hi);
  const __m512i zp = _mm512_set1_epi32(j.zero_point);
  for (size_t n0 = row0; n0 < row1; n0 += 16) {
    const size_t rows = row1 - n0 < 16 ? row1 - n0 : 16;
    const __mmask16 k = rows == 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << rows) - 1);
    for (size_t r = 0; r < rows; ++r) {
      for (size_t t = 0, v0 = 0; t < tiles; ++t) {
        const size_t v1 = vectors * (t + 1) / tiles;
        kLanesTiles[v1 - v0 - 1](j, n0 + r, 16 * v0, j.acc + r * j.lanes);
        v0 = v1;
      }
    }
    const __m512 scale = _mm512_maskz_loadu_ps(k, j.scale + n0);
    for (size_t i0 = 0; i0 < j.m; i0 += 16) {
      __m512i v[16];
      // Rows past `rows` hold stale sums: their lanes are masked off below.
      for (size_t r = 0; r < 16; ++r) v[r] = _mm512_loadu_si512(j.acc + (r < rows ? r : 0) * j.lanes + i0);
      transpose16(v);
      const size_t images = j.m - i0 < 16 ? j.m - i0 : 16;
      for (size_t i = 0; i < images; ++i) {
        const __m512 f = _mm512_cvtepi32_ps(v[i]);
        if (j.float_output) {
          _mm512_mask_storeu_ps(static_cast<float*>(j.out) + (i0 + i) * j.ldc + n0, k, _mm512_fmadd_ps(f, scale, _mm512_setzero_ps()));
        } else {
          const __m512 y = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(f, scale), lo), hi);
          // In range after the clamp; cvtps2dq rounds half to even (default MXCSR).
          const __m128i b = _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(y), zp));
          _mm_mask_storeu_epi8(static_cast<uint8_t*>(j.out) + (i0 + i) * j.ldc + n0, k, b);
        }
      }
    }
  }
}

// Batch below kLanesFrom: 16 blocks of a row per vpdpbusd, their input dwords gathered by group.
void spmm_gather(const S8SpmmJob& j, size_t row0, size_t row1) {
  for (size_t n = row0; n < row1; ++n) {
    const uint32_t b0 = j.row_ptr[n], b1 = j.row_ptr[n + 1];
    for (size_t i = 0; i < j.m; ++i) {
      const auto* x = reinterpret_cast<const int*>(j.x + i * j.ldx);
      __m512i acc = _mm512_setzero_si512();
      for (uint32_t b = b0; b < b1; b += 16) {
        const uint32_t left = b1 - b;
        const __mmask16 k = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
        const __m512i idx = _mm512_maskz_loadu_epi32(k, j.group + b);
        const __m512i xv = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), k, idx, x, 4);
        acc = _mm512_dpbusd_epi32(acc, xv, _mm512_maskz_loadu_epi32(k, j.word + b));
      }
      // The lane sums wrap modulo 2^32 like every other path.
      const int32_t sum = wrap_add(j.init[n], _mm512_reduce_add_epi32(acc));
      if (j.float_output) {
        static_cast<float*>(j.out)[i * j.ldc + n] = dequantize_f32(sum, j.scale[n], 0.0f);
      } else {
        static_cast<uint8_t*>(j.out)[i * j.ldc + n] = requantize_u8(sum, j.scale[n], j.zero_point, j.lo, j.hi);
      }
    }
  }
}

// 16 images x 16 groups per 16x16 dword transpose.
void transpose(const uint8_t* a, size_t m, size_t k, size_t lanes, uint8_t* xt) {
  const size_t groups = k / 4;
  auto* out = reinterpret_cast<int32_t*>(xt);
  for (size_t i0 = 0; i0 < lanes; i0 += 16) {
    for (size_t g0 = 0; g0 < groups; g0 += 16) {
      const size_t ng = groups - g0 < 16 ? groups - g0 : 16;
      const __mmask16 kg = ng == 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << ng) - 1);
      __m512i r[16];
      for (size_t i = 0; i < 16; ++i) {
        r[i] = i0 + i < m ? _mm512_maskz_loadu_epi32(kg, a + (i0 + i) * k + 4 * g0) : _mm512_setzero_si512();
      }
      transpose16(r);
      for (size_t g = 0; g < ng; ++g) _mm512_storeu_si512(out + (g0 + g) * lanes + i0, r[g]);
    }
  }
}

}  // namespace

void fill_s8_sparse_avx512vnni(DispatchTable* t) {
  t->s8_sparse = {"avx512vnni", spconv_channels, spmm_lanes, spmm_gather, transform, transpose};
}

}  // namespace kiln
