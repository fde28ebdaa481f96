// Placing the plan's internal buffers in one arena: two buffers share memory only when their
// lifetimes (the steps from the one that writes them to the last that reads them) do not overlap.
#pragma once
#include <cstddef>
#include <vector>

namespace kiln {
namespace runtime {

struct BufferLifetime {
  size_t size = 0;  // floats per image (a multiple of the alignment)
  int first = 0;    // step that writes it
  int last = 0;     // last step that reads it (>= first)
};

// Offsets (floats per image, so they scale with the batch) for every buffer: greedy by size,
// each at the lowest offset free over its lifetime. Returns the arena size per image.
size_t place_buffers(const std::vector<BufferLifetime>& buffers, std::vector<size_t>* offsets);

}  // namespace runtime
}  // namespace kiln
