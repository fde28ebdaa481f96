// The grouped int8 convolution (s8-grouped.h) on AVX-512 VNNI: the EVEX vpdpbusd on ymm
// (AVX512VL). The kernel is s8-grouped-kernel.h's.
#include "common/simd.h"

#define KILN_GROUPED_TARGET
#include "s8-conv/s8-grouped-kernel.h"

namespace kiln {
namespace {

struct Dot {
  static __m256i dpbusd(__m256i acc, __m256i a, __m256i b) { return _mm256_dpbusd_epi32(acc, a, b); }
};

}  // namespace

void s8_grouped_run_u8_avx512vnni(const S8GroupedRun& r) { grouped_run<Dot>(r); }

}  // namespace kiln
