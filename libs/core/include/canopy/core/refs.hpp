#pragma once
// monitor_ref and timer_ref: opaque handles returned by monitor() and send_after().
// Thread-safety: values.

#include <cstdint>

namespace canopy {

// Names one monitor; the down_message it produces carries the same ref.
class monitor_ref {
 public:
  monitor_ref() noexcept = default;
  explicit monitor_ref(std::uint64_t value) noexcept : value_(value) {}
  [[nodiscard]] std::uint64_t value() const noexcept { return value_; }
  explicit operator bool() const noexcept { return value_ != 0; }
  friend bool operator==(monitor_ref a, monitor_ref b) noexcept { return a.value_ == b.value_; }

 private:
  std::uint64_t value_ = 0;
};

// Names one pending timer for cancel_timer(). Stale refs are harmless.
class timer_ref {
 public:
  timer_ref() noexcept = default;
  timer_ref(std::uint32_t slot, std::uint32_t generation) noexcept
      : slot_(slot), generation_(generation) {}
  [[nodiscard]] std::uint32_t slot() const noexcept { return slot_; }
  [[nodiscard]] std::uint32_t generation() const noexcept { return generation_; }
  explicit operator bool() const noexcept { return generation_ != 0; }

 private:
  std::uint32_t slot_ = 0;
  std::uint32_t generation_ = 0;  // 0: the null ref
};

}  // namespace canopy
