#include "args.h"

#include <sstream>

namespace kiln_addon {

std::string describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsBoolean()) return std::string(v.As<Napi::Boolean>().Value() ? "true" : "false") + " (boolean)";
  if (v.IsNumber()) {
    std::ostringstream s;
    s << v.As<Napi::Number>().DoubleValue() << " (number)";
    return s.str();
  }
  if (v.IsString()) return "\"" + v.As<Napi::String>().Utf8Value() + "\" (string)";
  if (v.IsTypedArray()) {
    static const char* names[] = {"Int8Array",  "Uint8Array",   "Uint8ClampedArray",
                                  "Int16Array", "Uint16Array",  "Int32Array",
                                  "Uint32Array", "Float32Array", "Float64Array",
                                  "BigInt64Array", "BigUint64Array"};
    auto ta = v.As<Napi::TypedArray>();
    const int t = static_cast<int>(ta.TypedArrayType());
    std::ostringstream s;
    s << (t >= 0 && t < 11 ? names[t] : "TypedArray") << "(" << ta.ElementLength() << ")";
    return s.str();
  }
  if (v.IsArray()) return "an array";
  if (v.IsFunction()) return "a function";
  return "an object";
}

void throw_type(const std::string& name, const std::string& expected, const Napi::Value& got) {
  throw ArgError{ArgError::kType, "Expected " + expected + " for " + name + " but received " + describe(got)};
}

void throw_range(const std::string& name, const std::string& expected, const std::string& got) {
  throw ArgError{ArgError::kRange, "Expected " + expected + " for " + name + " but received " + got};
}

Napi::Object get_object(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (info.Length() <= index || !info[index].IsObject()) throw_type(name, "an object", info.Length() > index ? info[index] : info.Env().Undefined());
  return info[index].As<Napi::Object>();
}

namespace {

int64_t int_value(const Napi::Value& v, const char* name, int64_t lo, int64_t hi) {
  if (!v.IsNumber()) throw_type(name, "an integer", v);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d)) throw_type(name, "an integer", v);
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
    std::ostringstream want;
    want << "an integer in [" << lo << ", " << hi << "]";
    throw_range(name, want.str(), describe(v));
  }
  return static_cast<int64_t>(d);
}

}  // namespace

int64_t get_int(const Napi::Object& o, const char* name, int64_t lo, int64_t hi) { return int_value(o.Get(name), name, lo, hi); }

int64_t get_int_arg(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t lo, int64_t hi) {
  return int_value(info.Length() > index ? info[index] : info.Env().Undefined(), name, lo, hi);
}

int64_t get_int_or(const Napi::Object& o, const char* name, int64_t lo, int64_t hi, int64_t dflt) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  return get_int(o, name, lo, hi);
}

double get_number(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throw_type(name, "a finite number", v);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw_range(name, "a finite number", describe(v));
  return d;
}

double get_number_arg(const Napi::CallbackInfo& info, size_t index, const char* name, double lo, double hi) {
  const Napi::Value v = info.Length() > index ? info[index] : info.Env().Undefined();
  if (!v.IsNumber()) throw_type(name, "a number", v);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi)) {
    std::ostringstream expected;
    expected << "a number in [" << lo << ", " << hi << "]";
    throw_range(name, expected.str(), std::to_string(d));
  }
  return d;
}

double get_number_or(const Napi::Object& o, const char* name, double dflt) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  return get_number(o, name);
}

bool get_bool_or(const Napi::Object& o, const char* name, bool dflt) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsBoolean()) throw_type(name, "a boolean", v);
  return v.As<Napi::Boolean>().Value();
}

std::string get_string(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsString()) throw_type(name, "a string", v);
  return v.As<Napi::String>().Utf8Value();
}

namespace {

template <typename T>
View<T> typed(const Napi::Object& o, const char* name, size_t min_length, napi_typedarray_type type,
              const char* type_name, bool optional) {
  Napi::Value v = o.Get(name);
  View<T> view;
  if (optional && (v.IsUndefined() || v.IsNull())) return view;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) throw_type(name, std::string("a ") + type_name, v);
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  if (arr.ElementLength() < min_length) {
    std::ostringstream want;
    want << "a " << type_name << " of at least " << min_length << " elements";
    throw_range(name, want.str(), describe(v));
  }
  view.data = arr.Data();
  view.length = arr.ElementLength();
  view.value = v;
  view.name = name;
  return view;
}

}  // namespace

View<float> get_f32(const Napi::Object& o, const char* name, size_t n) { return typed<float>(o, name, n, napi_float32_array, "Float32Array", false); }
View<float> get_f32_opt(const Napi::Object& o, const char* name, size_t n) { return typed<float>(o, name, n, napi_float32_array, "Float32Array", true); }
View<int32_t> get_i32(const Napi::Object& o, const char* name, size_t n) { return typed<int32_t>(o, name, n, napi_int32_array, "Int32Array", false); }
View<int32_t> get_i32_opt(const Napi::Object& o, const char* name, size_t n) { return typed<int32_t>(o, name, n, napi_int32_array, "Int32Array", true); }
View<uint8_t> get_u8(const Napi::Object& o, const char* name, size_t n) { return typed<uint8_t>(o, name, n, napi_uint8_array, "Uint8Array", false); }
View<int8_t> get_i8(const Napi::Object& o, const char* name, size_t n) { return typed<int8_t>(o, name, n, napi_int8_array, "Int8Array", false); }

size_t checked_mul(size_t a, size_t b, const char* what) {
  if (a != 0 && b > std::numeric_limits<size_t>::max() / a) {
    std::ostringstream got;
    got << a << " * " << b;
    throw_range(what, "a size that fits in memory", got.str());
  }
  return a * b;
}

Napi::Error to_js_error(Napi::Env env, const ArgError& e) {
  Napi::Error err = e.kind == ArgError::kType ? Napi::Error(Napi::TypeError::New(env, e.message))
                                              : Napi::Error(Napi::RangeError::New(env, e.message));
  err.Set("code", Napi::String::New(env, "ERR_KILN_INVALID_ARG"));
  return err;
}

Napi::Error native_error(Napi::Env env, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, "ERR_KILN_NATIVE"));
  return err;
}

}  // namespace kiln_addon
