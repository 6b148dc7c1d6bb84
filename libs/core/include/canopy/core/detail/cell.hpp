#pragma once
// Internal: what a pid or a reply address points at. Not part of the public API; it is in a
// public header only because pid and message are small inline value types.
// Thread-safety: add_ref/release and enqueue may be called from any thread.

#include <atomic>
#include <cstdint>
#include <utility>

namespace canopy::detail {

struct message_node;

enum class enqueue_result : std::uint8_t {
  queued,  // accepted
  closed,  // the receiver is gone; the node was NOT consumed (the caller still owns it)
};

// Something that can receive message nodes: a process (process_cell) or a thread blocked
// in a call or a wait (thread_waiter). Reference counted by pids, reply addresses and
// messages that name it; the process itself holds one reference while it is alive.
class cell_base {
 public:
  cell_base(const cell_base&) = delete;
  cell_base& operator=(const cell_base&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy();
  }
  // Takes ownership of `node` unless the answer is `closed`.
  virtual enqueue_result enqueue(message_node* node) noexcept = 0;

  // A process's unique id (0 for a thread waiter).
  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }

 protected:
  explicit cell_base(std::uint64_t id) noexcept : id_(id) {}
  ~cell_base() = default;
  virtual void destroy() noexcept = 0;

 private:
  std::atomic<std::uint32_t> refs_{1};
  const std::uint64_t id_;
};

// Intrusive reference to a cell_base.
class cell_ref {
 public:
  cell_ref() noexcept = default;
  // Adopts a reference the caller already holds.
  static cell_ref adopt(cell_base* c) noexcept { return cell_ref(c); }
  // Takes a new reference.
  static cell_ref share(cell_base* c) noexcept {
    if (c) c->add_ref();
    return cell_ref(c);
  }
  cell_ref(const cell_ref& o) noexcept : p_(o.p_) {
    if (p_) p_->add_ref();
  }
  cell_ref(cell_ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  cell_ref& operator=(cell_ref o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~cell_ref() {
    if (p_) p_->release();
  }
  [[nodiscard]] cell_base* get() const noexcept { return p_; }
  cell_base* operator->() const noexcept { return p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  friend bool operator==(const cell_ref& a, const cell_ref& b) noexcept { return a.p_ == b.p_; }

 private:
  explicit cell_ref(cell_base* p) noexcept : p_(p) {}
  cell_base* p_ = nullptr;
};

}  // namespace canopy::detail
