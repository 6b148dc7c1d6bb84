#pragma once
// runtime: owns the schedulers, timers, the process table, local names and the logger.
// There is no global state: everything hangs off a runtime, and several may coexist.
// Thread-safety: every public member may be called from any thread, except
// run_until_idle() (manual mode; one thread at a time) and the destructor.
//
//   canopy::runtime rt;                         // one scheduler thread per core
//   canopy::pid p = rt.spawn<counter>(0);
//   rt.send(p, increment{});
//   auto n = rt.call<int>(p, get{});            // blocks this (non-process) thread
//
// Shutdown (the destructor, or shutdown()) sends every live process exit(shutdown), waits
// up to shutdown_timeout for them to exit, kills the rest, then joins all threads.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "canopy/core/clock.hpp"
#include "canopy/core/detail/call.hpp"
#include "canopy/core/exit_reason.hpp"
#include "canopy/core/message.hpp"
#include "canopy/core/pid.hpp"
#include "canopy/core/process.hpp"
#include "canopy/core/process_name.hpp"
#include "canopy/core/refs.hpp"
#include "canopy/core/result.hpp"

namespace spdlog {
class logger;
}

namespace canopy {

// threads: scheduler threads run processes. manual: no threads; the owner calls
// run_until_idle() — deterministic tests use this with a virtual clock.
enum class scheduling : std::uint8_t { threads, manual };

struct runtime_config {
  scheduling mode = scheduling::threads;
  unsigned threads = 0;  // scheduler threads; 0 means one per core
  unsigned batch = 64;   // messages a process handles before it yields (fairness)
  std::shared_ptr<canopy::clock> clock;     // default: steady_clock_source()
  std::shared_ptr<spdlog::logger> logger;   // default: "canopy" on stderr (not registered)
  // A process run longer than this logs a warning (a handler is blocking its thread).
  std::chrono::milliseconds stall_warning{100};
  // How long shutdown waits for processes to exit after exit(shutdown) before killing.
  std::chrono::milliseconds shutdown_timeout{5000};
};

// An I/O source a scheduler thread with nothing to run waits on instead of sleeping
// (msg::server's sockets), so requests are served on the thread that then runs the
// process they are for, with no hand-off between threads (docs/messaging.md).
// Thread-safety: poll() on one scheduler thread at a time; interrupt() from any thread.
class idle_poller {
 public:
  // busy: could not poll now (another thread holds the source for a moment); a scheduler
  // thread about to wait in it tries again. served: polled.
  enum class outcome : std::uint8_t { busy, served };

  virtual ~idle_poller() = default;
  // On a scheduler thread about to idle, or between runs of a busy one (a few in a
  // hundred runs). block = false: serve a bounded batch of what is ready and return.
  // block = true: also wait for I/O until interrupt() (it may return earlier). Processes
  // sent messages from inside run on this thread next.
  virtual outcome poll(bool block) noexcept = 0;
  // The poll(true) under way, or the next one, returns at once.
  virtual void interrupt() noexcept = 0;
};

// Waits, from a non-process thread, for one process to exit (a monitor owned by a thread).
// It must not outlive the runtime that made it.
class exit_watch {
 public:
  exit_watch() = default;
  // The exit reason (noproc if the process was already dead when watched), or
  // errc::timeout.
  result<exit_reason> wait(duration timeout = default_call_timeout);

 private:
  friend class runtime;
  exit_watch(detail::runtime_core* rt, detail::cell_ref waiter, std::uint64_t ref)
      : rt_(rt), waiter_(std::move(waiter)), ref_(ref) {}
  detail::runtime_core* rt_ = nullptr;
  detail::cell_ref waiter_;
  std::uint64_t ref_ = 0;
  std::optional<exit_reason> reason_;
};

class runtime {
 public:
  explicit runtime(runtime_config config = {});
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  template <class P, class... A>
  pid spawn(A&&... args) {
    static_assert(std::is_base_of_v<process, P>, "spawn<P>: P must derive from canopy::process");
    auto construct = [&](void* mem) -> process* { return new (mem) P(std::forward<A>(args)...); };
    return detail::spawn_process(*core_, {sizeof(P), alignof(P), construct});
  }

  // A no-op if `to` is dead.
  template <class T>
  void send(const pid& to, T&& msg) {
    send_node(to, detail::make_node<std::decay_t<T>>(detail::node_kind::user, std::forward<T>(msg)));
  }
  // Like send, but the receiver sees m.is_cast() (a gen_server's handle_cast).
  template <class T>
  void cast(const pid& to, T&& msg) {
    send_node(to, detail::make_node<std::decay_t<T>>(detail::node_kind::cast, std::forward<T>(msg)));
  }
  // errc::not_registered if no process holds `name`.
  template <class T>
  result<void> send(std::string_view name, T&& msg) {
    pid to = whereis(name);
    if (!to) return error(errc::not_registered, std::string(name));
    send(to, std::forward<T>(msg));
    return {};
  }

  // Blocks this thread until the reply. Refused (std::logic_error) on a scheduler thread:
  // inside a process, co_await process::call instead.
  template <class R, class Req>
  result<R> call(const pid& to, Req&& request, duration timeout = default_call_timeout) {
    return detail::unpack_reply<R>(call_node(
        to, detail::make_node<std::decay_t<Req>>(detail::node_kind::call, std::forward<Req>(request)),
        timeout));
  }

  // Answers a call from outside any process: a thread that was handed the reply_address
  // (an I/O thread answering for a gateway process). A no-op if the caller is gone.
  template <class T>
  void reply(const reply_address& to, T&& value) {
    reply_node(to, detail::make_node<std::decay_t<T>>(detail::node_kind::reply, std::forward<T>(value)));
  }

  // Sends an exit signal from outside any process (exit_message::from is null).
  void exit(const pid& to, exit_reason reason);
  // Starts watching `p`; wait() on the result for its exit reason.
  exit_watch watch(const pid& p);

  result<void> register_name(std::string name, const pid& p);
  // False if the name was not registered.
  bool unregister_name(std::string_view name);
  // The null pid if no live process holds `name`.
  [[nodiscard]] pid whereis(std::string_view name) const;
  // The process a local or via name stands for (the null pid if none).
  [[nodiscard]] pid resolve(const process_name& name) const;

  template <class T>
  timer_ref send_after(duration delay, const pid& to, T&& msg) {
    return send_after_node(
        delay, to, detail::make_node<std::decay_t<T>>(detail::node_kind::user, std::forward<T>(msg)));
  }
  bool cancel_timer(timer_ref ref);

  [[nodiscard]] bool is_alive(const pid& p) const noexcept;
  [[nodiscard]] std::size_t process_count() const noexcept;
  // Every live process, in spawn order.
  [[nodiscard]] std::vector<pid> processes() const;
  [[nodiscard]] unsigned scheduler_threads() const noexcept;

  // Installs the runtime's idle_poller (one at most; threads mode only): false if one is
  // installed already or in manual mode. nullptr removes it, returning once no scheduler
  // thread is inside its poll() — so it may be destroyed right after.
  bool set_idle_poller(idle_poller* poller);

  // Manual mode: runs runnable processes on this thread until none is left; returns how
  // many process runs happened. (In threads mode: std::logic_error.)
  std::size_t run_until_idle();

  // Idempotent; the destructor calls it.
  void shutdown();

  [[nodiscard]] canopy::clock& clock() const noexcept;
  [[nodiscard]] spdlog::logger& logger() const noexcept;

  // Internal.
  [[nodiscard]] detail::runtime_core& core() const noexcept { return *core_; }

 private:
  void send_node(const pid& to, detail::message_node* node);
  void reply_node(const reply_address& to, detail::message_node* node);
  timer_ref send_after_node(duration delay, const pid& to, detail::message_node* node);
  detail::call_outcome call_node(const pid& to, detail::message_node* request, duration timeout);

  std::unique_ptr<detail::runtime_core> core_;
};

}  // namespace canopy
