// AVX512-VNNI int8 micro-kernel: 6 rows x 64 columns, 24 zmm accumulators.
// One vpdpbusd multiplies 4 uint8 of A (broadcast) by 4 int8 of each of 16 columns of B and adds
// the exact sums to int32 lanes: 64 multiply-adds, no intermediate that could saturate.
// Per k group the kernel loads 4 B vectors (one 64-byte group of each of 4 panels) and 6 A
// broadcasts for 24 vpdpbusd; 24 independent chains cover the instruction's latency.
// GCC 12 warns inside its own headers about _mm256_undefined_si256() (the "don't care" source of
// the extract in _mm512_reduce_add_epi32); the value is never used.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "common/simd.h"

#include <cstring>

#include "common/dispatch.h"
#include "common/tile-table.h"
#include "quant/requantize-avx512.h"
#include "s8-gemm/s8-gemm-tile.h"
#include "s8-gemm/s8-gemm-ukernel.h"

namespace kiln {
namespace {

constexpr int kRows = 6;
constexpr int kVecs = 4;  // 16-column vectors (= B panels) per tile row

inline __m512i broadcast_u8x4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm512_set1_epi32(v);
}

// acc += u8 quads of `a` times s8 quads of `b`, per 32-bit lane, as inline asm: for the peak loop,
// whose 24 chains share the same two sources, GCC 12 turns _mm512_dpbusd_epi32 into a copy of
// the accumulator plus spills around almost every vpdpbusd (objdump: 21 vmovdqa per 24). In the
// GEMM tiles it is the other way round: the intrinsic compiles to a clean loop (loads, 6
// broadcasts, 24 vpdpbusd) while this asm made GCC add copies in the narrower tiles.
inline void dpbusd_asm(__m512i& acc, __m512i a, __m512i b) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
}

// One accumulator per 16-column output vector (panel).
struct Store {
  using Acc = __m512i;
  static constexpr bool kPairs = false;
  static constexpr int kRowU8Vectors = kVecs;
  template <S8Output OUT>
  static void store(const S8GemmTile& t, int r, int u, Acc x) {
    avx512_epilogue::store_vector<OUT, false>(t, static_cast<size_t>(r), static_cast<size_t>(u), x);
  }
  static void store_row_u8(const S8GemmTile& t, int r, const Acc (&x)[kVecs]) {
    avx512_epilogue::store_row_u8<kVecs, false>(t, static_cast<size_t>(r), x);
  }
};

// acc += `groups` k groups of rows a[r] (4 bytes each, `gs` bytes apart) times B from b on.
template <int R, int V>
inline void accumulate(__m512i (&acc)[R][V], const uint8_t* const (&a)[R], size_t gs, size_t groups, const int8_t*& b,
                       size_t ps) {
  for (size_t g = 0, off = 0; g < groups; ++g, off += gs) {
    __m512i bv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) bv[v] = _mm512_load_si512(b + v * ps);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m512i av = broadcast_u8x4(a[r] + off);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], av, bv[v]);
    }
    b += kS8GroupBytes;
  }
}

template <int R, int V>
void tile(const S8GemmTile& t) {
  // The sums start from the column offsets (the zero-point correction and bias the epilogue would
  // add): int32 addition wraps the same in any order, so the bits are those of adding them after,
  // and the epilogue saves an add per output vector (a 1x1 convolution of 16 channels does only
  // 4 vpdpbusd per accumulator).
  __m512i acc[R][V];
  __m512i offset[V];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) offset[v] = _mm512_maskz_loadu_epi32(avx512_epilogue::lanes(t.nr, v), t.offset + 16 * v);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = offset[v];

  const int8_t* b = t.b;
  const uint8_t* a[R];
  if (t.a_rows == nullptr) {
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) a[r] = static_cast<const uint8_t*>(t.a) + r * t.a_row_stride;
    accumulate<R, V>(acc, a, t.a_group_stride, t.groups, b, t.b_panel_stride);
  } else {
    for (size_t s = 0, g = 0; g < t.groups; ++s, g += t.a_segment_groups) {
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) a[r] = t.a_rows[s * t.a_rows_stride + r];
      accumulate<R, V>(acc, a, kS8KGroup, t.a_segment_groups, b, t.b_panel_stride);
    }
  }

  s8_store<Store>(t, acc);
}

using TileFn = void (*)(const S8GemmTile&);

struct Tiles {
  template <int R, int V>
  static constexpr TileFn at() { return tile<R, V>; }
};
constexpr TileTable<TileFn, Tiles, kRows, kVecs> kTiles;

}  // namespace

void s8_gemm_6x64_avx512vnni(const S8GemmTile& t) { kTiles.at[t.mr - 1][(t.nr + 15) / 16 - 1](t); }

namespace {

// 24 independent vpdpbusd chains on register operands.
struct Peak {
  static constexpr int kChains = 24, kMacsPerStep = 64;
  using Acc = __m512i;
  struct Operands {
    __m512i a, b;
  };
  static Acc start(int i) { return _mm512_set1_epi32(i); }
  static Operands operands() {
    __m512i a = _mm512_set1_epi32(0x01020304);
    __m512i b = _mm512_set1_epi32(0x05060708);
    __asm__("" : "+v"(a), "+v"(b));
    return {a, b};
  }
  static void step(Acc& acc, const Operands& o, int) { dpbusd_asm(acc, o.a, o.b); }
  static Acc add(Acc a, Acc b) { return _mm512_add_epi32(a, b); }
  static int sink(Acc v) { return _mm512_reduce_add_epi32(v); }
};

}  // namespace

double s8_gemm_peak_avx512vnni(size_t iterations) { return s8_gemm_peak<Peak>(iterations); }

void fill_s8_gemm_avx512vnni(DispatchTable* table) {
  S8GemmKernels& k = table->s8_gemm;
  k = {"avx512vnni", kRows, 16 * kVecs, S8ALayout::kU8, s8_gemm_6x64_avx512vnni, s8_gemm_peak_avx512vnni};
}

}  // namespace kiln
