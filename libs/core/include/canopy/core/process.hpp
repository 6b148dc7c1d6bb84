#pragma once
// process: the base of every Canopy process — a small object with a mailbox, run by the
// runtime's M:N scheduler. Not an OS thread: a million of them fit in a few hundred MB.
// Thread-safety: a process's callbacks run on one thread at a time; its protected API may
// be used only from inside its own callbacks.
//
// Contract (SEMANTICS.md 38-42 for links, monitors and exit signals):
//   on_start()          runs once, in the process, before any message. Optional.
//   receive(message&)   runs for every message, to completion. Ask the message what it
//                       holds with get<T>(); answer a call() with reply(m.reply_to(), v).
//   destructor          runs when the process exits, for any reason (also after a kill):
//                       it frees resources; it must not send or block.
// A process lives until it calls exit(reason), an exception escapes a callback (a crash:
// reason {error, Type, what}, one crash report is logged), or an exit signal kills it.
// Handlers run to completion; after `batch` messages (runtime_config) the process yields
// so others get their turn. Messages from one sender arrive in the order sent.
//
// Links are bidirectional and one per pair. When a process exits with reason R, each linked
// process gets an exit signal R: a normal R is ignored unless the receiver traps exits;
// any other R kills a receiver that does not trap exits (with R), and is delivered as an
// exit_message to one that does. exit(pid, kill) cannot be trapped: the target dies with
// `killed`. Monitors are one-way: each yields one down_message; monitoring a dead process
// yields down(noproc) at once.
//
// call() parks this process (see async.hpp) until the reply, the callee's death (its exit
// reason, or noproc at once if it is not alive) or the timeout (default 5000 ms); calling
// yourself is refused. A reply that arrives after the caller gave up is dropped.

#include <coroutine>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "canopy/core/async.hpp"
#include "canopy/core/clock.hpp"
#include "canopy/core/detail/call.hpp"
#include "canopy/core/detail/function_ref.hpp"
#include "canopy/core/exit_reason.hpp"
#include "canopy/core/message.hpp"
#include "canopy/core/pid.hpp"
#include "canopy/core/process_name.hpp"
#include "canopy/core/refs.hpp"
#include "canopy/core/result.hpp"

namespace canopy {

class runtime;
class process;

namespace detail {
class process_cell;
class runtime_core;

// How spawn ties the new process to its parent.
enum class spawn_tie : std::uint8_t { none, link, monitor, link_and_monitor };

struct spawn_args {
  std::size_t size;
  std::size_t align;
  function_ref<process*(void*)> construct;
  process_cell* parent = nullptr;  // null when spawned from outside any process
  spawn_tie tie = spawn_tie::none;
  monitor_ref* monitor_out = nullptr;
  std::uint64_t monitor_ref_value = 0;  // use this ref for the monitor (0: a new one)
};
pid spawn_process(runtime_core& rt, const spawn_args& args);

// Synchronous start (proc_lib-style), the base of gen_server::start: registers `name` (if
// not empty; a via name through its name service), runs on_start() on the calling thread before the process is scheduled, lets
// `after_init` inspect the object while it still exists, and only then ties the process
// to its parent. Fails with already_started (name taken), start_failed (on_start exited or
// crashed; the reason attached) or shutting_down.
result<pid> start_process(runtime_core& rt, const spawn_args& args, const process_name& name,
                          function_ref<void(process&)> after_init);
// The process running on this thread, if any (a start_link's parent).
process_cell* current_process() noexcept;
pid pid_of(process_cell* cell) noexcept;
// Whether the process has not exited yet (from any thread; it may exit right after).
bool is_alive(const pid& p) noexcept;
runtime_core& core_of(process_cell* cell) noexcept;
runtime_core& core_of(runtime& rt) noexcept;

std::optional<error> begin_call(process_cell* self, const pid& to, message_node* request,
                                duration timeout);
// Task results (see process_cell::expect): the calling process keeps the reply or down
// for `ref` until it waits for it.
void expect_result(process_cell* self, std::uint64_t ref);
void forget_result(process_cell* self, std::uint64_t ref) noexcept;
bool begin_wait_result(process_cell* self, std::uint64_t ref, duration timeout);
std::uint64_t fresh_ref() noexcept;
// The kept reply or down for `ref`, if it has arrived (never parks).
node_ptr try_take_result(process_cell* self, std::uint64_t ref) noexcept;
unsigned schedulers_of(process_cell* self) noexcept;
unsigned schedulers_of(runtime_core& rt) noexcept;
// The process API, for behaviours in other libraries acting as the running process.
void drop_monitor(process_cell* self, std::uint64_t ref);
void unlink_from(process_cell* self, const pid& other);
void send_exit(process_cell* self, const pid& to, exit_reason reason);
// Monitors `other` under the given ref (and links to it too if `link`).
void watch_with_ref(process_cell* self, const pid& other, std::uint64_t ref, bool link);
void send_to(const pid& to, message_node* node) noexcept;
template <class T>
void send_message(const pid& to, T&& msg) {
  send_to(to, make_node<std::decay_t<T>>(node_kind::user, std::forward<T>(msg)));
}
// The running process's runtime clock.
time_point now_of(process_cell* self) noexcept;

// Parks on the down message of a monitor this process holds; true if it is already here.
bool begin_wait_down(process_cell* self, std::uint64_t ref, duration timeout);
// `waiter` is resumed when the answer comes; `root` is destroyed if the process exits first.
void park_for_reply(process_cell* self, std::coroutine_handle<> waiter, std::coroutine_handle<> root);
call_outcome take_call_outcome(process_cell* self) noexcept;
}  // namespace detail

// Whether exit signals arrive as exit_message (on) or act on the process (off, the default).
enum class trap_exit : std::uint8_t { off, on };

class process {
 public:
  virtual ~process() = default;
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  // The awaitable returned by call(); co_await it from an async coroutine of this process.
  template <class R>
  class [[nodiscard]] call_awaiter {
   public:
    bool await_ready() {
      auto failed = detail::begin_call(self_, to_, request_.release(), timeout_);
      if (failed) {
        outcome_.failure = std::move(failed);
        return true;
      }
      return false;
    }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) {
      detail::park_for_reply(self_, h, h.promise().root_handle());
    }
    result<R> await_resume() {
      if (!outcome_.failure) outcome_ = detail::take_call_outcome(self_);
      return detail::unpack_reply<R>(std::move(outcome_));
    }

    // Internal (process::call and detail::call_as build it).
    call_awaiter(detail::process_cell* self, pid to, detail::node_ptr request, duration timeout)
        : self_(self), to_(std::move(to)), request_(std::move(request)), timeout_(timeout) {}

   private:
    detail::process_cell* self_;
    pid to_;
    detail::node_ptr request_;
    duration timeout_;
    detail::call_outcome outcome_;
  };

 protected:
  process() = default;

  virtual void on_start() {}
  virtual void receive(message& m) = 0;

  [[nodiscard]] pid self() const;
  [[nodiscard]] runtime& system() const;

  // Sends a copy or moved value of `msg` to `to`; a no-op if `to` is dead.
  template <class T>
  void send(const pid& to, T&& msg) {
    send_node(to, detail::make_node<std::decay_t<T>>(detail::node_kind::user, std::forward<T>(msg)));
  }

  // Like send, but the receiver sees m.is_cast() (a gen_server's handle_cast).
  template <class T>
  void cast(const pid& to, T&& msg) {
    send_node(to, detail::make_node<std::decay_t<T>>(detail::node_kind::cast, std::forward<T>(msg)));
  }

  template <class P, class... A>
  pid spawn(A&&... args) {
    return spawn_with<P>(detail::spawn_tie::none, nullptr, std::forward<A>(args)...);
  }
  // Spawns and links atomically: the child is linked before it runs its first instruction.
  template <class P, class... A>
  pid spawn_link(A&&... args) {
    return spawn_with<P>(detail::spawn_tie::link, nullptr, std::forward<A>(args)...);
  }
  // Spawns and monitors atomically; the monitor's ref is stored in `ref`.
  template <class P, class... A>
  pid spawn_monitor(monitor_ref& ref, A&&... args) {
    return spawn_with<P>(detail::spawn_tie::monitor, &ref, std::forward<A>(args)...);
  }

  void link(const pid& other);
  void unlink(const pid& other);
  // The down_message will carry the returned ref.
  monitor_ref monitor(const pid& other);
  // Removes the monitor; a down_message for it that is already queued is dropped too.
  void demonitor(monitor_ref ref);
  void process_flag(trap_exit mode);
  [[nodiscard]] bool traps_exits() const noexcept;

  // This process exits with `reason` once the current callback returns. An abnormal
  // reason (not normal / shutdown) is logged as a crash.
  void exit(exit_reason reason);
  // Sends an exit signal to `to` (exit_reason::kill() cannot be trapped).
  void exit(const pid& to, exit_reason reason);
  // unlink(child), monitor(child) and exit(child, reason) as one signal: how a supervisor
  // stops a child (SEMANTICS 8-10). The down message carries the returned ref.
  monitor_ref monitor_and_exit(const pid& child, exit_reason reason);

  template <class T>
  timer_ref send_after(duration delay, const pid& to, T&& msg) {
    return send_after_node(
        delay, to, detail::make_node<std::decay_t<T>>(detail::node_kind::user, std::forward<T>(msg)));
  }
  // True if the timer was pending and is now cancelled (its message will not arrive).
  bool cancel_timer(timer_ref ref);

  // co_await call<Reply>(server, request[, timeout]) -> result<Reply>.
  template <class R, class Req>
  call_awaiter<R> call(const pid& to, Req&& request, duration timeout = default_call_timeout) {
    return call_awaiter<R>(
        cell_, to,
        detail::node_ptr(detail::make_node<std::decay_t<Req>>(detail::node_kind::call,
                                                               std::forward<Req>(request))),
        timeout);
  }
  // The awaitable returned by await_down().
  class [[nodiscard]] down_awaiter {
   public:
    bool await_ready() { return detail::begin_wait_down(self_, ref_.value(), timeout_); }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) {
      detail::park_for_reply(self_, h, h.promise().root_handle());
    }
    // The monitored process's exit reason, or nothing if the timeout passed first.
    std::optional<exit_reason> await_resume() {
      detail::call_outcome out = detail::take_call_outcome(self_);
      if (!out.reply) return std::nullopt;
      return static_cast<detail::typed_node<down_message>*>(out.reply.get())->value.reason;
    }

   private:
    friend class process;
    down_awaiter(detail::process_cell* self, monitor_ref ref, duration timeout)
        : self_(self), ref_(ref), timeout_(timeout) {}
    detail::process_cell* self_;
    monitor_ref ref_;
    duration timeout_;
  };

  // co_await await_down(ref[, timeout]) -> std::optional<exit_reason>: parks this process
  // (a selective receive, like a call) until the monitor `ref` fires; the down message is
  // consumed, not delivered to receive(). Nothing comes back if the timeout passed first
  // (the monitor stays active).
  down_awaiter await_down(monitor_ref ref, duration timeout = infinity) {
    return down_awaiter(cell_, ref, timeout);
  }

  // Answers a call; `to` may have come from another process's message (deferred reply).
  template <class T>
  void reply(const reply_address& to, T&& value) {
    reply_node(to, detail::make_node<std::decay_t<T>>(detail::node_kind::reply, std::forward<T>(value)));
  }

  // Answers a call with a message built beforehand (a behaviour's reply result).
  void reply_message(const reply_address& to, detail::node_ptr node) { reply_node(to, node.release()); }

  // Registers this process under a local name (SEMANTICS 44 for the error).
  result<void> register_name(std::string name);
  // The process a local or via name stands for (the null pid if none).
  [[nodiscard]] pid resolve(const process_name& name) const;

 private:
  friend class detail::process_cell;

  template <class P, class... A>
  pid spawn_with(detail::spawn_tie tie, monitor_ref* ref, A&&... args) {
    static_assert(std::is_base_of_v<process, P>, "spawn<P>: P must derive from canopy::process");
    auto construct = [&](void* mem) -> process* { return new (mem) P(std::forward<A>(args)...); };
    return detail::spawn_process(core(), {sizeof(P), alignof(P), construct, cell_, tie, ref});
  }
  [[nodiscard]] detail::runtime_core& core() const;
  void send_node(const pid& to, detail::message_node* node);
  timer_ref send_after_node(duration delay, const pid& to, detail::message_node* node);
  void reply_node(const reply_address& to, detail::message_node* node);

  detail::process_cell* cell_ = nullptr;
};

namespace detail {
// process::call for code acting as the running process `self` (behaviours in other libs).
template <class R, class Req>
process::call_awaiter<R> call_as(process_cell* self, const pid& to, Req&& request, duration timeout = default_call_timeout) {
  return process::call_awaiter<R>(
      self, to, node_ptr(make_node<std::decay_t<Req>>(node_kind::call, std::forward<Req>(request))), timeout);
}
}  // namespace detail

}  // namespace canopy
