// The x86 intrinsics, for the per-ISA translation units (each compiled with its own -m flags).
// Include this instead of <immintrin.h>.
//
// GCC 12's AVX-512 headers build the unused pass-through operand of many unmasked intrinsics
// (_mm512_max_ps, _mm512_cvtps_epi32, _mm512_shuffle_f32x4, ...) from _mm512_undefined_*(),
// which is `__m512 __Y = __Y;`. Once inlined into a kernel, -Wmaybe-uninitialized reports that
// self-initialised value at the header line (GCC bug 105593, fixed in GCC 13): about 430
// warnings, none about our code. The pragma covers the text of the intrinsic headers only (the
// state at a warning's location is the one in force where that line was read), so our own
// sources keep the warning.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
