// The scalar sparse int8 kernels: the specification the SIMD paths reproduce bit for bit, and the
// fallback every table starts with.
#include <cstring>

#include "common/dispatch.h"
#include "quant/requantize.h"
#include "s8-sparse/s8-sparse-ukernel.h"

namespace kiln {
namespace {

inline int32_t dot4(const uint8_t* x, int32_t word) {
  int8_t w[4];
  std::memcpy(w, &word, 4);
  return x[0] * w[0] + x[1] * w[1] + x[2] * w[2] + x[3] * w[3];  // |.| <= 4 * 255 * 128: no overflow
}

inline int32_t max4(int32_t a, int32_t b, int32_t c, int32_t d) {
  const int32_t ab = a > b ? a : b, cd = c > d ? c : d;
  return ab > cd ? ab : cd;
}

}  // namespace

namespace {

void channel(const S8SpConvImage& im, const S8SpConvChannel& ch, uint8_t* out) {
  for (size_t p = 0; p < im.positions; ++p) {
    int32_t acc = ch.init;
    for (size_t b = 0; b < ch.blocks; ++b) acc = wrap_add(acc, dot4(im.x + 4 * (p + static_cast<size_t>(ch.offset[b])), ch.word[b]));
    im.acc[p] = acc;
  }
  const int32_t* a = im.acc;
  if (im.pool) {
    for (size_t py = 0; py < im.pooled_h; ++py) {
      const int32_t* r0 = a + 2 * py * im.wp;
      const int32_t* r1 = r0 + im.wp;
      for (size_t px = 0; px < im.pooled_w; ++px) {
        const int32_t m = max4(r0[2 * px], r0[2 * px + 1], r1[2 * px], r1[2 * px + 1]);
        out[(py * im.pooled_w + px) * im.out_stride] = requantize_u8(m, ch.scale, im.zero_point, im.lo, im.hi);
      }
    }
    return;
  }
  for (size_t oy = 0; oy < im.rows; ++oy) {
    for (size_t ox = 0; ox < im.out_w; ++ox) {
      out[(oy * im.out_w + ox) * im.out_stride] = requantize_u8(a[oy * im.wp + ox], ch.scale, im.zero_point, im.lo, im.hi);
    }
  }
}

}  // namespace

void s8_spconv_channels_scalar(const S8SpConvImage& im, const S8SpConvChannel* ch, size_t count, uint8_t* out) {
  for (size_t i = 0; i < count; ++i) channel(im, ch[i], out + i);
}

namespace {

inline void store(const S8SpmmJob& j, size_t i, size_t n, int32_t acc) {
  if (j.float_output) {
    static_cast<float*>(j.out)[i * j.ldc + n] = dequantize_f32(acc, j.scale[n], 0.0f);
  } else {
    static_cast<uint8_t*>(j.out)[i * j.ldc + n] = requantize_u8(acc, j.scale[n], j.zero_point, j.lo, j.hi);
  }
}

}  // namespace

void s8_spmm_lanes_scalar(const S8SpmmJob& j, size_t row0, size_t row1) {
  for (size_t n = row0; n < row1; ++n) {
    for (size_t i = 0; i < j.m; ++i) {
      int32_t acc = j.init[n];
      for (uint32_t b = j.row_ptr[n]; b < j.row_ptr[n + 1]; ++b) {
        acc = wrap_add(acc, dot4(j.x + 4 * (static_cast<size_t>(j.group[b]) * j.lanes + i), j.word[b]));
      }
      store(j, i, n, acc);
    }
  }
}

void s8_spmm_gather_scalar(const S8SpmmJob& j, size_t row0, size_t row1) {
  for (size_t n = row0; n < row1; ++n) {
    for (size_t i = 0; i < j.m; ++i) {
      int32_t acc = j.init[n];
      const uint8_t* x = j.x + i * j.ldx;
      for (uint32_t b = j.row_ptr[n]; b < j.row_ptr[n + 1]; ++b) acc = wrap_add(acc, dot4(x + 4 * static_cast<size_t>(j.group[b]), j.word[b]));
      store(j, i, n, acc);
    }
  }
}

void fill_s8_sparse_scalar(DispatchTable* t) {
  t->s8_sparse = {"scalar", s8_spconv_channels_scalar, s8_spmm_lanes_scalar, s8_spmm_gather_scalar};
  t->s8_sparse_avxvnni = S8SparseKernels();
}

}  // namespace kiln
