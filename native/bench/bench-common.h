// Helpers shared by the native micro-benchmarks (header only: CMakeLists.txt builds one
// executable per native/bench/*.cc).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <vector>

#include "kiln/cpu.h"
#include "kiln/dispatch.h"

namespace kiln_bench {

inline double seconds_of(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// CPU time of the calling thread: leaves out time slices lost to other processes on a shared
// machine (meaningful for one-thread runs).
inline double thread_cpu_seconds() { return seconds_of(CLOCK_THREAD_CPUTIME_ID); }

// CPU time of the whole process (all threads).
inline double process_cpu_seconds() { return seconds_of(CLOCK_PROCESS_CPUTIME_ID); }

// Switches to the ISA named by `name` when there is one (else keeps the active ISA); false, after
// a message on stderr, when the name is unknown or this CPU lacks that ISA.
inline bool select_isa(const char* name) {
  if (name == nullptr) return true;
  kiln::Isa isa;
  if (!kiln::parse_isa(name, &isa) || !kiln::set_active_isa(isa)) {
    std::fprintf(stderr, "unknown or unsupported ISA %s\n", name);
    return false;
  }
  return true;
}

struct BestAndMedian {
  double best, median;  // seconds per call
};

// Fastest and median seconds of one call, over runs adding up to about `budget_ms` (at least 5),
// after one warm-up call (page faults, packing buffers): the fastest is what the kernel does when
// it has the core on a shared machine, the median what a caller typically sees.
template <typename Fn>
BestAndMedian time_calls(Fn&& fn, double budget_ms) {
  using Clock = std::chrono::steady_clock;
  fn();
  std::vector<double> times;
  const auto start = Clock::now();
  do {
    const auto t0 = Clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  } while (times.size() < 5 || std::chrono::duration<double, std::milli>(Clock::now() - start).count() < budget_ms);
  std::sort(times.begin(), times.end());
  return {times.front(), times[times.size() / 2]};
}

}  // namespace kiln_bench
