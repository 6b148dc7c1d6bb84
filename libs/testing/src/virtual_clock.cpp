#include "canopy/testing/virtual_clock.hpp"

#include <algorithm>
#include <stdexcept>

namespace canopy::testing {

time_point virtual_clock::now() const noexcept {
  return time_point(duration(now_.load(std::memory_order_acquire)));
}

void virtual_clock::add_observer(observer* o) {
  std::lock_guard lk(mu_);
  observers_.push_back(o);
}

void virtual_clock::remove_observer(observer* o) {
  std::lock_guard lk(mu_);
  observers_.erase(std::remove(observers_.begin(), observers_.end(), o), observers_.end());
}

void virtual_clock::advance(duration d) {
  if (d < duration::zero()) throw std::invalid_argument("virtual_clock::advance: negative duration");
  now_.fetch_add(d.count(), std::memory_order_acq_rel);
  std::vector<observer*> to_tell;
  {
    std::lock_guard lk(mu_);
    to_tell = observers_;
  }
  for (observer* o : to_tell) o->clock_advanced();
}

}  // namespace canopy::testing
