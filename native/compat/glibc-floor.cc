// Linked into the prebuilt binary only (binding.gyp, `kiln_sysroot`). With Debian 11's glibc 2.31
// as sysroot and GCC's libstdc++ linked in statically, these few symbols are all that would still
// ask for a glibc newer than 2.28, the oldest Node 20 runs on. test/portability/run.mjs checks the
// shipped binary's symbol versions and runs it on glibc 2.31; native/test/glibc-floor-test.cc checks
// the stand-ins themselves, the realtime wait included, which no glibc here would take.
//
// Two kinds of fix:
//  - symbols libstdc++.a (built against the packing machine's newer glibc) uses but glibc 2.31
//    lacks are defined here, hidden, so the static link binds to these and the dynamic loader never
//    looks for them (only where the sysroot's headers say the glibc lacks them);
//  - symbols glibc 2.29/2.30 added a version or a function for are reached through `--wrap`
//    (binding.gyp), which renames every reference `x` to `__wrap_x`, defined here.
#include "glibc-floor.h"

#if defined(__GLIBC__)
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

uint32_t kiln_compat::random_u32() {
  uint32_t value = 0;
  if (getentropy(&value, sizeof value) == 0) return value;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t got = read(fd, &value, sizeof value);
    close(fd);
    if (got == static_cast<ssize_t>(sizeof value)) return value;
  }
  abort();
}

// glibc 2.29 gave exp, log and pow new versions (a faster implementation without the SVID error
// handling); the 2.2.5 versions still in every glibc compute the same values and set errno only
// where the new ones do too. Kiln builds with -fno-math-errno and never reads errno from them.
extern "C" double kiln_exp_2_2_5(double);
extern "C" double kiln_log_2_2_5(double);
extern "C" double kiln_pow_2_2_5(double, double);
__asm__(".symver kiln_exp_2_2_5, exp@GLIBC_2.2.5");
__asm__(".symver kiln_log_2_2_5, log@GLIBC_2.2.5");
__asm__(".symver kiln_pow_2_2_5, pow@GLIBC_2.2.5");
double kiln_compat::exp_2_2_5(double x) { return kiln_exp_2_2_5(x); }
double kiln_compat::log_2_2_5(double x) { return kiln_log_2_2_5(x); }
double kiln_compat::pow_2_2_5(double x, double y) { return kiln_pow_2_2_5(x, y); }

// glibc 2.30: libstdc++'s condition_variable waits on the steady clock through
// pthread_cond_clockwait. On 2.28-2.29 the wait converts the steady-clock deadline to the condition
// variable's own clock (realtime), as libstdc++ did before GCC 10: a realtime clock step during the
// wait moves its end, and a wait may end early, which every caller allows (spurious wake-ups).
int kiln_compat::clockwait_by_realtime(pthread_cond_t* cond, pthread_mutex_t* mutex, clockid_t clock, const struct timespec* abstime) {
  struct timespec now;
  if (clock_gettime(clock, &now) != 0) return EINVAL;
  int64_t remaining_ns = (static_cast<int64_t>(abstime->tv_sec) - now.tv_sec) * 1000000000LL + (abstime->tv_nsec - now.tv_nsec);
  if (remaining_ns <= 0) return ETIMEDOUT;
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  int64_t nsec = deadline.tv_nsec + remaining_ns % 1000000000LL;
  deadline.tv_sec += static_cast<time_t>(remaining_ns / 1000000000LL + nsec / 1000000000LL);
  deadline.tv_nsec = static_cast<long>(nsec % 1000000000LL);
  return pthread_cond_timedwait(cond, mutex, &deadline);
}

int kiln_compat::clockwait(pthread_cond_t* cond, pthread_mutex_t* mutex, clockid_t clock, const struct timespec* abstime) {
  using ClockWait = int (*)(pthread_cond_t*, pthread_mutex_t*, clockid_t, const struct timespec*);
  static const ClockWait native = reinterpret_cast<ClockWait>(dlsym(RTLD_DEFAULT, "pthread_cond_clockwait"));
  return native ? native(cond, mutex, clock, abstime) : clockwait_by_realtime(cond, mutex, clock, abstime);
}

extern "C" {
KILN_HIDDEN double __wrap_exp(double x) { return kiln_compat::exp_2_2_5(x); }
KILN_HIDDEN double __wrap_log(double x) { return kiln_compat::log_2_2_5(x); }
KILN_HIDDEN double __wrap_pow(double x, double y) { return kiln_compat::pow_2_2_5(x, y); }
KILN_HIDDEN int __wrap_pthread_cond_clockwait(pthread_cond_t* cond, pthread_mutex_t* mutex, clockid_t clock, const struct timespec* abstime) {
  return kiln_compat::clockwait(cond, mutex, clock, abstime);
}

#if !__GLIBC_PREREQ(2, 32)
// glibc 2.32 tells libstdc++ the process has one thread, so reference counts may skip their atomic
// instructions. 0 ("maybe several") is always correct, and what glibc says in Node anyway.
KILN_HIDDEN char __libc_single_threaded = 0;
#endif

#if !__GLIBC_PREREQ(2, 36)
// glibc 2.36. Pulled in with std::random_device, which Kiln does not use; kept correct all the same.
KILN_HIDDEN uint32_t arc4random(void) { return kiln_compat::random_u32(); }
#endif
}  // extern "C"
#endif  // __GLIBC__
