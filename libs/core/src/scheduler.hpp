#pragma once
// The M:N scheduler: N worker threads, each with a local run queue and a `runnext` slot,
// a global queue for work coming from outside, work stealing, and parking when idle.
// Thread-safety: schedule() from any thread; the rest is internal to the workers.
//
// Why these choices (measured in tools/bench core):
// - runnext: a process woken by the one running now runs next on the same thread, so a
//   call round trip stays on one core with hot caches (Go and Tokio do the same). It is
//   stealable only when it sat there across two looks of an idle thief.
// - Idle workers park on a condition variable after a short spin: an idle runtime burns
//   no CPU (CAF's most reported complaint is the opposite).
// - A worker is woken only when work piles up in a local or global queue, never for a
//   runnext hand-off, so ping-pong pairs do not pay a futex wake per message.
// - Work from other threads goes through a lock-free stack taken whole by one worker and
//   spread by stealing; outside threads wake a worker only if all are asleep.
// - Local queues are mutex-protected deques: uncontended locks cost ~20 ns and only thieves
//   contend; a lock-free deque can replace them if a benchmark ever shows the need.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "canopy/core/runtime.hpp"

namespace canopy::detail {

class process_cell;
class runtime_core;

class scheduler {
 public:
  scheduler(runtime_core& rt, scheduling mode, unsigned threads, unsigned batch);
  ~scheduler();
  scheduler(const scheduler&) = delete;
  scheduler& operator=(const scheduler&) = delete;

  void start();
  // Makes `cell` runnable. The cell must not be queued or running already.
  void schedule(process_cell* cell) noexcept;
  // Manual mode: runs until no process is runnable.
  std::size_t run_until_idle();
  // Waits (manual mode) until some work was scheduled or `until` passed.
  void wait_for_work(std::chrono::steady_clock::time_point until);
  // Joins the workers. Processes still queued are left to the caller.
  void stop() noexcept;

  [[nodiscard]] unsigned threads() const noexcept { return static_cast<unsigned>(workers_.size()); }
  // runtime::set_idle_poller.
  bool set_poller(idle_poller* poller);
  // True on a worker thread of any runtime (where blocking would stall processes).
  static bool on_worker_thread() noexcept;

  struct worker;

 private:
  void worker_main(worker& w);
  process_cell* find_work(worker& w);
  process_cell* pop_global(worker* w);
  process_cell* steal(worker& w);
  bool work_visible() const noexcept;
  void push_local(worker& w, process_cell* cell);
  void publish_pending(worker& w);
  // True if the stack was empty (the push made work visible).
  bool push_global(process_cell* cell) noexcept;
  // Takes everything injected so far, oldest first.
  process_cell* take_injected() noexcept;
  void maybe_wake() noexcept;
  void wake_one() noexcept;
  void park(worker& w);
  // park's wait through the idle poller; false if there is none or another thread has it.
  bool poll_while_idle(worker& w);
  // Off the idle list after a look found work; if a waker took us off already, waits for
  // its notify (it counted us as searching).
  void leave_idle(worker& w);
  // A non-blocking poll if no other thread polls: before spinning (idle: replies the last
  // run queued go out now), and between runs every poll_check_interval.
  void poll_ready(worker& w, bool idle);
  void run_cell(worker* w, process_cell* cell);

  runtime_core& rt_;
  scheduling mode_;
  unsigned batch_;
  std::vector<std::unique_ptr<worker>> workers_;

  // Work from outside the workers: a lock-free stack that pushers CAS onto and a worker
  // takes whole with one exchange, so a thread spawning many processes never takes a lock.
  // Each hot shared word on its own cache line: every schedule() reads sleeping_ and
  // searching_, every outside push writes injected_; sharing lines made them ping-pong.
  alignas(64) std::atomic<process_cell*> injected_{nullptr};
  std::mutex manual_mu_;
  std::condition_variable manual_cv_;  // manual mode: work arrived
  std::deque<process_cell*> manual_queue_;  // manual mode: taken from injected_, in order

  alignas(64) std::mutex idle_mu_;
  std::vector<worker*> idle_;
  alignas(64) std::atomic<unsigned> sleeping_{0};
  alignas(64) std::atomic<unsigned> searching_{0};
  alignas(64) std::atomic<bool> stopping_{false};
  // The idle poller and whether a worker is inside it (the role: one at a time).
  alignas(64) std::atomic<idle_poller*> poller_{nullptr};
  std::atomic<bool> polling_{false};
};

}  // namespace canopy::detail
