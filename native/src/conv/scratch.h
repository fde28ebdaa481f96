// Temporary float buffers reused across kernel calls, so a training step does not pay for fresh
// pages (page faults) on every convolution. Contents are not initialised.
#pragma once
#include <cstddef>
#include <memory>

namespace kiln {

class ScratchBuffer {
 public:
  // Takes a buffer of at least `floats` floats from the shared free list, or allocates one.
  explicit ScratchBuffer(size_t floats);
  // Returns the buffer to the free list (which keeps a few of the largest).
  ~ScratchBuffer();
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;

  float* data() { return data_.get(); }

 private:
  std::unique_ptr<float[]> data_;
  size_t capacity_ = 0;
};

}  // namespace kiln
