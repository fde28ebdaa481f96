// Argument reading for the addon. JS validates first (src/validate.ts); these checks are the
// second line: they refuse anything that would read or write outside a buffer, and name the
// argument and the value received, like the TS messages.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace kiln_addon {

// Thrown from argument readers; turned into a JS TypeError/RangeError with a `code`.
struct ArgError {
  enum Kind { kType, kRange } kind;
  std::string message;
};

std::string describe(const Napi::Value& v);

[[noreturn]] void throw_type(const std::string& name, const std::string& expected,
                             const Napi::Value& got);
[[noreturn]] void throw_range(const std::string& name, const std::string& expected,
                              const std::string& got);

Napi::Object get_object(const Napi::CallbackInfo& info, size_t index, const char* name);

// Integer in [lo, hi]; rejects non-numbers, NaN, fractions.
int64_t get_int(const Napi::Object& o, const char* name, int64_t lo, int64_t hi);
int64_t get_int_or(const Napi::Object& o, const char* name, int64_t lo, int64_t hi, int64_t dflt);
double get_number(const Napi::Object& o, const char* name);  // finite
// The positional argument `index`, an integer in [lo, hi], checked and named as get_int does.
int64_t get_int_arg(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t lo, int64_t hi);
// The positional argument `index`, a number in [lo, hi]; rejects non-numbers and NaN.
double get_number_arg(const Napi::CallbackInfo& info, size_t index, const char* name, double lo, double hi);
double get_number_or(const Napi::Object& o, const char* name, double dflt);
bool get_bool_or(const Napi::Object& o, const char* name, bool dflt);
std::string get_string(const Napi::Object& o, const char* name);

// A view on a typed array's elements; `min_length` elements must be present.
template <typename T>
struct View {
  T* data = nullptr;
  size_t length = 0;
  Napi::Value value;      // the typed array (empty when an optional one is absent)
  const char* name = "";  // the argument's name, for messages
};

View<float> get_f32(const Napi::Object& o, const char* name, size_t min_length);
View<float> get_f32_opt(const Napi::Object& o, const char* name, size_t min_length);  // null/undefined ok
View<int32_t> get_i32(const Napi::Object& o, const char* name, size_t min_length);
View<int32_t> get_i32_opt(const Napi::Object& o, const char* name, size_t min_length);
View<uint8_t> get_u8(const Napi::Object& o, const char* name, size_t min_length);
View<int8_t> get_i8(const Napi::Object& o, const char* name, size_t min_length);

// a * b with an overflow check (throws RangeError naming `what`).
size_t checked_mul(size_t a, size_t b, const char* what);

// Converts ArgError and std::exception into JS exceptions with stable codes.
// Use as: KILN_ADDON_TRY(env) { ... } KILN_ADDON_CATCH(env)
Napi::Error to_js_error(Napi::Env env, const ArgError& e);
Napi::Error native_error(Napi::Env env, const std::string& message);

}  // namespace kiln_addon

#define KILN_ADDON_TRY try
#define KILN_ADDON_CATCH(env)                                                     \
  catch (const ::kiln_addon::ArgError& e) {                                       \
    ::kiln_addon::to_js_error(env, e).ThrowAsJavaScriptException();               \
    return env.Undefined();                                                       \
  }                                                                               \
  catch (const Napi::Error& e) {                                                  \
    throw;                                                                        \
  }                                                                               \
  catch (const std::exception& e) {                                               \
    ::kiln_addon::native_error(env, e.what()).ThrowAsJavaScriptException();       \
    return env.Undefined();                                                       \
  }
