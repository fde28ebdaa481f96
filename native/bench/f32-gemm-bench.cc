// fp32 GEMM throughput per ISA as a fraction of the single-core FMA peak measured in the same run.
//   f32-gemm-bench [isa ...]     (default: every ISA this CPU has)
// Square C = A * B (row-major, no transposes) at 64..1024 on 1 and 2 threads, then the products of
// the MNIST networks. Each product runs repeatedly after a warm-up. Columns, in GFLOP/s: median
// and best wall-clock run; on one thread, for calls of 1 ms or more, also the best run in thread
// CPU time, which leaves out time slices lost to other processes on a shared machine. "of peak" divides the best figure by
// the peak (the fastest of many short FMA-loop rounds) times the thread count.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kiln/cpu.h"
#include "kiln/dispatch.h"
#include "kiln/f32-gemm.h"
#include "kiln/thread-pool.h"

#include "bench-common.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Timing {
  double median_s, best_s, best_cpu_s;
};

// Median and fastest wall-clock seconds of one call, and the fastest in CPU time of the calling
// thread (meaningful on one thread only: it leaves out time slices lost to other processes),
// over runs adding up to about `budget_ms`.
template <typename Fn>
Timing time_calls(Fn&& fn, double budget_ms) {
  fn();  // warm-up: page faults, packing buffers
  std::vector<double> times;
  double best_cpu = 1e30;
  const auto start = Clock::now();
  do {
    const double cpu0 = kiln_bench::thread_cpu_seconds();
    const auto t0 = Clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    best_cpu = std::min(best_cpu, kiln_bench::thread_cpu_seconds() - cpu0);
  } while (times.size() < 5 ||
           std::chrono::duration<double, std::milli>(Clock::now() - start).count() < budget_ms);
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], times[0], best_cpu};
}

double best_peak() {
  double best = 0.0;
  for (int i = 0; i < 5; ++i) best = std::max(best, kiln::measure_f32_peak_gflops(100.0));
  return best;
}

struct Shape {
  const char* name;
  bool trans_a, trans_b;
  size_t m, n, k;
};

void bench_isa(kiln::Isa isa) {
  kiln::set_active_isa(isa);
  const double peak = best_peak();
  std::printf("\n%s: single-core FMA peak %.1f GFLOP/s\n", kiln::isa_name(isa), peak);
  std::printf("%-26s %3s %8s %8s %8s %9s\n", "product (MxNxK)", "thr", "median", "best", "best cpu",
              "of peak");

  std::vector<Shape> shapes;
  for (size_t s : {64, 128, 256, 512, 1024}) shapes.push_back({"square", false, false, s, s, s});
  shapes.push_back({"conv1 32x676x9", false, false, 32, 676, 9});
  shapes.push_back({"conv2 64x121x288", false, false, 64, 121, 288});
  shapes.push_back({"conv2 x8 64x968x288", false, false, 64, 968, 288});
  shapes.push_back({"fc 64x128x1600 (B^T)", false, true, 64, 128, 1600});
  shapes.push_back({"fc bwd 1600x128x64 (A^T)", true, false, 1600, 128, 64});

  for (const Shape& s : shapes) {
    std::vector<float> a(s.m * s.k), b(s.k * s.n), c(s.m * s.n);
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>((i * 7919) % 13) / 13.0f - 0.5f;
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>((i * 104729) % 17) / 17.0f - 0.5f;
    const size_t lda = s.trans_a ? s.m : s.k, ldb = s.trans_b ? s.k : s.n;
    const double flops = 2.0 * s.m * s.n * s.k;
    for (size_t threads : {1, 2}) {
      if (threads > kiln::num_threads()) continue;
      const Timing t = time_calls(
          [&] {
            kiln::sgemm(s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f,
                        c.data(), s.n, kiln::GemmEpilogue(), threads);
          },
          flops > 1e8 ? 600.0 : 200.0);
      char name[64];
      if (std::strcmp(s.name, "square") == 0) {
        std::snprintf(name, sizeof(name), "%zux%zux%zu", s.m, s.n, s.k);
      } else {
        std::snprintf(name, sizeof(name), "%s", s.name);
      }
      // Efficiency from the best wall-clock run, or on one thread from the best CPU-time run when
      // calls last long enough (>= 1 ms) for the CPU clock's granularity not to matter.
      const double best = flops / t.best_s * 1e-9;
      const double best_cpu = flops / t.best_cpu_s * 1e-9;
      const bool use_cpu = threads == 1 && t.best_s >= 1e-3;
      const double rate = use_cpu ? std::max(best, best_cpu) : best;
      char cpu[16] = "-";
      if (use_cpu) std::snprintf(cpu, sizeof(cpu), "%.1f", best_cpu);
      std::printf("%-26s %3zu %8.1f %8.1f %8s %8.0f%%\n", name, threads, flops / t.median_s * 1e-9, best, cpu,
                  100.0 * rate / (peak * threads));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<kiln::Isa> isas;
  for (int i = 1; i < argc; ++i) {
    kiln::Isa isa;
    if (!kiln::parse_isa(argv[i], &isa) || isa > kiln::best_isa()) {
      std::fprintf(stderr, "unknown or unsupported ISA: %s\n", argv[i]);
      return 2;
    }
    isas.push_back(isa);
  }
  if (isas.empty()) isas = kiln::supported_isas();
  std::printf("CPU: %s, %zu threads in the pool\n", kiln::cpu_features().brand.c_str(), kiln::num_threads());
  for (kiln::Isa isa : isas) bench_isa(isa);
  return 0;
}
