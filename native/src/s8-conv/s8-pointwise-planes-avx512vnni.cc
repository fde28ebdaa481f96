// The 1x1 int8 convolution into float planes (s8-pointwise-planes.h) on AVX-512 VNNI.
#include "common/simd.h"

#include <algorithm>
#include <cstring>

#include "s8-conv/s8-pointwise-planes.h"

namespace kiln {
namespace {

constexpr size_t kBlock = kS8PlanesChannelBlock;
static_assert(kBlock == 8, "the kernel names its eight accumulators");

// a[j] += x . broadcast(w[j]) for the block's eight channels, each weight dword read by the
// instruction's own broadcast, in one asm statement so that the eight independent sums interleave.
// From intrinsics GCC 12 either spilled the block's 64 weights through general registers (2.4
// cycles per vpdpbusd) or, given the broadcast form one instruction at a time, ran two sums down
// the whole depth, waiting on each one's latency.
inline void dot8(__m512i& a0, __m512i& a1, __m512i& a2, __m512i& a3, __m512i& a4, __m512i& a5, __m512i& a6,
                 __m512i& a7, __m512i x, const int32_t* w) {
  asm("vpdpbusd (%[w])%{1to16%}, %[x], %[a0]\n\t"
      "vpdpbusd 4(%[w])%{1to16%}, %[x], %[a1]\n\t"
      "vpdpbusd 8(%[w])%{1to16%}, %[x], %[a2]\n\t"
      "vpdpbusd 12(%[w])%{1to16%}, %[x], %[a3]\n\t"
      "vpdpbusd 16(%[w])%{1to16%}, %[x], %[a4]\n\t"
      "vpdpbusd 20(%[w])%{1to16%}, %[x], %[a5]\n\t"
      "vpdpbusd 24(%[w])%{1to16%}, %[x], %[a6]\n\t"
      "vpdpbusd 28(%[w])%{1to16%}, %[x], %[a7]"
      : [a0] "+v"(a0), [a1] "+v"(a1), [a2] "+v"(a2), [a3] "+v"(a3), [a4] "+v"(a4), [a5] "+v"(a5), [a6] "+v"(a6),
        [a7] "+v"(a7)
      : [x] "v"(x), [w] "r"(w), "m"(*reinterpret_cast<const int32_t(*)[8]>(w)));
}

// Q quads of input per pixel, known at compile time so that the 16 pixels' quads stay in
// registers (Q + 8 accumulators <= 24 of the 32).
template <size_t Q>
void run_quads(const S8PlanesRun& r) {
  alignas(64) uint8_t stage[kS8PlanesPixels * Q * 4];
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  // Lane i's byte offset: pixel i of the input, or of the staged copy.
  const __m512i in_offsets = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(static_cast<int>(r.channels)));
  const __m512i staged_offsets = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(static_cast<int>(Q * 4)));
  const __m512 zero = _mm512_setzero_ps();
  // A pixel's last quad reads up to 3 bytes past it when the channels are not a multiple of 4:
  // harmless inside the tensor (those lanes' weights are 0), so only a block that could read past
  // the image's last pixel is staged, zero-padded, as is a block of fewer than 16 pixels.
  const bool ragged = r.channels % 4 != 0;
  for (size_t p = r.p0; p < r.p1; p += kS8PlanesPixels) {
    const size_t n = std::min(kS8PlanesPixels, r.p1 - p);
    const uint8_t* src = r.in + p * r.channels;
    __m512i offsets = in_offsets;
    if (n < kS8PlanesPixels || (ragged && p + kS8PlanesPixels >= r.plane)) {
      std::memset(stage, 0, sizeof stage);
      for (size_t i = 0; i < n; ++i) std::memcpy(stage + i * Q * 4, src + i * r.channels, r.channels);
      src = stage;
      offsets = staged_offsets;
    }
    __m512i x[Q];
    for (size_t q = 0; q < Q; ++q) x[q] = _mm512_i32gather_epi32(offsets, src + 4 * q, 1);
    const __mmask16 mask = n == kS8PlanesPixels ? __mmask16(0xffff) : __mmask16((1u << n) - 1);
    for (size_t block = 0; block < r.blocks; ++block) {
      const int32_t* w = r.weight + block * Q * kBlock;
      const int32_t* b = r.bias + block * kBlock;
      __m512i a0 = _mm512_set1_epi32(b[0]), a1 = _mm512_set1_epi32(b[1]), a2 = _mm512_set1_epi32(b[2]);
      __m512i a3 = _mm512_set1_epi32(b[3]), a4 = _mm512_set1_epi32(b[4]), a5 = _mm512_set1_epi32(b[5]);
      __m512i a6 = _mm512_set1_epi32(b[6]), a7 = _mm512_set1_epi32(b[7]);
      for (size_t q = 0; q < Q; ++q, w += kBlock) {
        dot8(a0, a1, a2, a3, a4, a5, a6, a7, x[q], w);
      }
      const __m512i acc[kBlock] = {a0, a1, a2, a3, a4, a5, a6, a7};
      const size_t live = std::min(kBlock, r.out_channels - block * kBlock);
      for (size_t j = 0; j < live; ++j) {
        const size_t o = block * kBlock + j;
        __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[j]), _mm512_set1_ps(r.scale[o]));
        if (r.relu) v = _mm512_max_ps(zero, v);
        _mm512_mask_storeu_ps(r.out + o * r.plane + p, mask, v);
      }
    }
  }
}

}  // namespace

void s8_planes_run_avx512vnni(const S8PlanesRun& r) {
  static_assert(kS8PlanesMaxChannels == 16 * 4, "one instance per quad count");
  static constexpr S8PlanesRunFn by_quads[] = {run_quads<1>,  run_quads<2>,  run_quads<3>,  run_quads<4>,
                                               run_quads<5>,  run_quads<6>,  run_quads<7>,  run_quads<8>,
                                               run_quads<9>,  run_quads<10>, run_quads<11>, run_quads<12>,
                                               run_quads<13>, run_quads<14>, run_quads<15>, run_quads<16>};
  by_quads[r.quads - 1](r);
}

}  // namespace kiln
