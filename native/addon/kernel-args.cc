#include "kernel-args.h"

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

namespace kiln_addon {
namespace {

std::string count_of(size_t n, const char* type_name) {
  std::ostringstream s;
  s << "a " << type_name << " of " << n << " elements";
  return s.str();
}

template <typename T>
View<T> exact(View<T> view, const char* name, size_t length, const char* type_name) {
  // An absent optional array has an empty value; a present empty array may have a null data pointer.
  if (!view.value.IsEmpty() && view.length != length) throw_range(name, count_of(length, type_name), describe(view.value));
  return view;
}

size_t dim(const Napi::Object& o, const char* name, int64_t lo) {
  return static_cast<size_t>(get_int(o, name, lo, kMaxDim));
}

// Checks one axis of a window: the dilated kernel fits the padded input, and `out` matches.
void check_axis(const char* out_name, size_t out, const char* kernel_name, size_t in, size_t pad_begin,
                size_t pad_end, size_t kernel, size_t stride, size_t dilation, const char* formula) {
  const size_t expected = kiln::window_output_size(in, pad_begin, pad_end, kernel, stride, dilation);
  if (expected == 0) {
    std::ostringstream want, got;
    want << "a dilated kernel extent of at most the padded input (" << in + pad_begin + pad_end << ")";
    got << dilation * (kernel - 1) + 1;
    throw_range(kernel_name, want.str(), got.str());
  }
  if (out != expected) {
    std::ostringstream want, got;
    want << expected << " (" << formula << ")";
    got << out << " (number)";
    throw_range(out_name, want.str(), got.str());
  }
}

// The window fields a convolution and a pooling geometry share (the JS names are the same in
// both), with the output size of each axis checked against the window formula.
template <typename Geometry>
void read_window(const Napi::Object& o, Geometry& g) {
  g.in_height = dim(o, "inHeight", 1);
  g.in_width = dim(o, "inWidth", 1);
  g.out_height = dim(o, "outHeight", 1);
  g.out_width = dim(o, "outWidth", 1);
  g.kernel_h = dim(o, "kernelH", 1);
  g.kernel_w = dim(o, "kernelW", 1);
  g.stride_h = dim(o, "strideH", 1);
  g.stride_w = dim(o, "strideW", 1);
  g.pad_top = dim(o, "padTop", 0);
  g.pad_left = dim(o, "padLeft", 0);
  g.pad_bottom = dim(o, "padBottom", 0);
  g.pad_right = dim(o, "padRight", 0);
  g.dilation_h = dim(o, "dilationH", 1);
  g.dilation_w = dim(o, "dilationW", 1);
  check_axis("outHeight", g.out_height, "kernelH", g.in_height, g.pad_top, g.pad_bottom, g.kernel_h, g.stride_h,
             g.dilation_h, "floor((inHeight + padTop + padBottom - dilationH*(kernelH-1) - 1)/strideH) + 1");
  check_axis("outWidth", g.out_width, "kernelW", g.in_width, g.pad_left, g.pad_right, g.kernel_w, g.stride_w,
             g.dilation_w, "floor((inWidth + padLeft + padRight - dilationW*(kernelW-1) - 1)/strideW) + 1");
}

}  // namespace

size_t matrix_extent(size_t rows, size_t cols, size_t ld, const char* name) {
  if (rows == 0 || cols == 0) return 0;
  return checked_mul(rows - 1, ld, name) + cols;  // (rows-1)*ld + cols <= rows*ld: no overflow
}

size_t leading_dim(const Napi::Object& args, const char* name, size_t cols, const char* shape) {
  const int64_t ld = get_int(args, name, 0, kMaxDim);
  if (static_cast<size_t>(ld) < cols) {
    throw_range(name, std::string("an integer >= ") + std::to_string(cols) + " (" + shape + ")", std::to_string(ld));
  }
  return static_cast<size_t>(ld);
}

bool get_async(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || info[index].IsUndefined()) return false;
  if (!info[index].IsBoolean()) throw_type("async", "a boolean", info[index]);
  return info[index].As<Napi::Boolean>().Value();
}

View<float> get_f32_exact(const Napi::Object& o, const char* name, size_t length) {
  return exact(get_f32(o, name, 0), name, length, "Float32Array");
}
View<float> get_f32_exact_opt(const Napi::Object& o, const char* name, size_t length) {
  return exact(get_f32_opt(o, name, 0), name, length, "Float32Array");
}
View<int32_t> get_i32_exact(const Napi::Object& o, const char* name, size_t length) {
  return exact(get_i32(o, name, 0), name, length, "Int32Array");
}
View<int32_t> get_i32_exact_opt(const Napi::Object& o, const char* name, size_t length) {
  return exact(get_i32_opt(o, name, 0), name, length, "Int32Array");
}

namespace {

bool overlap(const Region& a, const Region& b) {
  if (a.data == nullptr || b.data == nullptr || a.bytes == 0 || b.bytes == 0) return false;
  const auto pa = reinterpret_cast<uintptr_t>(a.data);
  const auto pb = reinterpret_cast<uintptr_t>(b.data);
  return pa < pb + b.bytes && pb < pa + a.bytes;
}

[[noreturn]] void throw_overlap(const Region& a, const Region& b) {
  throw_range(a.name, std::string("an array whose memory does not overlap ") + b.name, "an overlapping view");
}

}  // namespace

void expect_apart(std::initializer_list<Region> writes, std::initializer_list<Region> reads) {
  for (auto w = writes.begin(); w != writes.end(); ++w) {
    for (const Region& r : reads) {
      if (overlap(*w, r)) throw_overlap(*w, r);
    }
    for (auto v = w + 1; v != writes.end(); ++v) {
      if (overlap(*w, *v)) throw_overlap(*w, *v);
    }
  }
}

void expect_same_or_apart(const Region& write, const Region& read) {
  if (write.data == read.data && write.bytes == read.bytes) return;
  if (overlap(write, read)) throw_overlap(write, read);
}

bool get_bool(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsBoolean()) throw_type(name, "a boolean", v);
  return v.As<Napi::Boolean>().Value();
}

double get_number_in(const Napi::Object& o, const char* name, double lo, double hi, bool open_lo) {
  const double v = get_number(o, name);
  if (v < lo || v > hi || (open_lo && v == lo)) {
    std::ostringstream want, got;
    if (std::isinf(hi)) {
      want << "a number " << (open_lo ? "> " : ">= ") << lo;
    } else {
      want << "a number in " << (open_lo ? "(" : "[") << lo << ", " << hi << "]";
    }
    got << v << " (number)";
    throw_range(name, want.str(), got.str());
  }
  return v;
}

Conv2dArgs read_conv2d_args(const Napi::Object& o) {
  Conv2dArgs a;
  kiln::Conv2dGeometry& g = a.g;
  a.batch = dim(o, "batch", 0);
  g.in_channels = dim(o, "inChannels", 1);
  g.out_channels = dim(o, "outChannels", 1);
  g.groups = dim(o, "groups", 1);
  if (g.in_channels % g.groups != 0 || g.out_channels % g.groups != 0) {
    std::ostringstream want, got;
    want << "a divisor of inChannels (" << g.in_channels << ") and outChannels (" << g.out_channels << ")";
    got << g.groups << " (number)";
    throw_range("groups", want.str(), got.str());
  }
  read_window(o, g);
  a.input = checked_mul(checked_mul(a.batch, g.in_channels, "input"), checked_mul(g.in_height, g.in_width, "input"), "input");
  a.output = checked_mul(checked_mul(a.batch, g.out_channels, "output"), checked_mul(g.out_height, g.out_width, "output"), "output");
  a.weight = checked_mul(checked_mul(g.out_channels, g.in_channels / g.groups, "weight"), checked_mul(g.kernel_h, g.kernel_w, "weight"), "weight");
  // The column matrix of one image must be addressable too (patch x output plane).
  checked_mul(checked_mul(g.patch(), g.out_height, "kernel"), g.out_width, "kernel");
  return a;
}

Pool2dArgs read_pool2d_args(const Napi::Object& o) {
  Pool2dArgs a;
  kiln::Pool2dGeometry& g = a.g;
  a.batch = dim(o, "batch", 0);
  a.channels = dim(o, "channels", 1);
  read_window(o, g);
  g.planes = checked_mul(a.batch, a.channels, "planes");
  const size_t in_plane = checked_mul(g.in_height, g.in_width, "inHeight * inWidth");
  a.input = checked_mul(g.planes, in_plane, "input");
  a.output = checked_mul(g.planes, checked_mul(g.out_height, g.out_width, "output"), "output");
  return a;
}

}  // namespace kiln_addon
