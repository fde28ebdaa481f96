// STUB, replaced by the GEMM work.
#include "common/dispatch.h"
namespace kiln {
void fill_dispatch_avx512vnni(DispatchTable* table) { (void)table; }
}  // namespace kiln
