#pragma once
// earliest_timer: one timer a server keeps armed at its earliest deadline (lease expiry,
// cache TTLs): arming for a later deadline than the one armed does nothing; an earlier one
// replaces it. Thread-safety: the owning process only.
//
//   timer_.arm(system(), self(), now(), book_.next_expiry(), expire_tick{});
//   // in handle_info(expire_tick): timer_.fired(); ...; arm again

#include <optional>

#include "canopy/core/clock.hpp"
#include "canopy/core/pid.hpp"
#include "canopy/core/refs.hpp"
#include "canopy/core/runtime.hpp"

namespace canopy::app {

class earliest_timer {
 public:
  // Sends `tick` to `self` at `next` (at once if it is past), unless armed no later already.
  template <class Tick>
  void arm(runtime& rt, const pid& self, time_point now, std::optional<time_point> next, Tick tick) {
    if (!next || (armed_at_ && *armed_at_ <= *next)) return;
    if (armed_at_) rt.cancel_timer(timer_);
    armed_at_ = *next;
    timer_ = rt.send_after(*next > now ? *next - now : duration::zero(), self, std::move(tick));
  }
  // The tick arrived: nothing is armed now.
  void fired() noexcept { armed_at_.reset(); }

 private:
  timer_ref timer_;
  std::optional<time_point> armed_at_;
};

}  // namespace canopy::app
