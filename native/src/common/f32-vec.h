// fp32 vector operations for the per-ISA kernel files (traits structs for the templates of
// f32-gemm-tile.h and sparse-tile.h): F32Avx2 in files compiled with the AVX2 flags, F32Avx512
// with the AVX-512 ones (each is defined only where the compiler targets its ISA). A family's
// traits struct derives from one and adds its own tail_mask (the GEMM's takes a tile width, the
// SpMM's a count of valid lanes).
#pragma once
#include <cstddef>

#include "common/simd.h"
#include "common/masked-load-avx2.h"

namespace kiln {
namespace {

#ifdef __AVX2__
struct F32Avx2 {
  static constexpr size_t kLanes = 8;
  using Vec = __m256;
  using Mask = __m256i;  // all bits set = lane on
  // The first min(n, 8) lanes.
  static Mask first_lanes(size_t n) {
    const int valid = n >= 8 ? 8 : static_cast<int>(n);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec set1(float x) { return _mm256_set1_ps(x); }
  static Vec broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static Vec loadu(const float* p) { return _mm256_loadu_ps(p); }
  static Vec load_tail(const float* p, Mask m) { return maskload_ps(p, m); }
  static void storeu(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static void store_tail(float* p, Mask m, Vec v) { _mm256_maskstore_ps(p, m, v); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
  static Vec min(Vec a, Vec b) { return _mm256_min_ps(a, b); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  static void hide(Vec& a, Vec& b) { __asm__("" : "+x"(a), "+x"(b)); }
  static float sum_lanes(Vec v) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, v);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
  }
};
#endif

#ifdef __AVX512F__
struct F32Avx512 {
  static constexpr size_t kLanes = 16;
  using Vec = __m512;
  using Mask = __mmask16;
  // The first min(n, 16) lanes.
  static Mask first_lanes(size_t n) {
    return n >= 16 ? static_cast<Mask>(0xFFFF) : static_cast<Mask>((1u << n) - 1);
  }
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec set1(float x) { return _mm512_set1_ps(x); }
  static Vec broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static Vec loadu(const float* p) { return _mm512_loadu_ps(p); }
  static Vec load_tail(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void storeu(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static void store_tail(float* p, Mask m, Vec v) { _mm512_mask_storeu_ps(p, m, v); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
  static Vec min(Vec a, Vec b) { return _mm512_min_ps(a, b); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  static void hide(Vec& a, Vec& b) { __asm__("" : "+v"(a), "+v"(b)); }
  static float sum_lanes(Vec v) { return _mm512_reduce_add_ps(v); }
};
#endif

}  // namespace
}  // namespace kiln
