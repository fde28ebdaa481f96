// Quantize / dequantize rows with AVX2, 8 floats per step: vdivps (a true division, as ONNX
// specifies), NaN zeroed by an ordered-compare mask, clamp, vcvtps2dq (ties to even in the
// default rounding mode), then packs to bytes (values are already in [0, 255]).
#include "common/simd.h"

#include "s8-conv/quantize-rows.h"

namespace kiln {

void quantize_u8_row_avx2(const float* in, uint8_t* out, size_t n, const QuantizeParams& p) {
  const __m256 scale = _mm256_set1_ps(p.scale), lo = _mm256_set1_ps(p.lo), hi = _mm256_set1_ps(p.hi);
  const __m256i zp = _mm256_set1_epi32(p.zero_point);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    // A line 4 KiB ahead, as the AVX-512 row does (its comment has the measurement).
    _mm_prefetch(reinterpret_cast<const char*>(in + i + 1024), _MM_HINT_T0);
    __m256 v = _mm256_div_ps(_mm256_loadu_ps(in + i), scale);
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(v), zp);
    const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), _mm_packus_epi16(words, words));
  }
  for (; i < n; ++i) out[i] = quantize_u8_one(in[i], p);
}

void dequantize_u8_row_avx2(const uint8_t* in, float* out, size_t n, float scale, int32_t zero_point) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256i zp = _mm256_set1_epi32(zero_point);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(in + i)));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, zp)), s));
  }
  for (; i < n; ++i) out[i] = dequantize_u8_one(in[i], scale, zero_point);
}

namespace {

// One 16x16 block: rows of 16 bytes in, columns out, through four rounds of byte unpacks, each
// interleaving rows i and i + 8 of the previous round (a perfect shuffle: four make the transpose).
inline void transpose_16x16(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride) {
  __m128i a[16], b[16];
  __m128i* r = a;
  __m128i* t = b;
  for (int i = 0; i < 16; ++i) r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i * src_stride));
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 8; ++i) {
      t[2 * i] = _mm_unpacklo_epi8(r[i], r[i + 8]);
      t[2 * i + 1] = _mm_unpackhi_epi8(r[i], r[i + 8]);
    }
    __m128i* swap = r;
    r = t;
    t = swap;
  }
  for (int i = 0; i < 16; ++i) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i * dst_stride), r[i]);
}

}  // namespace

namespace {

// Three rows into pixels: output byte k of a step is pixel k / 3's channel k % 3. Mask
// m[part][i] takes, for each byte of output vector `part`, row i's byte of that pixel where
// k % 3 == i, else zero. Built at compile time: interleave_rows runs once per 256-pixel tile.
struct InterleaveMasks3 {
  alignas(16) int8_t m[3][3][16] = {};
};

constexpr InterleaveMasks3 interleave_masks3() {
  InterleaveMasks3 r;
  for (int part = 0; part < 3; ++part) {
    for (int i = 0; i < 3; ++i) {
      for (int b = 0; b < 16; ++b) {
        const int k = 16 * part + b;
        r.m[part][i][b] = k % 3 == i ? static_cast<int8_t>(k / 3) : static_cast<int8_t>(-128);
      }
    }
  }
  return r;
}

constexpr InterleaveMasks3 kInterleaveMasks3 = interleave_masks3();

// Two to four rows of `cols` bytes into dense pixels (dst[j * rows + i]), 16 pixels per step; the
// last few byte by byte.
void interleave_rows(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t rows, size_t cols) {
  auto row = [&](size_t i, size_t j) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i * src_stride + j)); };
  auto put = [&](size_t j, size_t part, __m128i v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j * rows + 16 * part), v);
  };
  const auto& m3 = kInterleaveMasks3.m;
  size_t j = 0;
  for (; j + 16 <= cols; j += 16) {
    if (rows == 2) {
      const __m128i a = row(0, j), b = row(1, j);
      put(j, 0, _mm_unpacklo_epi8(a, b));
      put(j, 1, _mm_unpackhi_epi8(a, b));
    } else if (rows == 4) {
      const __m128i a = row(0, j), b = row(1, j), c = row(2, j), d = row(3, j);
      const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
      const __m128i cd_lo = _mm_unpacklo_epi8(c, d), cd_hi = _mm_unpackhi_epi8(c, d);
      put(j, 0, _mm_unpacklo_epi16(ab_lo, cd_lo));
      put(j, 1, _mm_unpackhi_epi16(ab_lo, cd_lo));
      put(j, 2, _mm_unpacklo_epi16(ab_hi, cd_hi));
      put(j, 3, _mm_unpackhi_epi16(ab_hi, cd_hi));
    } else {
      const __m128i in[3] = {row(0, j), row(1, j), row(2, j)};
      for (int part = 0; part < 3; ++part) {
        __m128i v = _mm_setzero_si128();
        for (int i = 0; i < 3; ++i) {
          v = _mm_or_si128(v, _mm_shuffle_epi8(in[i], _mm_load_si128(reinterpret_cast<const __m128i*>(m3[part][i]))));
        }
        put(j, static_cast<size_t>(part), v);
      }
    }
  }
  for (; j < cols; ++j) {
    for (size_t i = 0; i < rows; ++i) dst[j * rows + i] = src[i * src_stride + j];
  }
}

}  // namespace

void transpose_u8_avx2(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride, size_t rows,
                       size_t cols) {
  if (dst_stride == rows && rows >= 2 && rows <= 4) {
    interleave_rows(src, src_stride, dst, rows, cols);
    return;
  }
  const size_t full_rows = rows / 16 * 16, full_cols = cols / 16 * 16;
  for (size_t i = 0; i < full_rows; i += 16) {
    for (size_t j = 0; j < full_cols; j += 16) transpose_16x16(src + i * src_stride + j, src_stride, dst + j * dst_stride + i, dst_stride);
  }
  // The edges byte by byte: the last columns of every row, then the last rows.
  for (size_t i = 0; i < full_rows; ++i) {
    for (size_t j = full_cols; j < cols; ++j) dst[j * dst_stride + i] = src[i * src_stride + j];
  }
  for (size_t i = full_rows; i < rows; ++i) {
    for (size_t j = 0; j < cols; ++j) dst[j * dst_stride + i] = src[i * src_stride + j];
  }
}

void mul_u8_row_avx2(const uint8_t* a, const float* tb, bool one_tb, uint8_t* y, size_t n, const U8MulParams& p) {
  const __m256 as = _mm256_set1_ps(p.a_scale), ys = _mm256_set1_ps(p.y_scale);
  const __m256i az = _mm256_set1_epi32(p.a_zero_point);
  const __m256 yz = _mm256_set1_ps(p.y_zero_point), lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(255.0f);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i qa = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a + i)));
    const __m256 ta = _mm256_mul_ps(as, _mm256_cvtepi32_ps(_mm256_sub_epi32(qa, az)));
    const __m256 b = one_tb ? _mm256_set1_ps(tb[0]) : _mm256_loadu_ps(tb + i);
    const __m256 r = _mm256_round_ps(_mm256_div_ps(_mm256_mul_ps(ta, b), ys), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 q = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(r, yz), lo), hi);
    const __m256i qi = _mm256_cvtps_epi32(q);
    const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(qi), _mm256_extracti128_si256(qi, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i), _mm_packus_epi16(words, words));
  }
  for (; i < n; ++i) y[i] = mul_u8_one(a[i], tb[one_tb ? 0 : i], p);
}

void affine_u8_row_avx2(const uint8_t* x, const float* a, const float* b, uint8_t* y, size_t n, const U8AffineParams& p) {
  const __m256 xs = _mm256_set1_ps(p.x_scale), ys = _mm256_set1_ps(p.y.scale);
  const __m256 lo = _mm256_set1_ps(p.y.lo), hi = _mm256_set1_ps(p.y.hi), zero = _mm256_setzero_ps();
  const __m256i xz = _mm256_set1_epi32(p.x_zero_point), yz = _mm256_set1_epi32(p.y.zero_point);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + i)));
    __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, xz)), xs), _mm256_loadu_ps(a + i));
    // The product rounded before the sum: GCC would otherwise contract mul + add into an FMA.
    __asm__("" : "+x"(v));
    v = _mm256_add_ps(v, _mm256_loadu_ps(b + i));
    if (p.relu) v = _mm256_max_ps(zero, v);  // the second operand for NaN and for -0
    v = _mm256_div_ps(v, ys);
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    const __m256i qi = _mm256_add_epi32(_mm256_cvtps_epi32(v), yz);
    const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(qi), _mm256_extracti128_si256(qi, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i), _mm_packus_epi16(words, words));
  }
  for (; i < n; ++i) y[i] = affine_u8_one(x[i], a[i], b[i], p);
}

void lookup_u8_row_avx2(const uint8_t* table, const uint8_t* x, uint8_t* y, size_t n) {
  __m256i rows[16];
  for (int r = 0; r < 16; ++r) rows[r] = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 16 * r)));
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    const __m256i lo = _mm256_and_si256(v, nibble);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
    __m256i out = _mm256_setzero_si256();
    for (int r = 0; r < 16; ++r) {
      const __m256i hit = _mm256_cmpeq_epi8(hi, _mm256_set1_epi8(static_cast<char>(r)));
      out = _mm256_or_si256(out, _mm256_and_si256(hit, _mm256_shuffle_epi8(rows[r], lo)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), out);
  }
  for (; i < n; ++i) y[i] = table[x[i]];
}

void add_u8_row_avx2(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n, const U8AddParams& p) {
  const __m256 as = _mm256_set1_ps(p.a_ratio), bs = _mm256_set1_ps(p.b_ratio);
  const __m256i az = _mm256_set1_epi32(p.a_zero_point), bz = _mm256_set1_epi32(p.b_zero_point);
  const __m256 yz = _mm256_set1_ps(p.y_zero_point), lo = _mm256_set1_ps(p.y_min), hi = _mm256_set1_ps(255.0f);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i qa = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a + i)));
    const __m256i qb = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + i)));
    // Two products and a sum, not an FMA: the specification rounds each.
    __m256 ra = _mm256_mul_ps(as, _mm256_cvtepi32_ps(_mm256_sub_epi32(qa, az)));
    __m256 rb = _mm256_mul_ps(bs, _mm256_cvtepi32_ps(_mm256_sub_epi32(qb, bz)));
    // The products rounded before the sum: GCC would otherwise contract mul + add into an FMA.
    __asm__("" : "+x"(ra), "+x"(rb));
    const __m256 r = _mm256_round_ps(_mm256_add_ps(ra, rb), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 q = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(r, yz), lo), hi);
    const __m256i qi = _mm256_cvtps_epi32(q);
    const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(qi), _mm256_extracti128_si256(qi, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i), _mm_packus_epi16(words, words));
  }
  for (; i < n; ++i) y[i] = add_u8_one(a[i], b[i], p);
}

}  // namespace kiln
