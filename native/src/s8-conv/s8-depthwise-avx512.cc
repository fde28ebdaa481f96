// Depthwise int8 run kernel with AVX-512 (BW): pairs of taps through vpmaddwd on the pair
// layout's 32-channel blocks, then 32 and 16 channels at a time in int32 accumulators that stay in
// registers across the taps and a masked tail (s8-depthwise-avx512.h, shared with the VNNI file).
#include "common/simd.h"

#include "s8-conv/s8-depthwise-avx512.h"
#include "s8-conv/s8-depthwise.h"

namespace kiln {

void s8_depthwise_run_avx512(const S8DepthwiseRun& r) {
  for (size_t p = 0; p < r.pixels; ++p) s8_depthwise_pixel_avx512(r, r.x + p * r.pixel_step, p, 0);
}

}  // namespace kiln
