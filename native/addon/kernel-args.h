// Readers shared by the kernel glue (GEMM, conv, pool, elementwise, int8): the async flag, exact
// array lengths, matrix extents, overlap checks, and the conv/pool geometry objects of
// src/binding.ts.
#pragma once
#include <napi.h>

#include <cstddef>
#include <initializer_list>

#include "args.h"
#include "kiln/conv.h"
#include "kiln/pool.h"

namespace kiln_addon {

// Largest count accepted for any dimension: keeps every index computation far from overflow.
constexpr int64_t kMaxDim = 2147483647;

// The trailing `async` argument: a boolean, or undefined meaning false.
bool get_async(const Napi::CallbackInfo& info, size_t index);

// The frame of every kernel entry point `fn(args, async)`: reads the args object (argument 0)
// and then the async flag (argument 1), calls body(env, args, async) and turns an ArgError or
// std::exception it throws into the JS error (KILN_ADDON_CATCH).
template <typename Body>
Napi::Value kernel_call(const Napi::CallbackInfo& info, Body&& body) {
  Napi::Env env = info.Env();
  KILN_ADDON_TRY {
    const Napi::Object args = get_object(info, 0, "args");
    const bool async = get_async(info, 1);
    return body(env, args, async);
  }
  KILN_ADDON_CATCH(env)
}

// A Float32Array/Int32Array of exactly `length` elements (RangeError naming `name` otherwise).
View<float> get_f32_exact(const Napi::Object& o, const char* name, size_t length);
View<float> get_f32_exact_opt(const Napi::Object& o, const char* name, size_t length);  // null ok
View<int32_t> get_i32_exact(const Napi::Object& o, const char* name, size_t length);
View<int32_t> get_i32_exact_opt(const Napi::Object& o, const char* name, size_t length);

// Elements spanned by a rows x cols row-major matrix with leading dimension ld (0 when empty).
size_t matrix_extent(size_t rows, size_t cols, size_t ld, const char* name);
// The leading dimension `name` of a stored matrix with `cols` columns: an integer >= cols
// (RangeError quoting `shape`, e.g. "A is m x k", otherwise).
size_t leading_dim(const Napi::Object& args, const char* name, size_t cols, const char* shape);

// The memory of one array argument, for overlap checks (a kernel that reads one array while
// writing an overlapping one would read its own output).
struct Region {
  const void* data;
  size_t bytes;
  const char* name;
};
template <typename T>
Region region(const View<T>& v, const char* name) {
  return {v.data, v.length * sizeof(T), name};
}

// RangeError unless each written array is disjoint from every read array and every other written
// one. Absent (null) and empty arrays are ignored.
void expect_apart(std::initializer_list<Region> writes, std::initializer_list<Region> reads);
// For elementwise kernels that may run in place: the same array, or disjoint.
void expect_same_or_apart(const Region& write, const Region& read);

// A boolean that must be present.
bool get_bool(const Napi::Object& o, const char* name);

// A finite number in [lo, hi] (RangeError otherwise; TypeError when not a number). With
// `open_lo` the lower bound is excluded.
double get_number_in(const Napi::Object& o, const char* name, double lo, double hi, bool open_lo = false);

// Conv2dGeometry fields of src/binding.ts, fully checked: counts >= 1 (pads >= 0), groups divide
// both channel counts, outHeight/outWidth equal the window formula. Element counts of the
// arrays, overflow-checked.
struct Conv2dArgs {
  kiln::Conv2dGeometry g;
  size_t batch = 0;
  size_t input = 0, output = 0, weight = 0;
};
Conv2dArgs read_conv2d_args(const Napi::Object& o);

struct Pool2dArgs {
  kiln::Pool2dGeometry g;
  size_t batch = 0, channels = 0;
  size_t input = 0, output = 0;
};
Pool2dArgs read_pool2d_args(const Napi::Object& o);

}  // namespace kiln_addon
