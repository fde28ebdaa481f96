// Stride-phase planes: the layout behind the planar depthwise convolution (conv/depthwise.h) and
// the planar max pool (runtime/ops/pool2d.cc), which slide a window over NCHW planes.
//
// An input plane is copied once, padded with `fill`, into stride phases: phase (a, b) holds padded
// rows a, a + s_h, ... and columns b, b + s_w, ..., all with one row pitch
// Wq = OW + (KW - 1) * d_w / s_w. On that pitch, output (oh, ow) at flat index oh * Wq + ow reads
// window tap (kh, kw) at a constant offset into its phase plane, whatever the stride, padding or
// dilation, so a kernel is one loop of full vectors over the flat plane: no border cases, no
// masks, every lane a real output or a discarded pitch column. Small planes (7x7) stay
// vector-friendly this way, where a row-by-row kernel would leave most lanes of a 7-wide row idle.
#pragma once
#include <cstddef>
#include <vector>

#include "conv/conv-ukernel.h"

namespace kiln {

// Floats past the flat length that a kernel may read from each tap and write to the output.
constexpr size_t kPhaseSlack = 64;

// A sliding window over one plane. Padding past the end needs no field: rows and columns beyond
// the input read as `fill`.
struct PlanarWindow {
  size_t in_h = 1, in_w = 1, out_h = 1, out_w = 1;
  size_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  size_t pad_top = 0, pad_left = 0;
};

// The window of a convolution over one of its input planes.
PlanarWindow planar_window(const Conv2dGeometry& g);

class PhasePlanes {
 public:
  // `slack` floats follow each phase plane (kernels read past the flat length); 0 makes the
  // planes of one input plane contiguous, as a convolution's input channels.
  explicit PhasePlanes(const PlanarWindow& w, size_t slack = kPhaseSlack);

  size_t taps() const { return tap_offset_.size(); }
  size_t pitch() const { return pitch_; }
  // Flat outputs (OH x Wq) a kernel computes.
  size_t flat_outputs() const { return w_.out_h * pitch_; }
  // Floats of one slot of scratch: the phase planes, the flat output, a row buffer.
  size_t slot_floats() const { return phases_ * phase_floats_ + out_floats_ + row_floats_; }
  size_t phase_floats() const { return phase_floats_; }
  size_t row_floats() const { return row_floats_; }

  // Copies plane x into phase planes from `planes`, phase_floats() apart (padding and slack =
  // fill), using `row` (row_floats()) for the rows it splits.
  void split_planes(const F32DepthwiseKernels& k, const float* x, float fill, float* planes, float* row) const;

  // Copies plane x into the phase planes of `slot` (padding and slack = fill) and points
  // taps[t] at each window tap's first read.
  void split(const F32DepthwiseKernels& k, const float* x, float fill, float* slot, const float** taps) const;
  // Where a kernel writes the flat output in `slot`.
  float* flat(float* slot) const { return slot + phases_ * phase_floats_; }
  // The flat output's rows at the output pitch: y is OH x OW.
  void copy_out(const float* flat, float* y) const;

 private:
  PlanarWindow w_;
  size_t slack_, phases_, rows_, pitch_, phase_floats_, out_floats_, row_floats_;
  std::vector<size_t> tap_phase_, tap_offset_;  // per tap (kh, kw): its phase plane and offset in it

  void padded_row(const float* x, ptrdiff_t ih, size_t columns, float fill, float* row) const;
};

}  // namespace kiln
