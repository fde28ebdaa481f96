// Helpers the native test programs share: a seeded RNG, a page-guarded buffer, and the float64
// oracle of the sparse products.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "kiln/cpu.h"
#include "kiln/dispatch.h"

#include "check.h"

namespace kiln_test {

inline bool under_qemu() { return std::getenv("KILN_TEST_UNDER_QEMU") != nullptr; }

// The ISA levels a kernel test walks, scalar first: every level this CPU has. Under QEMU
// (KILN_TEST_UNDER_QEMU=1, set by test/portability/run.mjs) only the active one, the emulated CPU
// model's best (or KILN_ISA's): that run exists to execute the paths the host does not take on a
// CPU without the levels above them. The levels below are the host's too and run natively,
// forced through the dispatch override, in npm test.
inline std::vector<kiln::Isa> isas_to_test() {
  if (under_qemu()) return {kiln::active_isa()};
  return kiln::supported_isas();
}

// Multiply-adds a case may take under QEMU on a table with FMA. QEMU 7.2 emulates each FMA lane
// in a helper call, on some hosts 100-250x native: on an Intel Xeon VM conv-test's MNIST conv2
// case (11 M multiply-adds, run a dozen ways) took 25 s under -cpu Haswell against 0.1 s
// natively, and the program passed the runner's 10-minute limit. Larger cases are skipped there
// and counted (finish() prints the count); every case runs natively on every ISA level in npm
// test, and all of them run on the scalar table under -cpu qemu64 (no FMA: all of conv-test takes
// 38 s there). Each kernel family keeps cases under the budget, and a translation unit is compiled for
// one ISA level as a whole, so the emulated run still reaches every table's code.
constexpr double kQemuMultiplyAddBudget = 1.0e6;

inline bool over_qemu_budget(double multiply_adds) {
  return under_qemu() && kiln::active_isa() != kiln::Isa::kScalar && multiply_adds > kQemuMultiplyAddBudget;
}

// over_qemu_budget, counting the case as skipped.
inline bool skip_under_qemu(double multiply_adds) {
  if (!over_qemu_budget(multiply_adds)) return false;
  ++g_skipped;
  return true;
}

// SplitMix64: small, fast, and the same sequence on every platform for a seed.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    s += 0x9E3779B97F4A7C15ull;
    uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1).
  float uniform() { return static_cast<float>(next() >> 40) / static_cast<float>(1 << 24) * 2.0f - 1.0f; }
  // Uniform in [lo, hi).
  float uniform(float lo, float hi) { return lo + (hi - lo) * static_cast<float>(next() >> 40) / 16777216.0f; }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

// `count` elements ending exactly where an inaccessible page begins: a kernel that reads or
// writes one element past the end faults (unless KILN_TEST_GUARD_PAGES=0, see below).
template <typename T = float>
class Guarded {
 public:
  explicit Guarded(size_t count) : count_(count) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t bytes = count * sizeof(T);
    mapped_ = (bytes + page - 1) / page * page + page;
    void* p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      std::perror("mmap");
      std::exit(2);
    }
    base_ = static_cast<char*>(p);
    // KILN_TEST_GUARD_PAGES=0 leaves the page mapped: for runs under QEMU 7.2, whose emulation of
    // some AVX loads (a scalar FMA's memory operand) reads past the bytes the instruction uses.
    // The native runs (npm test) keep the guard and so still catch a kernel that reads too far.
    const char* guard = std::getenv("KILN_TEST_GUARD_PAGES");
    if (guard == nullptr || std::string(guard) != "0") mprotect(base_ + mapped_ - page, page, PROT_NONE);
    data_ = reinterpret_cast<T*>(base_ + mapped_ - page - bytes);
  }
  ~Guarded() { munmap(base_, mapped_); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
  T* data() { return data_; }
  T& operator[](size_t i) { return data_[i]; }
  size_t size() const { return count_; }
  void fill(T v) {
    for (size_t i = 0; i < count_; ++i) data_[i] = v;
  }
  template <typename R>
  void randomize(R& rng) {
    for (size_t i = 0; i < count_; ++i) data_[i] = rng.uniform();
  }

 private:
  size_t count_, mapped_;
  char* base_;
  T* data_;
};

// What a sparse product Y = W x X (+ bias, ReLU) wrote, against the float64 dense product of the
// same weights: every Y(i, j), j < n, within 1e-5 of the sum of its terms' magnitudes (the kernels
// sum in another order), and every Y(i, j), n <= j < ldy, still `sentinel`.
struct DenseProductCheck {
  bool equal = true;
  bool gaps_untouched = true;
};
inline DenseProductCheck check_dense_product(const float* w, size_t rows, size_t k, const float* x, size_t ldx,
                                             const float* y, size_t ldy, size_t n, const float* bias, bool relu,
                                             float sentinel) {
  DenseProductCheck r;
  for (size_t i = 0; i < rows; ++i) {
    for (size_t j = 0; j < ldy; ++j) {
      const float got = y[i * ldy + j];
      if (j >= n) {
        r.gaps_untouched &= got == sentinel;
        continue;
      }
      double sum = 0.0, mag = 0.0;
      for (size_t q = 0; q < k; ++q) {
        sum += static_cast<double>(w[i * k + q]) * x[q * ldx + j];
        mag += std::fabs(static_cast<double>(w[i * k + q]) * x[q * ldx + j]);
      }
      if (bias) {
        sum += bias[i];
        mag += std::fabs(bias[i]);
      }
      if (relu && sum < 0.0) sum = 0.0;
      if (!(std::fabs(got - sum) <= 1e-5 * mag + 1e-30)) r.equal = false;
    }
  }
  return r;
}

}  // namespace kiln_test
