// int8 depthwise convolution (QLinearConv, one channel per group, uint8 NHWC) on the depthwise
// layers of MobileNetV2, MobileNetV3, EfficientNet-B0 and ConvNeXt-Tiny at batch 1 on one thread,
// as a fraction of the single-core int8 peak measured in the same run.
//   s8-depthwise-bench [isa [layer]]   (default: the best ISA this CPU has, every layer; a layer
//                                      name such as 192x28x28 runs only the layers that start so)
// GOP/s counts 2 operations per multiply-add; each layer is reported from its fastest run (what
// the kernel does when it has the core) next to the median.
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "kiln/conv.h"
#include "kiln/s8-conv.h"
#include "kiln/s8-gemm.h"

#include "bench-common.h"

namespace {

struct Layer {
  const char* model;
  size_t channels, hw, kernel, stride;
  bool float_output = false;  // ConvNeXt's feed a LayerNorm: float out
};

// The distinct depthwise shapes of the torchvision models at 224x224 (input side, kernel, stride).
const Layer kLayers[] = {
    {"MobileNetV2", 32, 112, 3, 1},  {"MobileNetV2", 96, 112, 3, 2},  {"MobileNetV2", 144, 56, 3, 1},
    {"MobileNetV2", 144, 56, 3, 2},  {"MobileNetV2", 192, 28, 3, 1},  {"MobileNetV2", 192, 28, 3, 2},
    {"MobileNetV2", 384, 14, 3, 1},  {"MobileNetV2", 576, 14, 3, 1},  {"MobileNetV2", 576, 14, 3, 2},
    {"MobileNetV2", 960, 7, 3, 1},   {"MobileNetV3-L", 72, 56, 5, 2}, {"MobileNetV3-L", 120, 28, 5, 1},
    {"MobileNetV3-L", 480, 14, 3, 1}, {"MobileNetV3-L", 672, 14, 5, 2}, {"MobileNetV3-L", 960, 7, 5, 1},
    {"EfficientNet-B0", 240, 28, 5, 1}, {"EfficientNet-B0", 1152, 7, 5, 1}, {"ConvNeXt-T", 96, 56, 7, 1, true},
    {"ConvNeXt-T", 384, 14, 7, 1, true},
};

}  // namespace

int main(int argc, char** argv) {
  if (!kiln_bench::select_isa(argc > 1 ? argv[1] : nullptr)) return 2;
  double peak = 0.0;
  for (int i = 0; i < 300; ++i) peak = std::max(peak, kiln::measure_s8_peak_gmacs(1.0));
  std::printf("ISA %s: single-core int8 peak %.1f GOP/s\n\n", kiln::isa_name(kiln::active_isa()), 2 * peak);
  std::printf("%-16s %-22s %9s %9s %8s %9s\n", "model", "layer", "best us", "med us", "GOP/s", "of peak");
  std::mt19937 gen(7);
  std::uniform_int_distribution<int> byte(0, 255), weight(-127, 127);
  const std::string only = argc > 2 ? argv[2] : "";
  for (const Layer& l : kLayers) {
    char name[64];
    std::snprintf(name, sizeof name, "%zux%zux%zu %zux%zu/%zu%s", l.channels, l.hw, l.hw, l.kernel, l.kernel, l.stride,
                  l.float_output ? " -> f32" : "");
    if (std::string(name).rfind(only, 0) != 0) continue;
    kiln::Conv2dGeometry g;
    g.in_channels = g.out_channels = g.groups = l.channels;
    g.in_height = g.in_width = l.hw;
    g.kernel_h = g.kernel_w = l.kernel;
    g.stride_h = g.stride_w = l.stride;
    g.pad_top = g.pad_left = g.pad_bottom = g.pad_right = l.kernel / 2;
    g.out_height = g.out_width = (l.hw + 2 * (l.kernel / 2) - l.kernel) / l.stride + 1;
    std::vector<int8_t> w(g.weight_size());
    for (int8_t& v : w) v = static_cast<int8_t>(weight(gen));
    std::vector<int32_t> bias(l.channels);
    for (int32_t& v : bias) v = weight(gen) * 64;
    std::vector<float> w_scale(l.channels, 0.01f);
    kiln::S8ConvQuant q;
    q.x_zero_point = 3;
    q.w_scale = w_scale.data();
    q.w_scale_count = l.channels;
    q.x_scale = 0.02f;
    q.y_scale = 0.05f;
    q.y_zero_point = 0;
    q.y_min = 0;
    const kiln::S8Conv2dPlan plan(g, w.data(), bias.data(), q, l.float_output);
    // 64-byte aligned, as the runtime's activation buffers are.
    std::vector<uint8_t> in_bytes(g.in_plane() * l.channels + 64), out_bytes(g.out_plane() * l.channels * 4 + 64);
    uint8_t* in = in_bytes.data() + (64 - reinterpret_cast<uintptr_t>(in_bytes.data()) % 64) % 64;
    uint8_t* out = out_bytes.data() + (64 - reinterpret_cast<uintptr_t>(out_bytes.data()) % 64) % 64;
    for (size_t i = 0; i < g.in_plane() * l.channels; ++i) in[i] = static_cast<uint8_t>(byte(gen));
    std::vector<uint8_t> scratch(plan.scratch_bytes(1, 1) + 1);
    const kiln_bench::BestAndMedian t = kiln_bench::time_calls([&] { plan.run(in, out, 1, scratch.data(), 1); }, 150.0);
    const double ops = 2.0 * static_cast<double>(g.out_plane() * l.channels * l.kernel * l.kernel);
    std::printf("%-16s %-22s %9.1f %9.1f %8.1f %8.1f%%\n", l.model, name, 1e6 * t.best, 1e6 * t.median,
                ops / t.best * 1e-9, 100.0 * ops / t.best * 1e-9 / (2 * peak));
  }
  return 0;
}
