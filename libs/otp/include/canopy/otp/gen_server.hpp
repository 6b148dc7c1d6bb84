#pragma once
// gen_server: OTP's generic server as a C++ base class.
// Thread-safety: callbacks run in the server's process, one at a time; the static client
// API may be used from any thread (call/stop block a non-process thread; inside a process
// use process::call with co_await).
//
// Callbacks (override what you need; each answers a gen_server::result):
//   init()                          ok() [.idle_timeout(d) | .and_continue(c)], ignore(),
//                                   stop(reason). Runs synchronously inside start/start_link,
//                                   which return only afterwards (SEMANTICS 32). It must not
//                                   co_await: do slow work in handle_continue.
//   handle_call(request, from)      reply(v), noreply() (answer later with reply(from, v)),
//                                   stop(reason), stop(reason, v).
//   handle_cast(msg)                noreply(), stop(reason).
//   handle_info(msg)                noreply(), stop(reason). Any message that is neither a
//                                   call nor a cast, including exit_message, down_message and
//                                   timeout_message (the idle timeout).
//   handle_continue(c)              noreply(), stop(reason). Runs before any queued message.
//   terminate(reason)               after a stop result, a callback crash, a bad result, or
//                                   an exit signal from the parent while trapping exits; never
//                                   after a kill (SEMANTICS 36).
//   format_status()                 a one-line state summary (sys:get_status).
// Every result but stop may carry .idle_timeout(d): if no message arrives within d,
// handle_info(timeout_message) runs; any message cancels it (SEMANTICS 33). A result the
// server cannot use (default-constructed, reply from a cast, ignore outside init) stops
// it with bad_return_value; a pending caller gets that reason (SEMANTICS 35).
// Defaults: handle_call / handle_cast / handle_continue crash (the server was sent
// something it does not handle); handle_info logs the unexpected message and goes on.
//
//   class counter : public canopy::gen_server {
//    protected:
//     result handle_call(canopy::message& m, const canopy::reply_address&) override {
//       if (m.get<get>()) return reply(n_);
//       return stop(canopy::exit_reason::other("bad_call"));
//     }
//     result handle_cast(canopy::message& m) override {
//       if (auto* a = m.get<add>()) n_ += a->n;
//       return noreply();
//     }
//     int n_ = 0;
//   };
//   auto c = canopy::gen_server::start<counter>(rt, {.name = "counter"});

#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "canopy/core/clock.hpp"
#include "canopy/core/exit_reason.hpp"
#include "canopy/core/message.hpp"
#include "canopy/core/pid.hpp"
#include "canopy/core/process_name.hpp"
#include "canopy/core/process.hpp"
#include "canopy/core/result.hpp"
#include "canopy/core/runtime.hpp"

namespace canopy {

// Delivered to handle_info when an idle timeout expires.
struct timeout_message {};

class gen_server;

// What a callback answers: a closed set built by gen_server's ok / reply / noreply / stop /
// ignore. A default-constructed result is invalid (bad_return_value).
class gen_server_result {
 public:
  enum class kind : std::uint8_t { invalid, ok, reply, noreply, stop, ignore };

  gen_server_result() = default;

  // Runs handle_info(timeout_message) if no message arrives within `d`.
  gen_server_result&& idle_timeout(duration d) && {
    timeout_ = d;
    return std::move(*this);
  }
  // Runs handle_continue(c) next, before any queued message.
  template <class C>
  gen_server_result&& and_continue(C&& c) && {
    continue_.reset(detail::make_node<std::decay_t<C>>(detail::node_kind::user, std::forward<C>(c)));
    return std::move(*this);
  }

  [[nodiscard]] kind what() const noexcept { return kind_; }

 private:
  friend class gen_server;
  explicit gen_server_result(kind k) : kind_(k) {}

  kind kind_ = kind::invalid;
  detail::node_ptr reply_;
  detail::node_ptr continue_;
  std::optional<duration> timeout_;
  exit_reason reason_ = exit_reason::normal();
};

struct gen_server_options {
  process_name name;  // local or via, registered before init (taken: errc::already_started)
};

class gen_server : public process {
 public:
  using result = gen_server_result;

  // ---- client API ------------------------------------------------------------------------

  // Starts an unlinked server; returns after init with its pid, or errc::already_started
  // (name taken), errc::ignored (init answered ignore), errc::start_failed (init stopped or
  // crashed; error::reason() says why).
  template <class S, class... A>
  static canopy::result<pid> start(runtime& rt, gen_server_options opts, A&&... args) {
    return start_impl<S>(detail::core_of(rt), nullptr, std::move(opts), std::forward<A>(args)...);
  }
  // From inside a process: starts a server linked to the calling process (its parent: an
  // exit signal from it, while trapping exits, runs terminate and stops the server).
  template <class S, class... A>
  static canopy::result<pid> start_link(gen_server_options opts, A&&... args) {
    detail::process_cell* parent = detail::current_process();
    if (parent == nullptr) throw_no_parent();
    return start_impl<S>(detail::core_of(parent), parent, std::move(opts), std::forward<A>(args)...);
  }
  // Blocking call from a non-process thread (see runtime::call).
  template <class R, class Req>
  static canopy::result<R> call(runtime& rt, const pid& server, Req&& request,
                                duration timeout = default_call_timeout) {
    return rt.call<R>(server, std::forward<Req>(request), timeout);
  }
  // By name (local or via): errc::noproc naming it if no process holds it.
  template <class R, class Req>
  static canopy::result<R> call(runtime& rt, const process_name& server, Req&& request,
                                duration timeout = default_call_timeout) {
    const pid to = rt.resolve(server);
    if (!to) return error(errc::noproc, server.to_string());
    return rt.call<R>(to, std::forward<Req>(request), timeout);
  }
  template <class T>
  static void cast(runtime& rt, const pid& server, T&& msg) {
    rt.cast(server, std::forward<T>(msg));
  }
  // By name: nothing happens if no process holds it (as in OTP).
  template <class T>
  static void cast(runtime& rt, const process_name& server, T&& msg) {
    if (const pid to = rt.resolve(server)) rt.cast(to, std::forward<T>(msg));
  }
  // Stops `server` with `reason` (terminate runs) and waits until it has exited.
  // errc::noproc if it was not alive; errc::timeout if it did not exit in time.
  static canopy::result<void> stop(runtime& rt, const pid& server,
                                   exit_reason reason = exit_reason::normal(),
                                   duration timeout = infinity);
  // The server's format_status() (sys:get_status).
  static canopy::result<std::string> state_summary(runtime& rt, const pid& server,
                                                   duration timeout = default_call_timeout);

 protected:
  gen_server() = default;

  virtual result init() { return ok(); }
  virtual result handle_call(message& request, const reply_address& from);
  virtual result handle_cast(message& request);
  virtual result handle_info(message& msg);
  virtual result handle_continue(message& cont);
  virtual void terminate(const exit_reason& reason);
  [[nodiscard]] virtual std::string format_status() const;

  // ---- results -------------------------------------------------------------------------
  static result ok() { return result(result::kind::ok); }
  static result noreply() { return result(result::kind::noreply); }
  static result ignore() { return result(result::kind::ignore); }
  static result stop(exit_reason reason) {
    result r(result::kind::stop);
    r.reason_ = std::move(reason);
    return r;
  }
  template <class T>
  static result stop(exit_reason reason, T&& reply_value) {
    result r = stop(std::move(reason));
    r.reply_.reset(detail::make_node<std::decay_t<T>>(detail::node_kind::reply, std::forward<T>(reply_value)));
    return r;
  }
  template <class T>
  static result reply(T&& value) {
    result r(result::kind::reply);
    r.reply_.reset(detail::make_node<std::decay_t<T>>(detail::node_kind::reply, std::forward<T>(value)));
    return r;
  }
  using process::reply;  // reply(from, value): answer a call later (after noreply)
  using process::reply_message;
  // A reply whose message was built beforehand (make_node<T>(node_kind::reply, ...)).
  static result reply_message(detail::node_ptr message) {
    result r(result::kind::reply);
    r.reply_ = std::move(message);
    return r;
  }

  // The process that started this server with start_link (null after start).
  [[nodiscard]] const pid& parent() const noexcept { return parent_; }

 private:
  enum class origin : std::uint8_t { init, call, cast, info, cont };

  template <class S, class... A>
  static canopy::result<pid> start_impl(detail::runtime_core& rt, detail::process_cell* parent,
                                        gen_server_options opts, A&&... args) {
    static_assert(std::is_base_of_v<gen_server, S>, "start<S>: S must derive from canopy::gen_server");
    auto construct = [&](void* mem) -> process* { return new (mem) S(std::forward<A>(args)...); };
    detail::spawn_args spawn{sizeof(S), alignof(S), construct, parent,
                             parent ? detail::spawn_tie::link : detail::spawn_tie::none};
    return finish_start(rt, spawn, opts.name, parent);
  }
  static canopy::result<pid> finish_start(detail::runtime_core& rt, const detail::spawn_args& spawn,
                                          const process_name& name, detail::process_cell* parent);
  [[noreturn]] static void throw_no_parent();

  void on_start() final;
  void receive(message& m) final;
  // Runs a callback; a crash runs terminate before the runtime records it.
  template <class F>
  void guarded_apply(F&& callback, origin where, const reply_address* from);
  // Acts on a callback's result (reply, stop, continue, idle timeout, bad return).
  void apply(result r, origin where, const reply_address* from);
  void run_continue(detail::node_ptr cont);
  void stop_now(const exit_reason& reason);
  void arm_idle_timer(const std::optional<duration>& timeout);

  pid parent_;
  detail::node_ptr pending_continue_;  // from init: runs before the first queued message
  timer_ref idle_timer_;
  std::uint64_t idle_generation_ = 0;
  bool init_ignored_ = false;
  bool stopping_ = false;
};

}  // namespace canopy
