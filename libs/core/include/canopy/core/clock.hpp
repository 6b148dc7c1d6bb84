#pragma once
// clock: the monotonic time source behind timers, call timeouts and restart windows.
// The runtime takes one in its config, so tests inject a virtual clock
// (canopy/testing/virtual_clock.hpp) and advance it instead of sleeping.
// Thread-safety: now() may be called from any thread.

#include <chrono>
#include <memory>

namespace canopy {

using duration = std::chrono::nanoseconds;
using time_point = std::chrono::time_point<std::chrono::steady_clock, duration>;

// "Wait forever", for call timeouts and shutdown (OTP's infinity).
inline constexpr duration infinity = duration::max();
// OTP's default call / await timeout.
inline constexpr duration default_call_timeout = std::chrono::milliseconds(5000);

class clock {
 public:
  // Told when a virtual clock moves, so due timers fire on the advancing thread.
  class observer {
   public:
    virtual void clock_advanced() noexcept = 0;

   protected:
    ~observer() = default;
  };

  virtual ~clock() = default;
  [[nodiscard]] virtual time_point now() const noexcept = 0;
  // false: time moves by itself and the timer service sleeps until the next deadline.
  // true: time moves only when someone advances it, and observers are told.
  [[nodiscard]] virtual bool is_virtual() const noexcept { return false; }
  virtual void add_observer(observer* /*o*/) {}
  virtual void remove_observer(observer* /*o*/) {}
};

// The OS monotonic clock (std::chrono::steady_clock).
std::shared_ptr<clock> steady_clock_source();

// `now + d` without overflow (infinity stays infinite).
[[nodiscard]] inline time_point deadline_after(time_point now, duration d) noexcept {
  return d >= time_point::max() - now ? time_point::max() : now + d;
}

}  // namespace canopy
