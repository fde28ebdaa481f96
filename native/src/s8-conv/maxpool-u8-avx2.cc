// uint8 max-pool run with AVX2: vpmaxub over 32 channels at a time, the accumulator kept in a
// register across the window's taps; the last partial vector byte by byte.
#include "common/simd.h"

#include "s8-conv/maxpool-u8.h"

namespace kiln {

void max_pool_u8_run_avx2(const uint8_t* const* taps, size_t count, size_t pixels, size_t step, size_t channels,
                          uint8_t* out) {
  for (size_t p = 0, at = 0; p < pixels; ++p, at += step, out += channels) {
    size_t c = 0;
    for (; c + 32 <= channels; c += 32) {
      __m256i best = _mm256_setzero_si256();
      for (size_t t = 0; t < count; ++t) {
        best = _mm256_max_epu8(best, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(taps[t] + at + c)));
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), best);
    }
    for (; c < channels; ++c) {
      uint8_t best = 0;
      for (size_t t = 0; t < count; ++t) best = taps[t][at + c] > best ? taps[t][at + c] : best;
      out[c] = best;
    }
  }
}

}  // namespace kiln
