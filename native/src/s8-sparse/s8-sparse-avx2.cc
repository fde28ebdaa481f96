// Sparse int8 kernels on 8 lanes: the exact AVX2 path (no VNNI) and the AVX-VNNI path (VEX
// vpdpbusd on ymm), one body (s8-sparse-avx2-kernels.inc) included once per dot product. This
// file is in the avx2 source group; AVX-VNNI is enabled per function (target attribute), as in
// s8-gemm-avxvnni.cc, so the exact path can never pick up a VNNI instruction.
//
// The exact path cannot use vpmaddubsw on the 4-byte groups as they are: x0*w0 + x1*w1 reaches
// 2 * 255 * 128 = 65280 and saturates int16. Each weight word is split into its even bytes
// (w0, 0, w2, 0) and odd bytes (0, w1, 0, w3): then each int16 of vpmaddubsw holds ONE product
// (|x * w| <= 255 * 128 = 32640, no saturation), and vpmaddwd by 1 widens the two of a dword to
// int32 exactly. Two vpmaddubsw + two vpmaddwd per block and vector: the same sums as vpdpbusd.
#include "common/simd.h"
#include "common/masked-load-avx2.h"

#include <cstring>

#include "common/dispatch.h"
#include "kiln/cpu.h"
#include "quant/requantize.h"
#include "s8-sparse/s8-sparse-ukernel.h"

#define KILN_AVXVNNI __attribute__((target("avxvnni")))

namespace kiln {
namespace {

// 8 sums requantized (quant/requantize.h lane by lane) to 8 bytes at tmp.
inline void requantize8(__m256i acc, __m256 scale, __m256 lo, __m256 hi, __m256i zp, uint8_t* tmp) {
  __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
  y = _mm256_min_ps(_mm256_max_ps(y, lo), hi);
  // In range after the clamp; cvtps2dq rounds half to even (default MXCSR).
  const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(y), zp);
  const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(tmp), _mm_packus_epi16(w, w));  // 0..255: no saturation
}

inline __m256i load8(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

void conv_epilogue(const S8SpConvImage& im, const S8SpConvChannel& ch, const int32_t* a, uint8_t* out) {
  const __m256 scale = _mm256_set1_ps(ch.scale), lo = _mm256_set1_ps(im.lo), hi = _mm256_set1_ps(im.hi);
  const __m256i zp = _mm256_set1_epi32(im.zero_point);
  alignas(16) uint8_t tmp[16];
  if (im.pool) {
    // Lane 2j of max(row, row shifted by one) over both rows is pooled column c0 / 2 + j; loads
    // past a row read the next row or the acc slack, in lanes that are dropped.
    for (size_t py = 0; py < im.pooled_h; ++py) {
      const int32_t* r0 = a + 2 * py * im.wp;
      const int32_t* r1 = r0 + im.wp;
      uint8_t* y = out + py * im.pooled_w * im.out_stride;
      for (size_t c0 = 0; c0 < 2 * im.pooled_w; c0 += 8) {
        const __m256i m0 = _mm256_max_epi32(load8(r0 + c0), load8(r0 + c0 + 1));
        const __m256i m1 = _mm256_max_epi32(load8(r1 + c0), load8(r1 + c0 + 1));
        requantize8(_mm256_max_epi32(m0, m1), scale, lo, hi, zp, tmp);
        const size_t px0 = c0 / 2, n = im.pooled_w - px0 < 4 ? im.pooled_w - px0 : 4;
        for (size_t j = 0; j < n; ++j) y[(px0 + j) * im.out_stride] = tmp[2 * j];
      }
    }
    return;
  }
  for (size_t oy = 0; oy < im.rows; ++oy) {
    uint8_t* y = out + oy * im.out_w * im.out_stride;
    for (size_t c0 = 0; c0 < im.out_w; c0 += 8) {
      requantize8(load8(a + oy * im.wp + c0), scale, lo, hi, zp, tmp);
      const size_t n = im.out_w - c0 < 8 ? im.out_w - c0 : 8;
      for (size_t j = 0; j < n; ++j) y[(c0 + j) * im.out_stride] = tmp[j];
    }
  }
}

void store_column(const S8SpmmJob& j, size_t n, const int32_t* acc) {
  const __m256 scale = _mm256_set1_ps(j.scale[n]);
  if (j.float_output) {
    alignas(32) float tmp[8];
    for (size_t i0 = 0; i0 < j.m; i0 += 8) {
      _mm256_store_ps(tmp, _mm256_fmadd_ps(_mm256_cvtepi32_ps(load8(acc + i0)), scale, _mm256_setzero_ps()));
      const size_t cnt = j.m - i0 < 8 ? j.m - i0 : 8;
      for (size_t i = 0; i < cnt; ++i) static_cast<float*>(j.out)[(i0 + i) * j.ldc + n] = tmp[i];
    }
    return;
  }
  const __m256 lo = _mm256_set1_ps(j.lo), hi = _mm256_set1_ps(j.hi);
  const __m256i zp = _mm256_set1_epi32(j.zero_point);
  alignas(16) uint8_t tmp[16];
  for (size_t i0 = 0; i0 < j.m; i0 += 8) {
    requantize8(load8(acc + i0), scale, lo, hi, zp, tmp);
    const size_t cnt = j.m - i0 < 8 ? j.m - i0 : 8;
    for (size_t i = 0; i < cnt; ++i) static_cast<uint8_t*>(j.out)[(i0 + i) * j.ldc + n] = tmp[i];
  }
}

inline int32_t hsum(__m256i v) {  // wraps modulo 2^32 like every other path
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

namespace exact {

constexpr int kMaxVectors = 6;  // 6 accumulators + 2 weight halves + ones + temporaries: 16 ymm

struct Dot {
  struct Weight {
    __m256i even, odd;
  };
  static Weight weights(__m256i w) {
    return {_mm256_and_si256(w, _mm256_set1_epi32(0x00FF00FF)), _mm256_and_si256(w, _mm256_set1_epi32(static_cast<int>(0xFF00FF00u)))};
  }
  static Weight weight(int32_t word) { return weights(_mm256_set1_epi32(word)); }
  static __m256i dot(__m256i acc, __m256i x, const Weight& w) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i e = _mm256_madd_epi16(_mm256_maddubs_epi16(x, w.even), ones);
    const __m256i o = _mm256_madd_epi16(_mm256_maddubs_epi16(x, w.odd), ones);
    return _mm256_add_epi32(acc, _mm256_add_epi32(e, o));
  }
};

#define KILN_S8SP_TARGET
#include "s8-sparse/s8-sparse-avx2-kernels.inc"
#undef KILN_S8SP_TARGET

}  // namespace exact

namespace vnni {

constexpr int kMaxVectors = 12;  // 12 accumulators + the word + a load: 16 ymm

struct Dot {
  using Weight = __m256i;
  KILN_AVXVNNI static Weight weights(__m256i w) { return w; }
  KILN_AVXVNNI static Weight weight(int32_t word) { return _mm256_set1_epi32(word); }
  // asm, as on AVX-512 (GCC 12 copies the intrinsic's accumulator each time); {vex} forces the
  // AVX-VNNI encoding, which CPUs without AVX-512 VNNI run.
  KILN_AVXVNNI static __m256i dot(__m256i acc, __m256i x, __m256i w) {
    asm("%{vex%} vpdpbusd %[w], %[x], %[acc]" : [acc] "+x"(acc) : [x] "x"(x), [w] "x"(w));
    return acc;
  }
};

#define KILN_S8SP_TARGET KILN_AVXVNNI
#include "s8-sparse/s8-sparse-avx2-kernels.inc"
#undef KILN_S8SP_TARGET

}  // namespace vnni

}  // namespace

void fill_s8_sparse_avx2(DispatchTable* t) {
  t->s8_sparse = {"avx2", exact::spconv_channels, exact::spmm_lanes, exact::spmm_gather};
  const CpuFeatures& cpu = cpu_features();
  if (cpu.avxvnni) {
    t->s8_sparse_avxvnni = {"avxvnni", vnni::spconv_channels, vnni::spmm_lanes, vnni::spmm_gather};
    // As the dense GEMM: without AVX512-VNNI, AVX-VNNI is the best int8 path this CPU has.
    if (!cpu.avx512vnni) t->s8_sparse = t->s8_sparse_avxvnni;
  }
}

}  // namespace kiln
