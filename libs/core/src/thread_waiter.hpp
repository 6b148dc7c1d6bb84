#pragma once
// A non-process thread waiting for a reply or a down message: the caller side of
// runtime::call and exit_watch. It receives message nodes like a process, but instead of
// being scheduled it wakes the blocked thread.
// Thread-safety: enqueue from any thread; wait_for from the owning thread.

#include <condition_variable>
#include <mutex>
#include <vector>

#include "canopy/core/detail/cell.hpp"
#include "canopy/core/message.hpp"

namespace canopy::detail {

class runtime_core;

class thread_waiter final : public cell_base {
 public:
  thread_waiter() noexcept : cell_base(0) {}
  enqueue_result enqueue(message_node* node) noexcept override;
  // Blocks until a node with ref `a` or `b` arrives; in manual mode runs the scheduler
  // meanwhile. Null only when a manual runtime with a virtual clock went idle without it.
  node_ptr wait_for(runtime_core& rt, std::uint64_t a, std::uint64_t b);
  // Refuses further nodes (late replies are dropped) and frees the unclaimed ones.
  void close() noexcept;

 private:
  void destroy() noexcept override { delete this; }
  node_ptr take(std::uint64_t a, std::uint64_t b);
  ~thread_waiter() { close(); }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<message_node*> inbox_;
  bool closed_ = false;
};

}  // namespace canopy::detail
