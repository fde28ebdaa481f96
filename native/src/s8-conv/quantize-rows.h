// Contiguous quantize / dequantize rows, per ISA, behind the layout kernels of kiln/s8-conv.h.
// Quantize: q = clamp(x / scale, lo, hi) rounded half to even, + zero_point, where lo = -zp and
// hi = 255 - zp (clamping before rounding equals saturating after: the bounds are integers), and
// NaN counts as 0 (it quantizes to the zero point). Dequantize: x = float(q - zp) * scale.
// Every variant gives the scalar one's bits.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace kiln {

struct QuantizeParams {
  float scale = 1, lo = 0, hi = 255;
  int32_t zero_point = 0;
};

void quantize_u8_row_scalar(const float* in, uint8_t* out, size_t n, const QuantizeParams& p);
void quantize_u8_row_avx2(const float* in, uint8_t* out, size_t n, const QuantizeParams& p);
void quantize_u8_row_avx512(const float* in, uint8_t* out, size_t n, const QuantizeParams& p);

void dequantize_u8_row_scalar(const uint8_t* in, float* out, size_t n, float scale, int32_t zero_point);
void dequantize_u8_row_avx2(const uint8_t* in, float* out, size_t n, float scale, int32_t zero_point);
void dequantize_u8_row_avx512(const uint8_t* in, float* out, size_t n, float scale, int32_t zero_point);

// QLinearAdd of two uint8 rows (docs/int8-ir.md): y = clamp(round_half_even(a_ratio * (a - a_zp) +
// b_ratio * (b - b_zp)) + y_zp, y_min, 255) with a_ratio = a_scale / y_scale and b_ratio =
// b_scale / y_scale, each operation rounded to float32 in that order (a_ratio * (a - a_zp) is one
// rounding of an exact product, however computed). Multiplying by the ratios, as the convolutions'
// requantization does, instead of dividing the sum by y_scale: the division bounded the rows on
// the Xeon VM (ResNet-50 int8 at batch 16, one thread: its QLinearAdd steps 21.4 -> 15.7 ms).
struct U8AddParams {
  float a_ratio = 1, b_ratio = 1;  // float32(a_scale / y_scale), float32(b_scale / y_scale), at most 1e36
  int32_t a_zero_point = 0, b_zero_point = 0;
  float y_zero_point = 0, y_min = 0;  // y_min: 0, or y_zero_point with a fused ReLU
};

// Ratios are capped here (docs/int8-ir.md): 255 times the cap is finite, so no product is infinite
// and no sum is NaN (inf - inf); a ratio this large saturates every code but the zero point anyway.
constexpr float kMaxAddRatio = 1e36f;

// The parameters of a QLinearAdd (scales > 0; `relu`: the fused ReLU, clamping at y_zp).
inline U8AddParams u8_add_params(float a_scale, int32_t a_zp, float b_scale, int32_t b_zp, float y_scale, int32_t y_zp,
                                 bool relu) {
  U8AddParams p;
  p.a_ratio = std::fmin(a_scale / y_scale, kMaxAddRatio);
  p.b_ratio = std::fmin(b_scale / y_scale, kMaxAddRatio);
  p.a_zero_point = a_zp;
  p.b_zero_point = b_zp;
  p.y_zero_point = static_cast<float>(y_zp);
  p.y_min = relu ? static_cast<float>(y_zp) : 0.0f;
  return p;
}

void add_u8_row_scalar(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n, const U8AddParams& p);
void add_u8_row_avx2(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n, const U8AddParams& p);
void add_u8_row_avx512(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n, const U8AddParams& p);

// QLinearMul's rows (runtime/ops/qlinear-mul.cc): y = sat(round_half_even(float32(a_scale * (a -
// a_zp)) * tb / y_scale) + y_zp), tb the dequantized other factor: tb[i] per element, or tb[0]
// for the whole row (a channel gate over an NCHW plane). Each operation rounded to float32 in that
// order (docs/int8-ir.md); y may be a.
struct U8MulParams {
  float a_scale = 1, y_scale = 1;
  int32_t a_zero_point = 0;
  float y_zero_point = 0;
};

void mul_u8_row_scalar(const uint8_t* a, const float* tb, bool one_tb, uint8_t* y, size_t n, const U8MulParams& p);
void mul_u8_row_avx2(const uint8_t* a, const float* tb, bool one_tb, uint8_t* y, size_t n, const U8MulParams& p);
void mul_u8_row_avx512(const uint8_t* a, const float* tb, bool one_tb, uint8_t* y, size_t n, const U8MulParams& p);

// BatchNormalization (and a ReLU) between a DequantizeLinear and a QuantizeLinear, on the codes
// (runtime/ops/batch-norm.cc): y[i] = quantize(relu?(dequantize(x[i]) * a[i] + b[i])), each
// operation rounded to float32 as the three steps it replaces round it (the product before the
// sum, no FMA), so the bits are theirs. a and b: the per-channel affine of one NHWC pixel.
struct U8AffineParams {
  float x_scale = 1;
  int32_t x_zero_point = 0;
  QuantizeParams y;
  bool relu = false;
};

void affine_u8_row_scalar(const uint8_t* x, const float* a, const float* b, uint8_t* y, size_t n, const U8AffineParams& p);
void affine_u8_row_avx2(const uint8_t* x, const float* a, const float* b, uint8_t* y, size_t n, const U8AffineParams& p);
void affine_u8_row_avx512(const uint8_t* x, const float* a, const float* b, uint8_t* y, size_t n, const U8AffineParams& p);

// QLinearLookup's rows (runtime/ops/lookup-u8.cc): y[i] = table[x[i]], 256 entries; y may be x.
// AVX2 and AVX-512 look the low nibble up in each 16-byte row of the table (pshufb) and keep the
// row the high nibble names.
void lookup_u8_row_scalar(const uint8_t* table, const uint8_t* x, uint8_t* y, size_t n);
void lookup_u8_row_avx2(const uint8_t* table, const uint8_t* x, uint8_t* y, size_t n);
void lookup_u8_row_avx512(const uint8_t* table, const uint8_t* x, uint8_t* y, size_t n);
// AVX-512 VBMI: the table in four registers, two vpermi2b per 64 bytes (the low 7 bits of each
// byte index 128 entries) and a blend on the top bit. Only where cpu_features().avx512vbmi.
void lookup_u8_row_avx512vbmi(const uint8_t* table, const uint8_t* x, uint8_t* y, size_t n);

// dst[j * dst_stride + i] = src[i * src_stride + j] for i < rows, j < cols: the byte transpose
// between a tile of channel rows and NHWC pixels. AVX2 moves whole 16x16 blocks through
// unpack stages (the AVX-512 table keeps it: the blocks are 16 bytes wide). Two to four rows into
// dense pixels (dst_stride == rows: an RGB or RGBA input image) take their own loops: unrolled for
// the count in the scalar kernel, 16 pixels per step through unpacks (2, 4) or byte shuffles (3)
// in the AVX2 one.
void transpose_u8_scalar(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride, size_t rows,
                         size_t cols);
void transpose_u8_avx2(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride, size_t rows,
                       size_t cols);

namespace {  // internal linkage: included by TUs built with different -m flags

// One element of the specification (the scalar row and the SIMD tails use it).
inline uint8_t quantize_u8_one(float x, const QuantizeParams& p) {
  float v = x / p.scale;
  if (v != v) v = 0.0f;
  v = v < p.lo ? p.lo : v;
  v = v > p.hi ? p.hi : v;
  return static_cast<uint8_t>(static_cast<int32_t>(std::nearbyint(v)) + p.zero_point);
}

inline uint8_t add_u8_one(uint8_t a, uint8_t b, const U8AddParams& p) {
  float ta = p.a_ratio * static_cast<float>(static_cast<int32_t>(a) - p.a_zero_point);
  float tb = p.b_ratio * static_cast<float>(static_cast<int32_t>(b) - p.b_zero_point);
  // Each product rounded before the sum: without this barrier a TU built with FMA contracts
  // a * x + b * y into one fused operation (GCC's default -ffp-contract=fast), other bits.
  __asm__("" : "+x"(ta), "+x"(tb));
  // |r| is small or saturates anyway, so r + y_zero_point is exact where it matters.
  const float q = std::nearbyint(ta + tb) + p.y_zero_point;
  return static_cast<uint8_t>(q < p.y_min ? p.y_min : q > 255.0f ? 255.0f : q);
}

inline uint8_t mul_u8_one(uint8_t a, float tb, const U8MulParams& p) {
  const float ta = p.a_scale * static_cast<float>(static_cast<int32_t>(a) - p.a_zero_point);
  const float q = std::nearbyint(ta * tb / p.y_scale) + p.y_zero_point;
  return static_cast<uint8_t>(q < 0.0f ? 0.0f : q > 255.0f ? 255.0f : q);
}

inline float dequantize_u8_one(uint8_t q, float scale, int32_t zero_point) {
  return static_cast<float>(static_cast<int32_t>(q) - zero_point) * scale;
}

inline uint8_t affine_u8_one(uint8_t x, float a, float b, const U8AffineParams& p) {
  float v = dequantize_u8_one(x, p.x_scale, p.x_zero_point) * a;
  __asm__("" : "+x"(v));  // rounded before the sum, as BatchNormalization's x * a + b is
  v = v + b;
  if (p.relu) v = v < 0.0f ? 0.0f : v;  // NaN and -0 pass, as the Relu step's max(0, x)
  return quantize_u8_one(v, p.y);
}

}  // namespace
}  // namespace kiln
