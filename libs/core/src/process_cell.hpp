#pragma once
// The control block of one process: its mailbox, its links and monitors, and the message
// loop that runs its callbacks. One allocation holds the cell followed by the user's
// process object; the object is destroyed when the process exits, the cell when the last
// pid to it goes away.
//
// Mailbox: a lock-free LIFO stack that senders push with one CAS. Two tag values in the
// head say "idle, not scheduled" (blocked) and "exited" (closed); the push that replaces
// `blocked` schedules the process. The owner takes the whole stack at once and reverses it
// into a private FIFO, which preserves each sender's order.
// Thread-safety: enqueue() from any thread; everything else only on the thread running it.

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "canopy/core/detail/call.hpp"
#include "canopy/core/detail/cell.hpp"
#include "canopy/core/detail/exit_hook.hpp"
#include "canopy/core/detail/function_ref.hpp"
#include "canopy/core/detail/node_pool.hpp"
#include "canopy/core/exit_reason.hpp"
#include "canopy/core/message.hpp"
#include "canopy/core/pid.hpp"
#include "canopy/core/process.hpp"
#include "canopy/core/refs.hpp"
#include "small_map.hpp"

namespace canopy::detail {

class runtime_core;

enum class run_result : std::uint8_t {
  blocked,  // idle; the next message reschedules it
  again,    // has more to do (batch used up); requeue it
  exited,   // gone; the scheduler drops its reference
};

// State of a process that waits for a call's reply, a task or a down message; allocated on
// its first wait (from the node pool) and kept.
struct park_state : pool_allocated {
  std::uint64_t await_ref = 0;  // what we are parked on; 0: not parked
  cell_ref await_callee;
  std::coroutine_handle<> await_handle;  // resumed with the answer
  std::coroutine_handle<> await_root;    // destroyed if the process exits while parked
  timer_ref await_timer;
  call_outcome await_outcome;
  // Messages set aside while parked, handled first once the reply came.
  message_node* stash_head = nullptr;
  message_node* stash_tail = nullptr;
};

// Rarely needed state, allocated on first use so an idle process stays small. Every linked
// or monitored process has one (a supervised child, a task), so it holds only the tables;
// waiting lives in park_state.
struct process_ext : pool_allocated {
  process_ext() = default;
  process_ext(const process_ext&) = delete;
  process_ext& operator=(const process_ext&) = delete;
  ~process_ext() { delete park; }
  struct watcher {
    cell_ref target;     // who is told (a process or a blocked thread)
    bool for_call;       // a caller waiting for our reply (down flagged call_monitor)
  };
  small_map<const cell_base*, cell_ref> links;
  small_map<std::uint64_t, watcher> watchers;  // by ref: monitors on us, calls we owe a reply
  small_map<std::uint64_t, cell_ref> monitors;  // by ref: monitors we hold, and on whom
  small_map<std::uint64_t, node_ptr> expected;  // task results by ref: reply or down, once here
  exit_reason pending_exit = exit_reason::normal();
  park_state* park = nullptr;
  std::unique_ptr<exit_hook> hooks;  // a chain through exit_hook::next_
};

class process_cell final : public cell_base {
 public:
  process_cell(runtime_core& rt, std::uint64_t id, std::size_t alignment, std::size_t pooled_bytes) noexcept;

  enqueue_result enqueue(message_node* node) noexcept override;
  // Runs up to `budget` messages (and on_start() first, once).
  run_result run(unsigned budget) noexcept;

  // Called once, before the first run (spawn).
  void attach(process* behaviour) noexcept;
  // Runs on_start() on the calling thread (a synchronous start), then `after_init`. If the
  // process exited meanwhile it is terminated here and its exit reason returned; the
  // caller then drops the process's own reference.
  std::optional<exit_reason> init_inline(function_ref<void(process&)> after_init) noexcept;
  // Exits a process that never ran (its init is not called; its destructor is); the
  // caller then drops the process's own reference.
  void discard() noexcept;
  // After an inline init: blocks the mailbox, or schedules the process if it has mail.
  void enter_scheduling() noexcept;
  // Spawn-time ties, set before the process runs (no other thread sees it yet).
  void add_link_unsafe(cell_ref other);
  void add_watcher_unsafe(cell_ref target, std::uint64_t ref);
  void add_held_monitor(std::uint64_t ref, cell_ref target);

  [[nodiscard]] runtime_core& rt() const noexcept { return rt_; }
  [[nodiscard]] bool is_alive() const noexcept;
  [[nodiscard]] pid self_pid() noexcept { return pid(cell_ref::share(this)); }
  [[nodiscard]] bool traps_exits() const noexcept { return (flags_ & flag_trap) != 0; }
  void set_trap_exit(bool on) noexcept { flags_ = on ? (flags_ | flag_trap) : (flags_ & ~flag_trap); }

  // The API a running process uses through canopy::process.
  void link(const pid& other);
  void unlink(const pid& other);
  monitor_ref monitor(const pid& other);
  void monitor_with_ref(const pid& other, std::uint64_t ref);
  void demonitor(monitor_ref ref);
  void request_exit(exit_reason reason);
  void send_signal_exit(const pid& to, exit_reason reason);
  monitor_ref stop_and_monitor(const pid& child, exit_reason reason);
  void add_exit_hook(std::unique_ptr<exit_hook> hook);
  exit_hook* find_exit_hook(const void* tag) noexcept;
  void reply(const reply_address& to, message_node* node) noexcept;
  std::optional<error> begin_call(const pid& to, message_node* request, duration timeout);
  bool begin_wait_down(std::uint64_t ref, duration timeout);
  // Task results: a reply or down for `ref` is kept (not dropped, not delivered) until taken.
  void expect(std::uint64_t ref);
  void forget_expected(std::uint64_t ref) noexcept;
  node_ptr take_expected(std::uint64_t ref) noexcept;
  bool begin_wait_expected(std::uint64_t ref, duration timeout);
  void park(std::coroutine_handle<> h, std::coroutine_handle<> root) noexcept;
  call_outcome take_outcome() noexcept;
  void set_pending_exception(std::exception_ptr e) noexcept { pending_exception_ = std::move(e); }

  // The process running on this thread, if any.
  static process_cell* current() noexcept;

  // Intrusive links of the runtime's process table.
  process_cell* table_prev = nullptr;
  process_cell* table_next = nullptr;
  // Intrusive link of the scheduler's injection stack (work from outside the workers).
  process_cell* inject_next = nullptr;

 private:
  static constexpr std::uint8_t flag_started = 1;
  static constexpr std::uint8_t flag_trap = 2;
  static constexpr std::uint8_t flag_exiting = 4;
  static constexpr std::uint8_t flag_crash_report = 8;

  void destroy() noexcept override;
  process_ext& ext();
  [[nodiscard]] park_state* park_if_any() const noexcept { return ext_ ? ext_->park : nullptr; }
  [[nodiscard]] bool parked() const noexcept {
    const park_state* p = park_if_any();
    return p != nullptr && p->await_ref != 0;
  }
  // Messages stashed while parked are due once the wait is over.
  [[nodiscard]] bool stash_due() const noexcept {
    const park_state* p = park_if_any();
    return p != nullptr && p->stash_head != nullptr && p->await_ref == 0;
  }

  message_node* next_message() noexcept;
  void stash(message_node* node) noexcept;
  void dispatch(message_node* node) noexcept;
  void accept(message_node* node) noexcept;
  void deliver(message_node* node) noexcept;
  void handle_exit_signal(message_node* node) noexcept;
  void complete_call(call_outcome outcome) noexcept;
  void resume(std::coroutine_handle<> h) noexcept;
  template <class F>
  void guarded(F&& fn) noexcept;
  void crash(exit_reason reason) noexcept;
  void post(const cell_ref& to, message_node* node) noexcept;
  void post_self(message_node* node) noexcept;
  void exit_now(exit_reason reason) noexcept;
  void terminate(const exit_reason& reason) noexcept;
  void bounce(message_node* node, const exit_reason& reason) noexcept;
  void remove_watcher(std::uint64_t ref) noexcept;
  bool forget_held_monitor(std::uint64_t ref) noexcept;
  bool keep_expected(message_node* n) noexcept;
  park_state& ready_to_wait();
  void wait_for(std::uint64_t ref, duration timeout);
  void remove_link(const cell_base* other) noexcept;
  [[nodiscard]] bool has_link(const cell_base* other) const noexcept;

  runtime_core& rt_;
  process* behaviour_ = nullptr;
  std::atomic<message_node*> head_{nullptr};
  message_node* fifo_head_ = nullptr;
  process_ext* ext_ = nullptr;
  std::exception_ptr pending_exception_;
  std::uint64_t unreplied_call_ = 0;  // ref of the call being handled, until replied
  const std::type_info* last_message_ = nullptr;  // for the crash report
  std::uint16_t alignment_;
  std::uint16_t pooled_bytes_;  // the pool chunk holding this cell and its process; 0: operator new
  std::uint8_t flags_ = 0;
  std::atomic<bool> named_{false};

  friend class runtime_core;
};

}  // namespace canopy::detail
