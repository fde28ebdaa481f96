#include "s8-conv/s8-depthwise.h"

#include <algorithm>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "quant/requantize.h"
#include "s8-conv/s8-im2col.h"

namespace kiln {
namespace {

// requantize_u8 over a row of channels. SSE2 is part of x86-64, so the baseline build has it:
// cvtps2dq rounds half to even in the default mode, like std::nearbyint, and the clamp comes
// first, as in every other epilogue, so the bits are the scalar ones.
void requantize_row(const uint32_t* acc, const float* scale, size_t n, int32_t zero_point, float lo, float hi,
                    uint8_t* out) {
  size_t i = 0;
#if defined(__SSE2__)
  const __m128 vlo = _mm_set1_ps(lo), vhi = _mm_set1_ps(hi);
  const __m128i zp = _mm_set1_epi32(zero_point);
  for (; i + 8 <= n; i += 8) {
    __m128i q[2];
    for (int h = 0; h < 2; ++h) {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(acc + i + 4 * h));
      __m128 y = _mm_mul_ps(_mm_cvtepi32_ps(a), _mm_loadu_ps(scale + i + 4 * h));
      y = _mm_min_ps(_mm_max_ps(y, vlo), vhi);
      q[h] = _mm_add_epi32(_mm_cvtps_epi32(y), zp);
    }
    const __m128i words = _mm_packs_epi32(q[0], q[1]);  // values are in [0, 255]
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), _mm_packus_epi16(words, words));
  }
#endif
  for (; i < n; ++i) out[i] = requantize_u8(static_cast<int32_t>(acc[i]), scale[i], zero_point, lo, hi);
}

}  // namespace

namespace {

// The blocked layouts of s8_depthwise_pack_pairs and _quads: `blocks` blocks of `block` slots,
// slot s of block b holding channel channel_of(b, s): the weights of each group of `per` taps
// (the last one padded with zero taps) with the slot's `per` taps side by side; bias (the zero
// point folded in, wrapping like every sum) and scale in slot order.
template <typename W, typename ChannelOf>
void pack_tap_groups(const int16_t* weight, const int32_t* bias, const float* scale, size_t taps, size_t channels,
                     int32_t x_zero_point, size_t blocks, size_t block, size_t per, ChannelOf channel_of,
                     std::vector<W>& packed_weight, std::vector<int32_t>& packed_bias, std::vector<float>& packed_scale) {
  const size_t groups = (taps + per - 1) / per;
  packed_weight.assign(blocks * groups * block * per, 0);
  packed_bias.assign(blocks * block, 0);
  packed_scale.assign(blocks * block, 0.0f);
  for (size_t b = 0; b < blocks; ++b) {
    for (size_t slot = 0; slot < block; ++slot) {
      const size_t ch = channel_of(b, slot);
      uint32_t sum = 0;
      for (size_t t = 0; t < taps; ++t) {
        const int16_t w = weight[t * channels + ch];
        sum += static_cast<uint32_t>(static_cast<int32_t>(w));
        packed_weight[(b * groups + t / per) * block * per + per * slot + t % per] = static_cast<W>(w);
      }
      const uint32_t b0 = bias != nullptr ? static_cast<uint32_t>(bias[ch]) : 0u;
      packed_bias[b * block + slot] = static_cast<int32_t>(b0 - static_cast<uint32_t>(x_zero_point) * sum);
      packed_scale[b * block + slot] = scale[ch];
    }
  }
}

}  // namespace

void s8_depthwise_pack_pairs(const int16_t* weight, const int32_t* bias, const float* scale, size_t taps,
                             size_t channels, int32_t x_zero_point, std::vector<int16_t>& pair_weight,
                             std::vector<int32_t>& pair_bias, std::vector<float>& pair_scale) {
  constexpr size_t kBlock = kS8DepthwisePairBlock;
  // Slot [h][g][j] holds channel 8g + 4h + j.
  pack_tap_groups(weight, bias, scale, taps, channels, x_zero_point, channels / kBlock, kBlock, 2,
                  [](size_t b, size_t s) { return b * kBlock + 8 * (s / 4 % 4) + 4 * (s / 16) + s % 4; }, pair_weight,
                  pair_bias, pair_scale);
}

void s8_depthwise_pack_quads(const int16_t* weight, const int32_t* bias, const float* scale, size_t taps,
                             size_t channels, int32_t x_zero_point, std::vector<int8_t>& quad_weight,
                             std::vector<int32_t>& quad_bias, std::vector<float>& quad_scale) {
  constexpr size_t kBlock = kS8DepthwiseQuadBlock;
  const S8DepthwiseQuadBlocks q(channels);
  // Slot [k][L][j] holds channel 16L + 4k + j of a full block; in the half block lanes 2 and 3
  // repeat lanes 0 and 1, in the quarter block every lane holds the same 16 channels.
  pack_tap_groups(weight, bias, scale, taps, channels, x_zero_point, q.blocks(), kBlock, 4,
                  [q](size_t b, size_t s) {
                    const size_t lane = s / 4 % 4, inner = 4 * (s / 16) + s % 4;
                    if (b < q.full) return b * kBlock + 16 * lane + inner;
                    if (q.half && b == q.full) return q.half_channel() + 16 * (lane % 2) + inner;
                    return q.quarter_channel() + inner;
                  },
                  quad_weight, quad_bias, quad_scale);
}

void s8_depthwise_rows(const Conv2dGeometry& g, const S8DepthwiseArgs& a, const uint8_t* in, void* out,
                       size_t row_begin, size_t row_end) {
  const size_t c = g.in_channels, taps = g.kernel_h * g.kernel_w;
  thread_local std::vector<uint32_t> acc;  // sums wrap modulo 2^32 like every other path
  thread_local std::vector<const uint8_t*> xs;
  thread_local std::vector<const int16_t*> ws;
  // Taps in the padding read this row of zero points: they add exactly 0, so every pixel runs
  // all its taps through the same kernel call, no per-tap branch in the kernel.
  thread_local std::vector<uint8_t> padding;
  thread_local std::vector<ptrdiff_t> offset;
  acc.resize(c);
  xs.resize(taps);
  ws.resize(taps);
  padding.assign(c, a.x_zero_point);
  offset.resize(taps);
  for (size_t kh = 0; kh < g.kernel_h; ++kh) {
    for (size_t kw = 0; kw < g.kernel_w; ++kw) {
      const size_t t = kh * g.kernel_w + kw;
      offset[t] = static_cast<ptrdiff_t>((kh * g.dilation_h * g.in_width + kw * g.dilation_w) * c);
      ws[t] = a.weight + t * c;
    }
  }
  const S8DepthwiseAccumulateFn accumulate = a.accumulate;
  const int32_t zx = a.x_zero_point;
  const int32_t zy = a.y_zero_point;
  const float lo = static_cast<float>(static_cast<int32_t>(a.y_min) - zy);
  const float hi = static_cast<float>(static_cast<int32_t>(a.y_max) - zy);
  // Output columns whose every tap lies inside the input row: their taps are fixed offsets.
  const ptrdiff_t span_w = static_cast<ptrdiff_t>((g.kernel_w - 1) * g.dilation_w);
  // Columns [inner_begin, inner_end) have every tap inside the input row.
  const size_t inner_begin = std::min(g.out_width, (g.pad_left + g.stride_w - 1) / g.stride_w);
  const ptrdiff_t last_start = static_cast<ptrdiff_t>(g.in_width) - 1 - span_w + static_cast<ptrdiff_t>(g.pad_left);
  const size_t inner_end =
      last_start < 0 ? 0 : std::min(g.out_width, static_cast<size_t>(last_start) / g.stride_w + 1);
  S8DepthwiseRun run;
  run.offset = offset.data();
  run.taps = taps;
  run.channels = c;
  run.pixel_step = g.stride_w * c;
  run.weight = a.weight;
  run.bias = a.bias;
  run.scale = a.scale;
  run.x_zero_point = zx;
  run.y_zero_point = zy;
  run.lo = lo;
  run.hi = hi;
  run.pair_weight = a.pair_weight;
  run.pair_bias = a.pair_bias;
  run.pair_scale = a.pair_scale;
  run.quad_weight = a.quad_weight;
  run.quad_bias = a.quad_bias;
  run.quad_scale = a.quad_scale;
  for (size_t row = row_begin; row < row_end; ++row) {
    const size_t b = row / g.out_height, oh = row % g.out_height;
    const uint8_t* image = in + b * g.in_plane() * c;
    const ptrdiff_t ih0 = static_cast<ptrdiff_t>(oh * g.stride_h) - static_cast<ptrdiff_t>(g.pad_top);
    const bool rows_inside =
        ih0 >= 0 && ih0 + static_cast<ptrdiff_t>((g.kernel_h - 1) * g.dilation_h) < static_cast<ptrdiff_t>(g.in_height);
    for (size_t ow = 0; ow < g.out_width; ++ow) {
      if (rows_inside && !a.float_output && ow == inner_begin && inner_begin < inner_end) {
        // The interior of the row in one call: sums, requantization and stores in registers.
        const ptrdiff_t iw0 = static_cast<ptrdiff_t>(ow * g.stride_w) - static_cast<ptrdiff_t>(g.pad_left);
        run.x = image + (static_cast<size_t>(ih0) * g.in_width + static_cast<size_t>(iw0)) * c;
        run.pixels = inner_end - inner_begin;
        run.out = static_cast<uint8_t*>(out) + (row * g.out_width + ow) * c;
        a.run_u8(run);
        ow = inner_end - 1;
        continue;
      }
      uint32_t* s = acc.data();
      for (size_t ch = 0; ch < c; ++ch) s[ch] = a.bias ? static_cast<uint32_t>(a.bias[ch]) : 0u;
      const ptrdiff_t iw0 = static_cast<ptrdiff_t>(ow * g.stride_w) - static_cast<ptrdiff_t>(g.pad_left);
      if (rows_inside && iw0 >= 0 && iw0 + span_w < static_cast<ptrdiff_t>(g.in_width)) {
        const uint8_t* corner = image + (static_cast<size_t>(ih0) * g.in_width + static_cast<size_t>(iw0)) * c;
        for (size_t t = 0; t < taps; ++t) xs[t] = corner + offset[t];
      } else {
        s8_tap_pointers(g, image, oh, ow, padding.data(), xs.data());
      }
      accumulate(xs.data(), ws.data(), taps, c, zx, s);
      const size_t at = (row * g.out_width + ow) * c;
      if (a.float_output) {
        float* o = static_cast<float*>(out) + at;
        for (size_t ch = 0; ch < c; ++ch) o[ch] = dequantize_f32(static_cast<int32_t>(s[ch]), a.scale[ch], 0.0f);
      } else {
        requantize_row(s, a.scale, c, zy, lo, hi, static_cast<uint8_t*>(out) + at);
      }
    }
  }
}

}  // namespace kiln
