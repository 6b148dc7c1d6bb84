#pragma once
// result<T>: a value or a canopy::error (GCC 12's C++20 mode has no std::expected).
// Thread-safety: a value type.

#include <stdexcept>
#include <type_traits>
#include <utility>
#include <optional>
#include <variant>

#include "canopy/core/error.hpp"

namespace canopy {

// Thrown by result::value() on an error: reading a value that is not there is a bug.
class bad_result_access : public std::logic_error {
 public:
  explicit bad_result_access(const error& e)
      : std::logic_error("result holds an error: " + e.to_string()) {}
};

template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : state_(std::in_place_index<0>, std::move(value)) {}   // NOLINT: implicit
  result(canopy::error err) : state_(std::in_place_index<1>, std::move(err)) {}  // NOLINT: implicit
  result(errc code) : state_(std::in_place_index<1>, canopy::error(code)) {}     // NOLINT: implicit

  [[nodiscard]] bool has_value() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { check(); return std::get<0>(state_); }
  const T& value() const& { check(); return std::get<0>(state_); }
  T&& value() && { check(); return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  template <class U>
  T value_or(U&& fallback) const& {
    return has_value() ? std::get<0>(state_) : static_cast<T>(std::forward<U>(fallback));
  }

  // Precondition: !has_value().
  [[nodiscard]] const canopy::error& error() const& { return std::get<1>(state_); }
  [[nodiscard]] errc code() const { return std::get<1>(state_).code(); }

 private:
  void check() const {
    if (!has_value()) throw bad_result_access(std::get<1>(state_));
  }
  std::variant<T, canopy::error> state_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(canopy::error err) : error_(std::move(err)) {}  // NOLINT: implicit
  result(errc code) : error_(std::in_place, code) {}               // NOLINT: implicit

  [[nodiscard]] bool has_value() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }
  void value() const {
    if (error_) throw bad_result_access(*error_);
  }
  [[nodiscard]] const canopy::error& error() const& { return *error_; }
  [[nodiscard]] errc code() const { return error_->code(); }

 private:
  std::optional<canopy::error> error_;
};

}  // namespace canopy
