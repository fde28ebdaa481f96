// Single-core fp32 FMA peak: the yardstick GEMM efficiency is reported against.
#include <chrono>

#include "common/dispatch.h"
#include "kiln/f32-gemm.h"

namespace kiln {

double measure_f32_peak_gflops(double milliseconds) {
  const F32PeakLoopFn loop = dispatch().f32_gemm.peak_loop;
  using Clock = std::chrono::steady_clock;
  // Warm up (clock ramp, AVX-512 licence) and size a round to roughly a millisecond.
  size_t round = 1024;
  for (;;) {
    const auto t0 = Clock::now();
    loop(round);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (ms >= 0.5 || round >= (size_t(1) << 40)) break;
    round *= 2;
  }
  double flops = 0.0;
  const auto start = Clock::now();
  double elapsed_ms = 0.0;
  do {
    flops += loop(round);
    elapsed_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  } while (elapsed_ms < milliseconds);
  return flops / (elapsed_ms * 1e6);
}

}  // namespace kiln
