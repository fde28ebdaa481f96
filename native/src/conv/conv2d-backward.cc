// Convolution gradients. Per chunk of images: im2col of the input, then
//   grad_weight += grad_out * col^T                (GEMM over the chunk's output positions)
//   col_grad     = weight^T * grad_out, col2im      (grad_input of the chunk's own images)
// Chunks are dealt to a fixed number of slots in contiguous runs; each slot sums its chunks'
// grad_weight in order into its own buffer, and the slots are added in slot order at the end, so
// the batch sum has one order whatever the thread count.
#include <algorithm>
#include <cstring>
#include <vector>

#include "conv/conv2d-tiling.h"
#include "conv/depthwise.h"
#include "conv/direct-conv.h"
#include "conv/im2col.h"
#include "conv/scratch.h"
#include "elementwise/reduce.h"
#include "kiln/conv.h"
#include "kiln/thread-pool.h"

namespace kiln {
namespace {

// Elementwise work is cut into pieces of this many floats (fixed, for thread-count independence).
constexpr size_t kReduceChunk = 16 * 1024;

void bias_gradient(const Conv2dGeometry& g, size_t batch, const float* grad_output, float* grad_bias,
                   size_t max_threads) {
  const size_t plane = g.out_plane();
  parallel_for(
      g.out_channels,
      [&](size_t o) {
        double sum = 0;
        for (size_t n = 0; n < batch; ++n) sum += sum_of(grad_output + (n * g.out_channels + o) * plane, plane);
        grad_bias[o] = static_cast<float>(sum);
      },
      max_threads);
}

}  // namespace

void conv2d_backward(const Conv2dGeometry& g, size_t batch, const float* input, const float* weight,
                     const float* grad_output, float* grad_input, float* grad_weight,
                     float* grad_bias, size_t max_threads) {
  // On AVX-512 the weight gradient of a convolution the direct forward fits reads the input in
  // place, and the bias gradient comes from the same pass over grad_output.
  if (grad_weight != nullptr && !is_depthwise(g) &&
      direct_conv_weight_gradient(g, batch, input, grad_output, grad_weight, grad_bias, max_threads)) {
    grad_weight = nullptr;
    grad_bias = nullptr;
  }
  if (grad_bias != nullptr) bias_gradient(g, batch, grad_output, grad_bias, max_threads);
  if (grad_weight == nullptr && grad_input == nullptr) return;
  if (is_depthwise(g)) {
    depthwise_backward(g, batch, input, weight, grad_output, grad_input, grad_weight, max_threads);
    return;
  }
  const size_t wsize = g.weight_size();
  if (batch == 0) {
    if (grad_weight != nullptr) std::fill(grad_weight, grad_weight + wsize, 0.0f);
    return;
  }

  const ConvTiling t = conv_tiling(g, batch);
  const size_t slots = std::min(t.chunks, kConvMaxSlots);
  const size_t gemm_threads = slots > 1 ? 1 : max_threads;
  const size_t m = g.out_channels_per_group();
  const size_t cin = g.in_channels_per_group();
  const size_t patch = g.patch();
  const size_t in_plane = g.in_plane();
  const size_t plane = g.out_plane();
  const bool pointwise = g.is_pointwise();

  // weight^T per group, packed once: patch x Cout/groups.
  std::vector<PackedA> weight_t;
  if (grad_input != nullptr) {
    weight_t.reserve(g.groups);
    for (size_t grp = 0; grp < g.groups; ++grp) weight_t.emplace_back(true, patch, m, weight + grp * m * patch, patch);
  }

  // A thin patch (e.g. a first layer over 1-3 channels) makes grad_out * col^T a product a few
  // columns wide; its transpose col * grad_out^T (patch x Cout/groups) fills the GEMM tiles better.
  const bool transposed = patch < m;

  // Per slot: the input's columns, their gradient, the gathered grad_output; and a private
  // grad_weight (slot 0 writes grad_weight itself unless transposed).
  const size_t col_floats = grad_weight != nullptr ? t.col_floats : 0;
  const size_t col_grad_floats = grad_input != nullptr ? t.col_floats : 0;
  const size_t per_slot = col_floats + col_grad_floats + t.gather_floats;
  const size_t partial_floats = grad_weight != nullptr ? wsize : 0;
  const size_t private_slots = transposed ? slots : slots - 1;
  ScratchBuffer scratch(slots * per_slot + private_slots * partial_floats);
  float* partials = scratch.data() + slots * per_slot;

  auto run_slot = [&](size_t s) {
    float* col = scratch.data() + s * per_slot;
    float* col_grad = col + col_floats;
    float* gather = col_grad + col_grad_floats;
    float* dw = nullptr;
    if (grad_weight != nullptr) dw = transposed ? partials + s * wsize : s == 0 ? grad_weight : partials + (s - 1) * wsize;
    const size_t first_chunk = t.chunks * s / slots;
    const size_t last_chunk = t.chunks * (s + 1) / slots;
    for (size_t chunk = first_chunk; chunk < last_chunk; ++chunk) {
      const size_t n0 = chunk * t.images_per_chunk;
      const size_t images = std::min(t.images_per_chunk, batch - n0);
      if (grad_input != nullptr && !pointwise) {
        std::fill(grad_input + n0 * g.in_channels * in_plane, grad_input + (n0 + images) * g.in_channels * in_plane, 0.0f);
      }
      for (size_t tile = 0; tile < t.tiles; ++tile) {
        const size_t j0 = tile * t.tile_cols;
        const size_t ncols = std::min(t.tile_cols, plane - j0);
        const size_t cols = images * ncols;
        const float beta = chunk == first_chunk && tile == 0 ? 0.0f : 1.0f;
        for (size_t grp = 0; grp < g.groups; ++grp) {
          const float* in = input + (n0 * g.in_channels + grp * cin) * in_plane;
          float* gin = grad_input != nullptr ? grad_input + (n0 * g.in_channels + grp * cin) * in_plane : nullptr;
          const float* gout = grad_output + (n0 * g.out_channels + grp * m) * plane + j0;
          float* dw_group = dw != nullptr ? dw + grp * m * patch : nullptr;
          if (pointwise) {
            // The input planes are the columns; grad_input planes are col_grad itself.
            if (dw_group != nullptr) {
              if (transposed) {
                sgemm(false, true, cin, m, plane, 1.0f, in, plane, gout, plane, beta, dw_group, m, GemmEpilogue(), gemm_threads);
              } else {
                sgemm(false, true, m, cin, plane, 1.0f, gout, plane, in, plane, beta, dw_group, cin, GemmEpilogue(), gemm_threads);
              }
            }
            if (gin != nullptr) sgemm_packed_a(weight_t[grp], plane, false, gout, plane, gin, plane, GemmEpilogue(), gemm_threads);
            continue;
          }
          // grad_output of this item as a m x cols matrix (a view when one image, else gathered).
          const float* a = gout;
          size_t lda = plane;
          if (images > 1) {
            for (size_t r = 0; r < m; ++r) {
              for (size_t i = 0; i < images; ++i) {
                std::memcpy(gather + r * cols + i * plane, gout + (i * g.out_channels + r) * plane, plane * sizeof(float));
              }
            }
            a = gather;
            lda = cols;
          }
          if (dw_group != nullptr) {
            for (size_t i = 0; i < images; ++i) im2col(g, cin, in + i * g.in_channels * in_plane, j0, ncols, col + i * ncols, cols);
            if (transposed) {
              sgemm(false, true, patch, m, cols, 1.0f, col, cols, a, lda, beta, dw_group, m, GemmEpilogue(), gemm_threads);
            } else {
              sgemm(false, true, m, patch, cols, 1.0f, a, lda, col, cols, beta, dw_group, patch, GemmEpilogue(), gemm_threads);
            }
          }
          if (gin != nullptr) {
            sgemm_packed_a(weight_t[grp], cols, false, a, lda, col_grad, cols, GemmEpilogue(), gemm_threads);
            for (size_t i = 0; i < images; ++i) {
              col2im_add(g, cin, col_grad + i * ncols, cols, j0, ncols, gin + i * g.in_channels * in_plane);
            }
          }
        }
      }
    }
  };
  if (slots > 1) {
    parallel_for(slots, run_slot, max_threads);
  } else {
    run_slot(0);
  }

  if (grad_weight == nullptr) return;
  if (transposed) {
    // grad_weight[grp][o][p] = sum over slots, in order, of partial[grp][p][o].
    parallel_for(
        g.groups,
        [&](size_t grp) {
          float* dst = grad_weight + grp * m * patch;
          for (size_t o = 0; o < m; ++o) {
            for (size_t p = 0; p < patch; ++p) {
              float sum = 0.0f;
              for (size_t s = 0; s < slots; ++s) sum += partials[s * wsize + grp * m * patch + p * m + o];
              dst[o * patch + p] = sum;
            }
          }
        },
        max_threads);
  } else if (slots > 1) {
    parallel_for(
        (wsize + kReduceChunk - 1) / kReduceChunk,
        [&](size_t piece) {
          const size_t lo = piece * kReduceChunk;
          const size_t hi = std::min(wsize, lo + kReduceChunk);
          for (size_t s = 1; s < slots; ++s) {
            const float* p = partials + (s - 1) * wsize;
            for (size_t i = lo; i < hi; ++i) grad_weight[i] += p[i];
          }
        },
        max_threads);
  }
}

}  // namespace kiln
