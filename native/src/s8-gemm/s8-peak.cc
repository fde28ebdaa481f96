// Single-core int8 multiply-add peak of the active kernel family: the yardstick int8 GEMM
// efficiency is reported against.
#include <chrono>

#include "kiln/s8-gemm.h"
#include "s8-gemm/s8-gemm-ukernel.h"

namespace kiln {

double measure_s8_peak_gmacs(double milliseconds) {
  const S8PeakLoopFn loop = s8_gemm_active_kernels().peak_loop;
  using Clock = std::chrono::steady_clock;
  // Warm up (clock ramp, AVX-512 licence) and size a round to roughly half a millisecond.
  size_t round = 1024;
  for (;;) {
    const auto t0 = Clock::now();
    loop(round);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (ms >= 0.5 || round >= (size_t(1) << 40)) break;
    round *= 2;
  }
  double macs = 0.0;
  const auto start = Clock::now();
  double elapsed_ms = 0.0;
  do {
    macs += loop(round);
    elapsed_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  } while (elapsed_ms < milliseconds);
  return macs / (elapsed_ms * 1e6);
}

}  // namespace kiln
