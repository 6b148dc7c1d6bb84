#pragma once
// wait_until: poll a condition until it holds or a deadline passes — the only way tests
// here wait for something another thread does. Never a bare sleep.
// Thread-safety: call from any thread.

#include <chrono>
#include <thread>

namespace canopy::testing {

// A generous default: a loaded 2-core CI machine can be very slow, and a passing test
// never waits this long.
inline constexpr std::chrono::seconds default_deadline{20};

// True once `condition()` holds; false if `deadline` passed first.
template <class F>
bool wait_until(F&& condition, std::chrono::milliseconds deadline = default_deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  auto pause = std::chrono::microseconds(50);
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= until) return condition();
    std::this_thread::sleep_for(pause);  // a poll interval, not a synchronisation
    if (pause < std::chrono::milliseconds(5)) pause *= 2;
  }
}

}  // namespace canopy::testing
