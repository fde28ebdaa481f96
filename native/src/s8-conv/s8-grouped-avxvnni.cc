// The grouped int8 convolution (s8-grouped.h) on AVX-VNNI: the VEX vpdpbusd on ymm, for CPUs
// with AVX-VNNI and no AVX-512 (Alder Lake and later client cores). In the avx2 source group:
// AVX-VNNI is enabled per function (target attribute), as in s8-gemm-avxvnni.cc, so nothing else
// here may use it. The kernel is s8-grouped-kernel.h's.
#include "common/simd.h"

#include "common/dispatch.h"

#define KILN_GROUPED_TARGET __attribute__((target("avxvnni")))
#include "s8-conv/s8-grouped-kernel.h"

namespace kiln {
namespace {

struct Dot {
  KILN_GROUPED_TARGET static __m256i dpbusd(__m256i acc, __m256i a, __m256i b) {
    return _mm256_dpbusd_avx_epi32(acc, a, b);
  }
};

KILN_GROUPED_TARGET void s8_grouped_run_u8_avxvnni(const S8GroupedRun& r) { grouped_run<Dot>(r); }

}  // namespace

void fill_s8_grouped_avxvnni(DispatchTable* table) { table->s8_conv.grouped_run_u8 = s8_grouped_run_u8_avxvnni; }

}  // namespace kiln
