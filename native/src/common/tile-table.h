// The table of a micro-kernel's tile functions by shape, built at compile time:
//   constexpr TileTable<Fn, Maker, ROWS, VECS> kTiles;  kTiles.at[r - 1][v - 1] = Maker::at<r, v>()
// for r <= ROWS rows and v <= VECS vectors per row (each instantiation a separate function, so
// the loops inside are unrolled for the shape). `Maker` is the ISA file's: it names its tile
// template, e.g. struct Tiles { template <int R, int V> static constexpr Fn at() { return tile<R, V>; } }.
#pragma once
#include <utility>

namespace kiln {
namespace {

template <class Fn, class Maker, int ROWS, int VECS>
struct TileTable {
  Fn at[ROWS][VECS];

  constexpr TileTable() : at() { fill(std::make_integer_sequence<int, ROWS * VECS>()); }

 private:
  template <int... I>
  constexpr void fill(std::integer_sequence<int, I...>) {
    ((at[I / VECS][I % VECS] = Maker::template at<I / VECS + 1, I % VECS + 1>()), ...);
  }
};

}  // namespace
}  // namespace kiln
