// The scalar kernels of the int8 convolution family: the dispatch table's scalar entries (the
// fallback on any CPU) and the oracle the AVX2 / AVX-512 variants are tested against, bit for bit.
#include <cstring>
#include "s8-conv/maxpool-u8.h"
#include "s8-conv/quantize-rows.h"
#include "s8-conv/s8-depthwise.h"

namespace kiln {

void quantize_u8_row_scalar(const float* in, uint8_t* out, size_t n, const QuantizeParams& p) {
  for (size_t i = 0; i < n; ++i) out[i] = quantize_u8_one(in[i], p);
}

void dequantize_u8_row_scalar(const uint8_t* in, float* out, size_t n, float scale, int32_t zero_point) {
  for (size_t i = 0; i < n; ++i) out[i] = dequantize_u8_one(in[i], scale, zero_point);
}

void max_pool_u8_run_scalar(const uint8_t* const* taps, size_t count, size_t pixels, size_t step, size_t channels,
                            uint8_t* out) {
  for (size_t p = 0; p < pixels; ++p, out += channels) {
    for (size_t c = 0; c < channels; ++c) {
      uint8_t best = 0;
      for (size_t t = 0; t < count; ++t) best = taps[t][p * step + c] > best ? taps[t][p * step + c] : best;
      out[c] = best;
    }
  }
}

void s8_depthwise_run_scalar(const S8DepthwiseRun& r) {
  for (size_t p = 0; p < r.pixels; ++p) {
    const uint8_t* x = r.x + p * r.pixel_step;
    for (size_t ch = 0; ch < r.channels; ++ch) s8_depthwise_run_channel(r, x, p, ch);
  }
}

namespace {

// dst[j * C + i] = src[i * src_stride + j]: with C known the inner loop unrolls (an image's 3
// channels took a quarter of the time of the loop over a run-time count).
template <size_t C>
void interleave_rows(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t cols) {
  for (size_t j = 0; j < cols; ++j) {
    for (size_t i = 0; i < C; ++i) dst[j * C + i] = src[i * src_stride + j];
  }
}

}  // namespace

void transpose_u8_scalar(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride, size_t rows,
                         size_t cols) {
  if (dst_stride == rows) {
    switch (rows) {
      case 2: interleave_rows<2>(src, src_stride, dst, cols); return;
      case 3: interleave_rows<3>(src, src_stride, dst, cols); return;
      case 4: interleave_rows<4>(src, src_stride, dst, cols); return;
      default: break;
    }
  }
  for (size_t i = 0; i < rows; ++i) {
    for (size_t j = 0; j < cols; ++j) dst[j * dst_stride + i] = src[i * src_stride + j];
  }
}

void add_u8_row_scalar(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n, const U8AddParams& p) {
  for (size_t i = 0; i < n; ++i) y[i] = add_u8_one(a[i], b[i], p);
}

// Rounds with 1.5 * 2^23 instead of nearbyint, a libm call per element on the baseline ISA (no
// roundss): adding it leaves no fraction bits, so the addition rounds half to even and the
// subtraction is exact, for |v| <= 2^22 (clamped first: the bounds are integers, so clamping
// before rounding equals saturating after). Without -ffast-math no compiler folds the pair.
void mul_u8_row_scalar(const uint8_t* a, const float* tb, bool one_tb, uint8_t* y, size_t n, const U8MulParams& p) {
  constexpr float kMagic = 12582912.0f;
  const float lo = -p.y_zero_point, hi = 255.0f - p.y_zero_point;
  for (size_t i = 0; i < n; ++i) {
    const float ta = p.a_scale * static_cast<float>(static_cast<int32_t>(a[i]) - p.a_zero_point);
    float v = ta * tb[one_tb ? 0 : i] / p.y_scale;
    v = v < lo ? lo : v > hi ? hi : v;
    y[i] = static_cast<uint8_t>(((v + kMagic) - kMagic) + p.y_zero_point);
  }
}

// Eight codes per 64-bit load and store: byte stores through uint8_t pointers may alias the table
// (char aliases everything), which makes a plain loop reload and serialize; whole words do not.
void affine_u8_row_scalar(const uint8_t* x, const float* a, const float* b, uint8_t* y, size_t n, const U8AffineParams& p) {
  for (size_t i = 0; i < n; ++i) y[i] = affine_u8_one(x[i], a[i], b[i], p);
}

void lookup_u8_row_scalar(const uint8_t* table, const uint8_t* x, uint8_t* y, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t in;
    std::memcpy(&in, x + i, 8);
    uint64_t out = 0;
    for (int k = 0; k < 8; ++k) out |= uint64_t{table[(in >> (8 * k)) & 0xff]} << (8 * k);
    std::memcpy(y + i, &out, 8);
  }
  for (; i < n; ++i) y[i] = table[x[i]];
}

}  // namespace kiln
