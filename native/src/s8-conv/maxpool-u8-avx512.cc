// uint8 max-pool run with AVX-512BW: vpmaxub over 64 channels at a time, masked for the last
// partial vector (masked-off bytes are never read or written).
#include "common/simd.h"

#include "s8-conv/maxpool-u8.h"

namespace kiln {

void max_pool_u8_run_avx512(const uint8_t* const* taps, size_t count, size_t pixels, size_t step, size_t channels,
                            uint8_t* out) {
  for (size_t p = 0, at = 0; p < pixels; ++p, at += step, out += channels) {
    for (size_t c = 0; c < channels; c += 64) {
      const size_t n = channels - c;
      const __mmask64 m = n >= 64 ? ~__mmask64{0} : ((__mmask64{1} << n) - 1);
      __m512i best = _mm512_setzero_si512();
      for (size_t t = 0; t < count; ++t) best = _mm512_max_epu8(best, _mm512_maskz_loadu_epi8(m, taps[t] + at + c));
      _mm512_mask_storeu_epi8(out + c, m, best);
    }
  }
}

}  // namespace kiln
