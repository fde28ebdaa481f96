// Choosing which instruction-set path the kernels run on.
#pragma once
#include <string>

#include "kiln/cpu.h"

namespace kiln {

// The ISA in use. Starts as KILN_ISA when that names a supported ISA, else the best one.
Isa active_isa();

// Switch every kernel to `isa`. Returns false (and changes nothing) when the CPU lacks it.
// Safe to call at any time; calls already running finish on the table they started with.
bool set_active_isa(Isa isa);

// Error text left by a KILN_ISA value that could not be honoured (empty when none).
const std::string& isa_override_error();

}  // namespace kiln
