// The prebuilt binary's stand-ins for symbols newer than glibc 2.28 (glibc-floor.cc says why each
// is there), under names of their own so native/test/glibc-floor-test.cc can check them on any
// glibc. The addon reaches them only through the static link and `--wrap` (binding.gyp).
#pragma once
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define KILN_HIDDEN __attribute__((visibility("hidden")))

namespace kiln_compat {
// arc4random: 32 random bits from the kernel; never fails (aborts when the kernel has none).
KILN_HIDDEN uint32_t random_u32();
// exp, log and pow at their GLIBC_2.2.5 versions, which every glibc has.
KILN_HIDDEN double exp_2_2_5(double x);
KILN_HIDDEN double log_2_2_5(double x);
KILN_HIDDEN double pow_2_2_5(double x, double y);
// pthread_cond_clockwait: the running glibc's where it has one (2.30+), else clockwait_by_realtime.
KILN_HIDDEN int clockwait(pthread_cond_t* cond, pthread_mutex_t* mutex, clockid_t clock, const struct timespec* abstime);
// pthread_cond_clockwait for a glibc without it: the same remaining time, on the realtime clock.
KILN_HIDDEN int clockwait_by_realtime(pthread_cond_t* cond, pthread_mutex_t* mutex, clockid_t clock, const struct timespec* abstime);
}  // namespace kiln_compat
