// Max pooling of uint8 NHWC images, shared by the MaxPoolU8 step and the pool fused into
// QLinearConv: the SeedCNN window (2x2, stride 2, unpadded, undilated) takes four contiguous
// channel vectors per output pixel; any other window goes to max_pool2d_u8_nhwc.
#pragma once
#include <string>

#include "kiln/pool.h"
#include "runtime/ops/pool2d.h"

namespace kiln {
namespace runtime {

// Checks a pool step over one uint8 image [C, H, W] stored NHWC (one input, one output, both
// uint8, the output shaped by the window) and returns its window.
Pool2d parse_u8_image_pool(const StepContext& ctx, bool max);

class PoolU8 {
 public:
  PoolU8() = default;
  // A max pool (Pool2d::parse) over images of `channels` channels.
  PoolU8(const Pool2d& pool, size_t channels);
  void run(const uint8_t* in, uint8_t* out, size_t batch, size_t threads) const;
  size_t in_image() const { return g_.in_height * g_.in_width * channels_; }
  size_t out_image() const { return g_.out_height * g_.out_width * channels_; }

 private:
  Pool2dGeometry g_;
  size_t channels_ = 1;
  bool pairs_ = false;
};

}  // namespace runtime
}  // namespace kiln
