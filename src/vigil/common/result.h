#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace vigil {

// Error is a stage-specific error code plus a human-readable message. `Code` is the stage's
// own `enum class Errc`, so the same code shows up in logs, API and metrics.
template <typename Code>
struct Error {
  Code code;
  std::string message;
};

// Result<T, Code> holds either a value or an Error<Code>. It is the per-event failure type:
// on the hot path failures are values, never exceptions. Not thread-safe for mutation; const
// access from several threads is fine, as for any value type.
template <typename T, typename Code>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}            // NOLINT(google-explicit-constructor)
  Result(Error<Code> error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() {
    assert(ok() && "Result::value() on an error");
    return std::get<0>(v_);
  }
  const T& value() const {
    assert(ok() && "Result::value() on an error");
    return std::get<0>(v_);
  }
  const Error<Code>& error() const {
    assert(!ok() && "Result::error() on a value");
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error<Code>> v_;
};

}  // namespace vigil
