// Memory the addon lends to JavaScript as ArrayBuffers, so that async jobs can use it in place.
//
// JobMemory copies every array an async job touches, because JavaScript can free an ordinary
// ArrayBuffer's memory under a running job (detach, transfer, resize). An ArrayBuffer made here
// is an external one over a block the addon owns and counts references to: JavaScript holds one
// reference (dropped by the ArrayBuffer's finalizer, whichever ArrayBuffer the memory was
// transferred to), and a job that uses the block takes another. The memory lives until both are
// gone, so a job can read and write it without copies. The tensors Kiln allocates for
// activations, gradients, parameters and optimizer state come from here.
#pragma once
#include <napi.h>

#include <cstddef>
#include <memory>

namespace kiln_addon {

// A zero-filled ArrayBuffer of `bytes` over lent memory; a plain ArrayBuffer (copied by jobs like
// any other) where the runtime refuses external buffers.
Napi::Value lend_array_buffer(Napi::Env env, size_t bytes);

// The lent block holding [data, data + bytes), or null: while the caller holds the result, the
// memory stays allocated whatever JavaScript does with its ArrayBuffer.
std::shared_ptr<const void> find_lent(const void* data, size_t bytes);

}  // namespace kiln_addon
