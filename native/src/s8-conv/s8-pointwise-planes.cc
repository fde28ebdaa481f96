// The 1x1 int8 convolution into float planes (s8-pointwise-planes.h): packing, the portable
// reference kernel and the driver that splits a batch over the threads.
#include "s8-conv/s8-pointwise-planes.h"

#include <algorithm>

#include "kiln/thread-pool.h"

namespace kiln {

bool s8_planes_supported(const Conv2dGeometry& g) {
  return g.groups == 1 && g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 &&
         g.pad_left == 0 && g.pad_bottom == 0 && g.pad_right == 0 && g.in_channels <= kS8PlanesMaxChannels;
}

S8PointwisePlanes::S8PointwisePlanes(const Conv2dGeometry& g, const int8_t* weight_oihw, const int32_t* bias_o,
                                     const S8ConvQuant& q, bool relu_out)
    : channels(g.in_channels),
      quads((g.in_channels + 3) / 4),
      out_channels(g.out_channels),
      blocks((g.out_channels + kS8PlanesChannelBlock - 1) / kS8PlanesChannelBlock),
      relu(relu_out) {
  const size_t padded = blocks * kS8PlanesChannelBlock;
  weight.assign(blocks * quads * kS8PlanesChannelBlock, 0);
  bias.assign(padded, 0);
  scale.assign(padded, 0.0f);
  for (size_t o = 0; o < out_channels; ++o) {
    const size_t block = o / kS8PlanesChannelBlock, j = o % kS8PlanesChannelBlock;
    uint32_t sum = 0;
    for (size_t c = 0; c < channels; ++c) {
      const int8_t w = weight_oihw[o * channels + c];
      auto* quad = reinterpret_cast<int8_t*>(&weight[(block * quads + c / 4) * kS8PlanesChannelBlock + j]);
      quad[c % 4] = w;
      sum += static_cast<uint32_t>(static_cast<int32_t>(w));
    }
    const uint32_t b = bias_o != nullptr ? static_cast<uint32_t>(bias_o[o]) : 0u;
    bias[o] = static_cast<int32_t>(b - static_cast<uint32_t>(q.x_zero_point) * sum);
    scale[o] = q.multiplier(o, true);
  }
}

void S8PointwisePlanes::run(S8PlanesRunFn fn, const uint8_t* in, float* out, size_t batch, size_t plane,
                            size_t max_threads) const {
  // Tasks of 256 pixels (each writes 256 floats into every output plane): enough work to pay for
  // a helper, and fine enough that one image spreads over the threads at batch 1.
  constexpr size_t kTaskPixels = 256;
  const size_t per_image = (plane + kTaskPixels - 1) / kTaskPixels;
  S8PlanesRun proto;
  proto.channels = channels;
  proto.quads = quads;
  proto.out_channels = out_channels;
  proto.blocks = blocks;
  proto.plane = plane;
  proto.weight = weight.data();
  proto.bias = bias.data();
  proto.scale = scale.data();
  proto.relu = relu;
  parallel_for(
      batch * per_image,
      [&](size_t task) {
        const size_t b = task / per_image, t = task % per_image;
        S8PlanesRun r = proto;
        r.in = in + b * plane * channels;
        r.out = out + b * out_channels * plane;
        r.p0 = t * kTaskPixels;
        r.p1 = std::min(plane, r.p0 + kTaskPixels);
        fn(r);
      },
      max_threads);
}

void s8_planes_run_reference(const S8PlanesRun& r) {
  for (size_t p = r.p0; p < r.p1; ++p) {
    const uint8_t* x = r.in + p * r.channels;
    for (size_t o = 0; o < r.out_channels; ++o) {
      const size_t block = o / kS8PlanesChannelBlock, j = o % kS8PlanesChannelBlock;
      uint32_t acc = static_cast<uint32_t>(r.bias[o]);
      for (size_t c = 0; c < r.channels; ++c) {
        const auto* quad = reinterpret_cast<const int8_t*>(&r.weight[(block * r.quads + c / 4) * kS8PlanesChannelBlock + j]);
        acc += static_cast<uint32_t>(int32_t(x[c]) * int32_t(quad[c % 4]));
      }
      const float v = static_cast<float>(static_cast<int32_t>(acc)) * r.scale[o];
      r.out[o * r.plane + p] = r.relu && v < 0 ? 0.0f : v;
    }
  }
}

}  // namespace kiln
