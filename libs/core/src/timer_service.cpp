#include "timer_service.hpp"

#include <utility>

namespace canopy::detail {

timer_service::timer_service(std::shared_ptr<clock> clk) : clock_(std::move(clk)) {
  if (clock_->is_virtual()) {
    clock_->add_observer(this);
  } else {
    thread_ = std::thread([this] { thread_main(); });
  }
}

timer_service::~timer_service() { stop(); }

void timer_service::stop() noexcept {
  std::vector<message_node*> dropped;
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto slot : heap_) {
      dropped.push_back(std::exchange(slots_[slot].msg, nullptr));
      slots_[slot].target = cell_ref();
    }
    heap_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (clock_->is_virtual()) clock_->remove_observer(this);
  for (auto* m : dropped) destroy_node(m);
}

std::size_t timer_service::pending() const {
  std::lock_guard lk(mu_);
  return heap_.size();
}

timer_ref timer_service::start(time_point deadline, cell_ref target, message_node* msg) {
  std::unique_lock lk(mu_);
  if (stopping_) {
    lk.unlock();
    destroy_node(msg);
    return {};
  }
  std::uint32_t slot;
  if (free_head_ != UINT32_MAX) {
    slot = free_head_;
    free_head_ = slots_[slot].next_free;
  } else {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  entry& e = slots_[slot];
  e.deadline = deadline;
  e.target = std::move(target);
  e.msg = msg;
  e.heap_index = static_cast<std::uint32_t>(heap_.size());
  heap_.push_back(slot);
  sift_up(e.heap_index);
  timer_ref ref(slot, e.generation);
  const bool wake = !clock_->is_virtual() && deadline < sleeping_until_;
  lk.unlock();
  if (wake) cv_.notify_one();
  return ref;
}

bool timer_service::cancel(timer_ref ref) noexcept {
  if (!ref) return false;
  message_node* msg = nullptr;
  cell_ref target;
  {
    std::lock_guard lk(mu_);
    if (ref.slot() >= slots_.size()) return false;
    entry& e = slots_[ref.slot()];
    if (e.generation != ref.generation() || e.msg == nullptr) return false;
    msg = std::exchange(e.msg, nullptr);
    target = std::move(e.target);
    remove_at(e.heap_index);
    free_slot(ref.slot());
  }
  destroy_node(msg);
  return true;
}

void timer_service::free_slot(std::uint32_t slot) noexcept {
  entry& e = slots_[slot];
  ++e.generation;
  if (e.generation == 0) e.generation = 1;  // 0 is the null ref
  e.next_free = free_head_;
  free_head_ = slot;
}

void timer_service::heap_swap(std::uint32_t a, std::uint32_t b) noexcept {
  std::swap(heap_[a], heap_[b]);
  slots_[heap_[a]].heap_index = a;
  slots_[heap_[b]].heap_index = b;
}

void timer_service::sift_up(std::uint32_t i) noexcept {
  while (i > 0) {
    std::uint32_t parent = (i - 1) / 2;
    if (slots_[heap_[parent]].deadline <= slots_[heap_[i]].deadline) break;
    heap_swap(i, parent);
    i = parent;
  }
}

void timer_service::sift_down(std::uint32_t i) noexcept {
  const auto n = static_cast<std::uint32_t>(heap_.size());
  for (;;) {
    std::uint32_t smallest = i;
    std::uint32_t l = 2 * i + 1;
    std::uint32_t r = l + 1;
    if (l < n && slots_[heap_[l]].deadline < slots_[heap_[smallest]].deadline) smallest = l;
    if (r < n && slots_[heap_[r]].deadline < slots_[heap_[smallest]].deadline) smallest = r;
    if (smallest == i) return;
    heap_swap(i, smallest);
    i = smallest;
  }
}

void timer_service::remove_at(std::uint32_t pos) noexcept {
  const auto last = static_cast<std::uint32_t>(heap_.size() - 1);
  if (pos != last) {
    heap_swap(pos, last);
    heap_.pop_back();
    sift_down(pos);
    sift_up(pos);
  } else {
    heap_.pop_back();
  }
}

void timer_service::collect_due(time_point now,
                                std::vector<std::pair<cell_ref, message_node*>>& due) {
  while (!heap_.empty() && slots_[heap_.front()].deadline <= now) {
    std::uint32_t slot = heap_.front();
    entry& e = slots_[slot];
    due.emplace_back(std::move(e.target), std::exchange(e.msg, nullptr));
    remove_at(0);
    free_slot(slot);
  }
}

void timer_service::deliver(std::vector<std::pair<cell_ref, message_node*>>& due) noexcept {
  for (auto& [target, msg] : due) {
    if (target->enqueue(msg) == enqueue_result::closed) destroy_node(msg);
  }
  due.clear();
}

void timer_service::clock_advanced() noexcept {
  std::vector<std::pair<cell_ref, message_node*>> due;
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    collect_due(clock_->now(), due);
  }
  deliver(due);
}

void timer_service::thread_main() {
  std::vector<std::pair<cell_ref, message_node*>> due;
  std::unique_lock lk(mu_);
  while (!stopping_) {
    if (heap_.empty()) {
      sleeping_until_ = time_point::max();
      cv_.wait(lk);
      sleeping_until_ = time_point::min();
      continue;
    }
    const time_point next = slots_[heap_.front()].deadline;
    const time_point now = clock_->now();
    if (next <= now) {
      collect_due(now, due);
      lk.unlock();
      deliver(due);
      lk.lock();
      continue;
    }
    sleeping_until_ = next;
    if (next == time_point::max()) {
      cv_.wait(lk);
    } else {
      cv_.wait_until(lk, std::chrono::steady_clock::time_point(next.time_since_epoch()));
    }
    sleeping_until_ = time_point::min();
  }
}

}  // namespace canopy::detail
