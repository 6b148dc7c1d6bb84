#pragma once
// msg::outcome<T>: what an app's client library answers — the typed result of an op, or the
// protocol's error code and message (docs/protocol.md), or a transport failure mapped to
// the same codes (no connection: unavailable; no reply in time: timeout).
// Thread-safety: a value.
//
//   msg::outcome<registry_client::entry> e = reg.lookup("cache");
//   if (e) connect(e->endpoint);
//   else if (e.code() == wire::error_code::not_found) ...
//   else log(e.failure().message);

#include <string>
#include <utility>
#include <variant>

#include "canopy/wire/error_code.hpp"

namespace canopy::msg {

struct failure {
  wire::error_code code = wire::error_code::internal;
  std::string message;
  [[nodiscard]] std::string to_string() const { return std::string(wire::to_string(code)) + ": " + message; }
};

template <class T>
class [[nodiscard]] outcome {
 public:
  outcome(T value) : v_(std::move(value)) {}  // NOLINT: implicit, like result<T>
  outcome(failure f) : v_(std::move(f)) {}    // NOLINT

  [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  T&& operator*() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  [[nodiscard]] const failure& error() const { return std::get<1>(v_); }
  [[nodiscard]] wire::error_code code() const { return std::get<1>(v_).code; }

 private:
  std::variant<T, failure> v_;
};

}  // namespace canopy::msg
