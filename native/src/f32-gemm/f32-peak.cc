// Single-core fp32 FMA peak: the yardstick GEMM efficiency is reported against.
#include <algorithm>
#include <chrono>

#include "common/dispatch.h"
#include "kiln/f32-gemm.h"

namespace kiln {

// Runs short rounds for about `milliseconds` and returns the fastest round's rate: a peak is what
// the core does when it runs, so a time slice lost to another process must not lower it.
double measure_f32_peak_gflops(double milliseconds) {
  const F32PeakLoopFn loop = dispatch().f32_gemm.peak_loop;
  using Clock = std::chrono::steady_clock;
  const auto ms_since = [](Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  };
  // Warm up (clock ramp, AVX-512 power state) while sizing a round to about 0.25 ms.
  size_t round = 1024;
  for (;;) {
    const auto t0 = Clock::now();
    loop(round);
    if (ms_since(t0) >= 0.25 || round >= (size_t(1) << 40)) break;
    round *= 2;
  }
  double best = 0.0;
  const auto start = Clock::now();
  do {
    const auto t0 = Clock::now();
    const double flops = loop(round);
    const double ms = ms_since(t0);
    if (ms > 0.0) best = std::max(best, flops / (ms * 1e6));
  } while (ms_since(start) < milliseconds);
  return best;
}

}  // namespace kiln
