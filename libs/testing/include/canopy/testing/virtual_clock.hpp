#pragma once
// virtual_clock: a canopy::clock that moves only when a test advances it. Due timers fire
// on the advancing thread, inside advance(), so a test controls time exactly.
// Thread-safety: now() from any thread; advance() from one thread at a time.
//
//   auto clk = std::make_shared<canopy::testing::virtual_clock>();
//   canopy::runtime rt({.mode = canopy::scheduling::manual, .clock = clk});
//   ... clk->advance(5s); rt.run_until_idle();

#include <atomic>
#include <mutex>
#include <vector>

#include "canopy/core/clock.hpp"

namespace canopy::testing {

class virtual_clock final : public canopy::clock {
 public:
  // Starts at an arbitrary non-zero time, like a real monotonic clock.
  virtual_clock() = default;

  [[nodiscard]] time_point now() const noexcept override;
  [[nodiscard]] bool is_virtual() const noexcept override { return true; }
  void add_observer(observer* o) override;
  void remove_observer(observer* o) override;

  // Moves time forward by `d` (d >= 0) and fires every timer now due.
  void advance(duration d);

 private:
  std::atomic<duration::rep> now_{std::chrono::nanoseconds(std::chrono::hours(1)).count()};
  std::mutex mu_;
  std::vector<observer*> observers_;
};

}  // namespace canopy::testing
