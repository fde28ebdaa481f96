// AVX2 masked loads (vmaskmovps / vpmaskmovd) for the tails of rows, for the AVX2 translation
// units only.
//
// On hardware a masked-off lane never faults (Intel SDM, VMASKMOV: "faults ... are not reported
// for elements whose mask bit is 0"), so a tail may be loaded with a mask even where the 32 bytes
// from `p` run past the end of its buffer into an unmapped page. QEMU's emulation (qemu-user 7.2,
// Debian 12, `-cpu Haswell`) loads all 32 bytes and raises SIGSEGV there: a QEMU defect, but it is
// what the portability test (test/portability/) runs the AVX2 kernels on, and other emulators and
// sanitizers may do the same. Kiln's kernels rely on the hardware rule twice: a tail whose 32 bytes
// run past the row, and an all-zero mask whose `p` lies wholly past the row (the second half of a
// short 2x2 pooling row). So the hardware load is used only when lane 0 is selected (p's page is
// then the row's own, hence mapped) and the 32 bytes stay in that 4 KiB page; otherwise the
// selected lanes are copied one by one, through a volatile pointer (else GCC vectorizes the copy
// loop back into a vmaskmovps). A movemask and two compares per tail; same result.
//
// QEMU 7.2 also reads 16 bytes for a scalar FMA with a memory operand (vfmadd231ss (mem)), which
// any a * b + c in an AVX2 unit may become: that one is not avoided here, so the C++ tests run
// under QEMU without their guard pages (KILN_TEST_GUARD_PAGES=0, test/portability/run.mjs).
//
// `static`: each translation unit keeps its own copy, compiled with its own -m flags (a weak
// inline function could be linked from the AVX-512 units into AVX2 callers).
#pragma once

#include <cstdint>

#include "common/simd.h"

namespace kiln {

/** The 32 bytes from p stay in p's 4 KiB page (the smallest page x86-64 maps). */
static inline bool within_one_page(const void* p) {
  return (reinterpret_cast<std::uintptr_t>(p) & 4095u) <= 4096u - 32u;
}

/** _mm256_maskload_ps(p, m) that reads no byte of a lane whose mask sign bit is clear. */
static inline __m256 maskload_ps(const float* p, __m256i m) {
  const int selected = _mm256_movemask_ps(_mm256_castsi256_ps(m));
  if ((selected & 1) && within_one_page(p)) return _mm256_maskload_ps(p, m);
  alignas(32) float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const volatile float* lane = p;
  for (int i = 0; i < 8; ++i) {
    if ((selected >> i) & 1) lanes[i] = lane[i];
  }
  return _mm256_load_ps(lanes);
}

/** _mm256_maskload_epi32(p, m) that reads no byte of a lane whose mask sign bit is clear. */
static inline __m256i maskload_epi32(const int* p, __m256i m) {
  const int selected = _mm256_movemask_ps(_mm256_castsi256_ps(m));
  if ((selected & 1) && within_one_page(p)) return _mm256_maskload_epi32(p, m);
  alignas(32) int lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const volatile int* lane = p;
  for (int i = 0; i < 8; ++i) {
    if ((selected >> i) & 1) lanes[i] = lane[i];
  }
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
}

}  // namespace kiln
