// Helpers shared by the native micro-benchmarks (header only: CMakeLists.txt builds one
// executable per native/bench/*.cc).
#pragma once

#include <cstdio>
#include <ctime>

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

}  // namespace kiln_bench
