#pragma once
// Timers: a binary heap of deadlines under one mutex. With the OS clock a thread sleeps
// until the earliest deadline (and not at all while there is none); with a virtual clock
// there is no thread and due timers fire on the thread that advances the clock.
// Thread-safety: all members may be called from any thread.
//
// Why a heap and not a timing wheel: the common timer is a call timeout that is cancelled
// almost at once, so few are pending; a heap with an index per entry cancels in O(log n)
// and keeps an exact deadline for the sleeping thread.

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "canopy/core/clock.hpp"
#include "canopy/core/message.hpp"
#include "canopy/core/refs.hpp"

namespace canopy::detail {

class timer_service final : private clock::observer {
 public:
  explicit timer_service(std::shared_ptr<clock> clk);
  ~timer_service();
  timer_service(const timer_service&) = delete;
  timer_service& operator=(const timer_service&) = delete;

  // Delivers `msg` to `target` at `deadline`. Takes ownership of msg.
  timer_ref start(time_point deadline, cell_ref target, message_node* msg);
  // True if the timer was pending (its message is destroyed, never delivered).
  bool cancel(timer_ref ref) noexcept;
  // Stops the thread and destroys every pending timer's message. Idempotent.
  void stop() noexcept;
  [[nodiscard]] std::size_t pending() const;

 private:
  struct entry {
    time_point deadline{};
    cell_ref target;
    message_node* msg = nullptr;
    std::uint32_t heap_index = 0;
    std::uint32_t generation = 1;
    std::uint32_t next_free = 0;
  };
  void clock_advanced() noexcept override;
  void thread_main();
  // Pops every due entry into `due` (under mu_).
  void collect_due(time_point now, std::vector<std::pair<cell_ref, message_node*>>& due);
  static void deliver(std::vector<std::pair<cell_ref, message_node*>>& due) noexcept;
  void heap_swap(std::uint32_t a, std::uint32_t b) noexcept;
  void sift_up(std::uint32_t i) noexcept;
  void sift_down(std::uint32_t i) noexcept;
  void remove_at(std::uint32_t heap_pos) noexcept;
  void free_slot(std::uint32_t slot) noexcept;

  std::shared_ptr<clock> clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<entry> slots_;
  std::vector<std::uint32_t> heap_;  // slot indices, min-heap on deadline
  std::uint32_t free_head_ = UINT32_MAX;
  time_point sleeping_until_ = time_point::min();
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace canopy::detail
