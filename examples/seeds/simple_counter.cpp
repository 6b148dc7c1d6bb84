// Seed: SimpleCounter — an Agent holding a number.
#include "canopy/otp/agent.hpp"
#include "check.hpp"

int main() {
  canopy::runtime rt;
  auto counter = canopy::agent<int>::start(rt, 0, {.name = "simple_counter"});
  check(counter.has_value(), "SimpleCounter started at 0");
  for (int i = 0; i < 3; ++i) (void)canopy::agent<int>::update(rt, *counter, [](int& n) { ++n; });
  check(canopy::agent<int>::get(rt, *counter, [](const int& n) { return n; }).value_or(-1) == 3, "three increments: 3");
  auto before = canopy::agent<int>::get_and_update(rt, *counter, [](int& n) { int old = n; n = 0; return old; });
  check(before.value_or(-1) == 3 && canopy::agent<int>::get(rt, *counter, [](const int& n) { return n; }).value_or(-1) == 0,
        "get_and_update reset it, answering the old value");
  return 0;
}
