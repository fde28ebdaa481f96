// int8 GEMM throughput per kernel family as a fraction of the single-core int8 peak measured in
// the same run (vpdpbusd, or vpmaddwd + vpaddd on the exact AVX2 / AVX-512BW paths).
//   s8-gemm-bench [family ...]   families: scalar avx2 avx512bw avx512vnni avxvnni
//                                (default: every one this CPU has except scalar)
// Square C = A * B (weights prepacked, int32 output, and requantized uint8 output) at 64..1024 on
// 1 and 2 threads, then conv-shaped products. GOP/s counts 2 operations per multiply-add.
// The machine may be shared: the peak is the best of many short windows and each product is
// reported from its fastest run ("best", what the kernel does when it has the core) next to the
// median of the timed runs.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kiln/cpu.h"
#include "kiln/dispatch.h"
#include "kiln/s8-gemm.h"
#include "kiln/thread-pool.h"

#include "bench-common.h"

namespace {

double best_peak_gmacs() {
  double best = 0.0;
  // Windows as short as the shortest timed products, so both dodge other processes alike.
  for (int i = 0; i < 300; ++i) best = std::max(best, kiln::measure_s8_peak_gmacs(1.0));
  return best;
}

struct Shape {
  std::string name;
  size_t m, n, k;
};

// Selects a family by name; false when this CPU cannot run it.
bool select_family(const std::string& name) {
  kiln::set_s8_gemm_force_avxvnni(false);
  if (name == "avxvnni") return kiln::set_active_isa(kiln::best_isa()) && kiln::set_s8_gemm_force_avxvnni(true);
  const char* isa = name == "avx512bw" ? "avx512" : name.c_str();
  kiln::Isa level;
  if (!kiln::parse_isa(isa, &level) || !kiln::set_active_isa(level)) return false;
  return name == kiln::s8_gemm_kernel_name();
}

void bench_family(const std::string& family) {
  const double peak = best_peak_gmacs();
  std::printf("\n%s: single-core int8 peak %.1f GMAC/s = %.1f GOP/s\n", family.c_str(), peak, 2 * peak);
  std::printf("%-24s %7s %17s %8s %13s %14s %8s\n", "product (MxNxK)", "threads", "int32 best GOP/s",
              "of peak", "median GOP/s", "u8 best GOP/s", "of peak");

  std::vector<Shape> shapes;
  for (size_t s : {64, 128, 256, 512, 1024}) {
    shapes.push_back({std::to_string(s) + "x" + std::to_string(s) + "x" + std::to_string(s), s, s, s});
  }
  // im2col products (M = output pixels, N = output channels, K = Cin * 3 * 3).
  shapes.push_back({"conv 3x3 64->64 28x28", 784, 64, 576});
  shapes.push_back({"conv 3x3 128->128 14x14", 196, 128, 1152});
  shapes.push_back({"conv 3x3 256->256 7x7", 49, 256, 2304});
  shapes.push_back({"fc 1x1024x4096", 1, 1024, 4096});

  for (const Shape& s : shapes) {
    std::vector<uint8_t> a(s.m * s.k), c8(s.m * s.n);
    std::vector<int8_t> b(s.k * s.n);
    std::vector<int32_t> c(s.m * s.n), bias(s.n);
    std::vector<float> scale(s.n, 1.0f / 4096.0f);
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint8_t>((i * 7919) % 251);
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<int8_t>((i * 104729) % 255 - 127);
    for (size_t j = 0; j < s.n; ++j) bias[j] = static_cast<int32_t>(j * 31) - 1000;
    const kiln::PackedS8B packed(false, s.k, s.n, b.data(), s.n);
    kiln::S8Requantization rq;
    rq.scale = scale.data();
    rq.zero_point = 3;
    rq.min = 3;
    const double ops = 2.0 * s.m * s.n * s.k;
    for (size_t threads : {1, 2}) {
      if (threads > kiln::num_threads()) continue;
      const double budget = ops > 2e8 ? 600.0 : 200.0;
      const kiln_bench::BestAndMedian t32 = kiln_bench::time_calls(
          [&] { kiln::s8gemm(s.m, a.data(), s.k, 128, packed, bias.data(), c.data(), s.n, threads); }, budget);
      const kiln_bench::BestAndMedian t8 = kiln_bench::time_calls(
          [&] {
            kiln::s8gemm_requantize(s.m, a.data(), s.k, 128, packed, bias.data(), rq, c8.data(), s.n, threads);
          },
          budget);
      const double g32 = ops / t32.best * 1e-9, g32m = ops / t32.median * 1e-9, g8 = ops / t8.best * 1e-9;
      const double peak_ops = 2 * peak * threads;
      std::printf("%-24s %7zu %17.1f %7.0f%% %13.1f %14.1f %7.0f%%\n", s.name.c_str(), threads, g32,
                  100.0 * g32 / peak_ops, g32m, g8, 100.0 * g8 / peak_ops);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> families;
  for (int i = 1; i < argc; ++i) families.push_back(argv[i]);
  if (families.empty()) families = {"avx2", "avx512bw", "avx512vnni", "avxvnni"};
  std::printf("CPU: %s, %zu threads in the pool\n", kiln::cpu_features().brand.c_str(), kiln::num_threads());
  for (const std::string& f : families) {
    if (!select_family(f)) {
      std::printf("\n%s: not available on this CPU, skipped\n", f.c_str());
      continue;
    }
    bench_family(f);
  }
  kiln::set_s8_gemm_force_avxvnni(false);
  return 0;
}
