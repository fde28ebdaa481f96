#include "kiln/heap.h"

// Any C library header defines __GLIBC__ on glibc (through <features.h>); the test below needs one.
#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace kiln {

bool release_free_heap() {
#if defined(__GLIBC__)
  return malloc_trim(0) != 0;
#else
  return false;
#endif
}

}  // namespace kiln
