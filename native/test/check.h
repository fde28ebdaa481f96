// The pass/fail tally every native test executable keeps: check() counts a result and prints the
// first failures; finish() prints the totals and gives the exit code (1 on any failure).
#pragma once
#include <cstdio>
#include <string>

namespace kiln_test {

inline int g_passed = 0, g_failed = 0, g_skipped = 0;

// Failures past this many are counted, not printed: a broken kernel fails thousands of cases.
constexpr int kPrintedFailures = 20;

inline void check(bool ok, const std::string& what) {
  if (ok) {
    ++g_passed;
    return;
  }
  ++g_failed;
  if (g_failed <= kPrintedFailures) std::printf("FAIL %s\n", what.c_str());
}

// Prints "<prefix>N passed, N failed" (and the cases skipped, if any) and returns the process's
// exit code.
inline int finish(const char* prefix = "") {
  if (g_skipped > 0) {
    std::printf("%s%d passed, %d failed, %d cases skipped (over the emulation budget: they run natively)\n", prefix, g_passed,
                g_failed, g_skipped);
  } else {
    std::printf("%s%d passed, %d failed\n", prefix, g_passed, g_failed);
  }
  return g_failed == 0 ? 0 : 1;
}

}  // namespace kiln_test
