// The process heap, as the C library keeps it.
#pragma once

namespace kiln {

// Gives the C library's free heap pages back to the operating system (glibc's malloc_trim(0)),
// so that memory freed after a burst of large allocations (a model's load: its bytes, the
// imported graph, the copies a plan is packed from) stops counting as resident. glibc keeps such
// blocks for reuse once its mmap threshold has grown past their size. True when pages were given
// back; false elsewhere (musl and other C libraries: nothing to do).
bool release_free_heap();

}  // namespace kiln
