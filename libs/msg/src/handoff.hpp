#pragma once
// Internal: how other threads hand work to an I/O thread that sleeps in zmq_poll — a
// locked queue plus an eventfd polled beside the sockets. The eventfd (a system call) is
// written only while the I/O thread sleeps, and once until it is read: pushes that find it
// written already skip the call. Awake, the thread looks at pending() before it sleeps
// again (seq_cst on both sides: either it sees the item, or the pusher sees it asleep).
// take() swaps vectors, so a steady flow reuses the same two buffers instead of
// allocating per batch, and reads the eventfd only when it was written.

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>
#include <system_error>
#include <utility>
#include <vector>

namespace canopy::msg::detail {

template <class Item>
class handoff {
 public:
  handoff() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  }
  ~handoff() { ::close(fd_); }
  handoff(const handoff&) = delete;
  handoff& operator=(const handoff&) = delete;

  // False (and `item` untouched) once closed.
  bool push(Item&& item) {
    {
      std::lock_guard lk(mu_);
      if (closed_) return false;
      items_.push_back(std::move(item));
      pending_.store(true, std::memory_order_seq_cst);
    }
    if (sleeping_.load(std::memory_order_seq_cst)) wake();
    return true;
  }
  [[nodiscard]] bool pending() const noexcept { return pending_.load(std::memory_order_seq_cst); }
  // The I/O thread, around its poll.
  void set_sleeping(bool s) noexcept { sleeping_.store(s, std::memory_order_seq_cst); }
  // Everything pushed so far, in order. `spare` (emptied here) becomes the next queue, so
  // pass back the vector the previous take() returned. `fd_readable`: the poll saw the
  // eventfd readable (a write that landed after the flag was cleared must be read too, or
  // every later poll would return at once).
  std::vector<Item> take(std::vector<Item> spare = {}, bool fd_readable = false) {
    // Read, then clear: a wake() between the two skips its write, but its item was pushed
    // before it and the swap below comes after.
    if (fd_readable || signalled_.load(std::memory_order_seq_cst)) {
      std::uint64_t count = 0;
      [[maybe_unused]] const auto n = ::read(fd_, &count, sizeof count);
      signalled_.store(false, std::memory_order_seq_cst);
    }
    spare.clear();
    std::lock_guard lk(mu_);
    pending_.store(false, std::memory_order_relaxed);
    std::swap(items_, spare);
    return spare;
  }
  void close() {
    {
      std::lock_guard lk(mu_);
      closed_ = true;
    }
    wake();
  }
  [[nodiscard]] bool closed() const {
    std::lock_guard lk(mu_);
    return closed_;
  }
  [[nodiscard]] int fd() const noexcept { return fd_; }
  // Makes the I/O thread's poll return (as a push would), without an item.
  void interrupt() noexcept { wake(); }

 private:
  void wake() noexcept {
    if (signalled_.exchange(true, std::memory_order_seq_cst)) return;  // written, not read yet
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(fd_, &one, sizeof one);  // only fails if the counter would overflow
  }

  int fd_;
  std::atomic<bool> pending_{false};
  std::atomic<bool> sleeping_{true};
  std::atomic<bool> signalled_{false};  // the eventfd is written (or about to be) and not read yet
  mutable std::mutex mu_;
  bool closed_ = false;
  std::vector<Item> items_;
};

}  // namespace canopy::msg::detail
