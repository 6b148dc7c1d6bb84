#include "thread_waiter.hpp"

#include <algorithm>
#include <chrono>

#include "runtime_core.hpp"

namespace canopy::detail {

enqueue_result thread_waiter::enqueue(message_node* node) noexcept {
  {
    std::lock_guard lk(mu_);
    if (closed_) return enqueue_result::closed;
    inbox_.push_back(node);
  }
  cv_.notify_one();
  return enqueue_result::queued;
}

node_ptr thread_waiter::take(std::uint64_t a, std::uint64_t b) {
  auto it = std::find_if(inbox_.begin(), inbox_.end(), [&](message_node* n) { return n->ref == a || n->ref == b; });
  if (it == inbox_.end()) return nullptr;
  node_ptr out(*it);
  inbox_.erase(it);
  return out;
}

node_ptr thread_waiter::wait_for(runtime_core& rt, std::uint64_t a, std::uint64_t b) {
  if (rt.config.mode == scheduling::threads) {
    std::unique_lock lk(mu_);
    node_ptr found;
    cv_.wait(lk, [&] { return (found = take(a, b)) != nullptr; });
    return found;
  }
  // Manual mode: this thread is the scheduler; run processes until the answer is here.
  for (;;) {
    rt.sched.run_until_idle();
    {
      std::lock_guard lk(mu_);
      if (node_ptr found = take(a, b)) return found;
    }
    if (rt.clock->is_virtual()) return nullptr;  // only the test can move time on now
    rt.sched.wait_for_work(std::chrono::steady_clock::now() + std::chrono::milliseconds(1));
  }
}

void thread_waiter::close() noexcept {
  std::vector<message_node*> dropped;
  {
    std::lock_guard lk(mu_);
    closed_ = true;
    dropped.swap(inbox_);
  }
  for (auto* n : dropped) destroy_node(n);
}

}  // namespace canopy::detail
