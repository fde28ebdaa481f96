// A 1x1 int8 convolution whose output is float32 NCHW (the dequantized head of an int8 region:
// a detector's box and class maps), computed directly into the output planes. The GEMM path
// writes NHWC floats to scratch and transposes them: for a head of 32 -> 39 channels on 56x56 it
// ran at 7% of the VNNI peak, the float traffic (written, read back, written again) costing more
// than the multiply-adds. Here 16 pixels sit in the lanes (their input quads gathered once into
// registers), each output channel's weights are broadcast, and each channel's 16 sums are one
// contiguous store into its plane. The sums are the exact int32 sums (wrapping as the GEMM's) and
// the epilogue is the GEMM's float(acc) * scale, so the bits are the GEMM path's.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kiln/conv.h"
#include "kiln/f32-gemm.h"  // CacheAlignedAllocator
#include "kiln/s8-conv.h"    // S8ConvQuant

namespace kiln {

struct DispatchTable;

// Input channels the kernel takes: its quads of input bytes stay in registers.
constexpr size_t kS8PlanesMaxChannels = 64;
// Output channels per register block; the weights are padded with zero channels to a multiple.
constexpr size_t kS8PlanesChannelBlock = 8;
// Pixels per vector.
constexpr size_t kS8PlanesPixels = 16;

// Whether `g` is a convolution the kernel takes: 1x1, stride 1, unpadded, one group, at most
// kS8PlanesMaxChannels input channels (the kernel's dilation does not matter at 1x1).
bool s8_planes_supported(const Conv2dGeometry& g);

// One call of the kernel: pixels [p0, p1) of one image.
struct S8PlanesRun {
  const uint8_t* in = nullptr;  // the image's pixels, `channels` bytes each (NHWC)
  size_t channels = 0;          // input channels (bytes per pixel)
  size_t quads = 0;             // ceil(channels / 4)
  size_t out_channels = 0;
  size_t blocks = 0;            // ceil(out_channels / kS8PlanesChannelBlock)
  size_t plane = 0;             // pixels per image: the output planes' stride
  size_t p0 = 0, p1 = 0;
  const int32_t* weight = nullptr;  // S8PointwisePlanes::weight
  const int32_t* bias = nullptr;    // per output channel, the input zero point folded in
  const float* scale = nullptr;     // per output channel: fround(x_scale * w_scale[o])
  bool relu = false;
  float* out = nullptr;  // the image's output planes: channel o's pixel p at out[o * plane + p]
};
using S8PlanesRunFn = void (*)(const S8PlanesRun& r);

// The packed weights and folded bias of one convolution.
struct S8PointwisePlanes {
  // weight[(block * quads + q) * kS8PlanesChannelBlock + j]: output channel block * 8 + j's weights
  // of input channels 4q .. 4q + 3 as one dword (zero past the channels: those lanes multiply
  // whatever bytes follow a pixel by 0).
  std::vector<int32_t, CacheAlignedAllocator<int32_t>> weight;
  std::vector<int32_t> bias;  // bias[o] - x_zero_point * (sum of o's weights), wrapping; padded with 0
  std::vector<float> scale;   // padded with 0
  size_t channels = 0, quads = 0, out_channels = 0, blocks = 0;
  bool relu = false;

  // The multipliers are q.multiplier(o, true), as S8Conv2dPlan's for a float output.
  S8PointwisePlanes(const Conv2dGeometry& g, const int8_t* weight_oihw, const int32_t* bias /*O or null*/,
                    const S8ConvQuant& q, bool relu);

  // Bytes held by the packed weights, folded bias and multipliers.
  size_t weight_bytes() const {
    return weight.size() * sizeof(int32_t) + bias.size() * sizeof(int32_t) + scale.size() * sizeof(float);
  }

  // out (batch x O x plane floats) from in (batch x plane x C bytes), split over at most
  // max_threads threads (0 = the pool size) by blocks of pixels.
  void run(S8PlanesRunFn fn, const uint8_t* in, float* out, size_t batch, size_t plane, size_t max_threads) const;
};

// The portable kernel: the reference the ISA kernel is tested against.
void s8_planes_run_reference(const S8PlanesRun& r);
// AVX-512 VNNI: the table's entry there; null on the other ISAs, which take the GEMM path.
void s8_planes_run_avx512vnni(const S8PlanesRun& r);

}  // namespace kiln
