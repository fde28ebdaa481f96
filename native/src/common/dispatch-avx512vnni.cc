// The avx512vnni table starts as a copy of the avx512 one (dispatch.cc fills lower levels first).
// VNNI only adds int8 dot products, so the fp32 GEMM keeps the AVX-512 kernels; int8 kernels that
// use vpdpbusd assign their entries here.
#include "common/dispatch.h"

namespace kiln {

void fill_dispatch_avx512vnni(DispatchTable* table) { (void)table; }

}  // namespace kiln
