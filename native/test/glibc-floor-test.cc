// native/compat/glibc-floor.cc: the prebuilt binary's stand-ins for glibc symbols newer than 2.28,
// checked on whatever glibc runs this. The realtime wait is what a glibc 2.28-2.29 machine takes;
// none here does, so it is called directly, next to the dispatching wait.
#include <pthread.h>

#include "check.h"

#if defined(__GLIBC__)
#include <errno.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <thread>

#include "../compat/glibc-floor.h"

using kiln_test::check;

namespace {

bool same_bits(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0;
}

void check_math() {
  const double inf = std::numeric_limits<double>::infinity();
  const double values[] = {0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-310, -745.2, 709.78, 710.0, 1e300, -1e300, inf, -inf, std::nan(""), 3.14159, -2.5, 100.25};
  for (double x : values) {
    check(same_bits(kiln_compat::exp_2_2_5(x), std::exp(x)), "exp@GLIBC_2.2.5(" + std::to_string(x) + ") == exp");
    check(same_bits(kiln_compat::log_2_2_5(x), std::log(x)), "log@GLIBC_2.2.5(" + std::to_string(x) + ") == log");
    for (double y : values) check(same_bits(kiln_compat::pow_2_2_5(x, y), std::pow(x, y)), "pow@GLIBC_2.2.5(" + std::to_string(x) + ", " + std::to_string(y) + ") == pow");
  }
}

void check_random() {
  uint32_t ored = 0, anded = ~0u, first = kiln_compat::random_u32();
  bool varied = false;
  for (int i = 0; i < 256; ++i) {
    uint32_t v = kiln_compat::random_u32();
    ored |= v;
    anded &= v;
    varied = varied || v != first;
  }
  check(varied, "random_u32 gives different values");
  check(ored == ~0u && anded == 0u, "each of random_u32's 32 bits is seen both set and clear in 256 draws");
}

struct Waiter {
  pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
  bool ready = false;
};

timespec steady_in(int64_t ns) {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  int64_t total = t.tv_nsec + ns;
  t.tv_sec += total / 1000000000LL;
  t.tv_nsec = total % 1000000000LL;
  return t;
}

int64_t steady_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

using Wait = int (*)(pthread_cond_t*, pthread_mutex_t*, clockid_t, const timespec*);

void check_wait(Wait wait, const std::string& name) {
  Waiter w;
  pthread_mutex_lock(&w.mutex);
  // A deadline already past times out at once.
  timespec past = steady_in(-1000000);
  check(wait(&w.cond, &w.mutex, CLOCK_MONOTONIC, &past) == ETIMEDOUT, name + ": a past deadline times out");
  // With no signal, the wait lasts until the deadline (never less: it may last longer on a busy machine).
  const int64_t wait_ns = 30000000;
  int64_t started = steady_ns();
  timespec soon = steady_in(wait_ns);
  int r = 0;
  while ((r = wait(&w.cond, &w.mutex, CLOCK_MONOTONIC, &soon)) == 0) {
  }
  check(r == ETIMEDOUT, name + ": an unsignalled wait times out");
  check(steady_ns() - started >= wait_ns, name + ": it times out no earlier than its steady-clock deadline (" + std::to_string((steady_ns() - started) / 1000) + " us of 30000)");
  // A signal ends a long wait, with the mutex held again.
  std::thread signaller([&w] {
    pthread_mutex_lock(&w.mutex);
    w.ready = true;
    pthread_cond_signal(&w.cond);
    pthread_mutex_unlock(&w.mutex);
  });
  timespec far = steady_in(60LL * 1000000000LL);
  r = 0;
  while (!w.ready && r == 0) r = wait(&w.cond, &w.mutex, CLOCK_MONOTONIC, &far);
  check(r == 0 && w.ready, name + ": a signal ends the wait before its deadline");
  check(pthread_mutex_trylock(&w.mutex) == EBUSY, name + ": the mutex is held again after the wait");
  pthread_mutex_unlock(&w.mutex);
  signaller.join();
}

}  // namespace

int main() {
  check_math();
  check_random();
  check_wait(kiln_compat::clockwait_by_realtime, "clockwait_by_realtime");
  check_wait(kiln_compat::clockwait, "clockwait");
  return kiln_test::finish("glibc-floor-test: ");
}

#else
int main() {
  std::printf("glibc-floor-test: not glibc, nothing to check\n");
  return 0;
}
#endif
