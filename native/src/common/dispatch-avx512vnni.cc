// The avx512vnni table starts as a copy of the avx512 one (dispatch.cc fills lower levels first).
// VNNI only adds int8 dot products, so the fp32 GEMM keeps the AVX-512 kernels; the int8 GEMM
// switches to its vpdpbusd kernels (native/src/s8-gemm/s8-gemm-avx512vnni.cc).
#include "common/dispatch.h"

namespace kiln {

void fill_dispatch_avx512vnni(DispatchTable* table) { fill_s8_gemm_avx512vnni(table); }

}  // namespace kiln
