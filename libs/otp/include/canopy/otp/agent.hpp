#pragma once
// agent<T>: Elixir's Agent — a process holding one value of type T, read and changed by
// functions the callers send it. Thread-safety: the static API may be used from any
// non-process thread (it blocks); inside a process, co_await call<R>(agent, op) with the
// request built by get_request / update_request / get_and_update_request.
//
//   auto counter = canopy::agent<int>::start(rt, 0);
//   canopy::agent<int>::update(rt, *counter, [](int& n) { ++n; });
//   int n = *canopy::agent<int>::get(rt, *counter, [](const int& v) { return v; });
//
// The functions run inside the agent, one at a time, in arrival order. get, update and
// get_and_update time out after 5000 ms by default (SEMANTICS 52); the agent runs on.
// A function that throws crashes the agent (its caller gets errc::exited).

#include <functional>
#include <string>
#include <type_traits>
#include <utility>

#include "canopy/otp/child_spec.hpp"
#include "canopy/otp/gen_server.hpp"

namespace canopy {

template <class T>
class agent final : public gen_server {
 public:
  // A call: runs against the state and builds the reply message.
  struct op {
    std::function<detail::node_ptr(T&)> run;
  };
  // A cast: runs against the state, nobody waits.
  struct cast_op {
    std::function<void(T&)> run;
  };

  explicit agent(T initial) : state_(std::move(initial)) {}

  static canopy::result<pid> start(runtime& rt, T initial, gen_server_options opts = {}) {
    return gen_server::start<agent>(rt, std::move(opts), std::move(initial));
  }
  // Inside a process: an agent linked to the caller.
  static canopy::result<pid> start_link(T initial, gen_server_options opts = {}) {
    return gen_server::start_link<agent>(std::move(opts), std::move(initial));
  }
  // A child spec: the agent under a supervisor, starting from `initial` at every (re)start.
  static child_spec spec(std::string id, T initial) {
    return child_spec(std::move(id), [initial = std::move(initial)]() {
      return child_start::ready(gen_server::start_link<agent>(gen_server_options{}, initial));
    });
  }

  // fn(const T&) -> R.
  template <class F>
  static op get_request(F fn) {
    using R = std::decay_t<std::invoke_result_t<F&, const T&>>;
    return op{[fn = std::move(fn)](T& state) mutable {
      return detail::node_ptr(detail::make_node<R>(detail::node_kind::reply, fn(std::as_const(state))));
    }};
  }
  // fn(T&) mutates the state, or fn(T) -> T replaces it. Answers `true` when done.
  template <class F>
  static op update_request(F fn) {
    return op{[fn = std::move(fn)](T& state) mutable {
      apply_update(fn, state);
      return detail::node_ptr(detail::make_node<bool>(detail::node_kind::reply, true));
    }};
  }
  // fn(T&) -> R: may change the state and answers R.
  template <class F>
  static op get_and_update_request(F fn) {
    using R = std::decay_t<std::invoke_result_t<F&, T&>>;
    return op{[fn = std::move(fn)](T& state) mutable {
      return detail::node_ptr(detail::make_node<R>(detail::node_kind::reply, fn(state)));
    }};
  }

  template <class F>
  static auto get(runtime& rt, const pid& a, F fn, duration timeout = default_call_timeout) {
    using R = std::decay_t<std::invoke_result_t<F&, const T&>>;
    return rt.call<R>(a, get_request(std::move(fn)), timeout);
  }
  template <class F>
  static canopy::result<void> update(runtime& rt, const pid& a, F fn, duration timeout = default_call_timeout) {
    auto done = rt.call<bool>(a, update_request(std::move(fn)), timeout);
    if (!done) return done.error();
    return {};
  }
  template <class F>
  static auto get_and_update(runtime& rt, const pid& a, F fn, duration timeout = default_call_timeout) {
    using R = std::decay_t<std::invoke_result_t<F&, T&>>;
    return rt.call<R>(a, get_and_update_request(std::move(fn)), timeout);
  }
  // Changes the state without waiting (fn(T&) or fn(T) -> T).
  template <class F>
  static void cast(runtime& rt, const pid& a, F fn) {
    rt.cast(a, cast_op{[fn = std::move(fn)](T& state) mutable { apply_update(fn, state); }});
  }

 protected:
  result handle_call(message& m, const reply_address& from) override {
    if (auto* o = m.get<op>()) return reply_message(o->run(state_));
    return gen_server::handle_call(m, from);
  }
  result handle_cast(message& m) override {
    if (auto* c = m.get<cast_op>()) {
      c->run(state_);
      return noreply();
    }
    return gen_server::handle_cast(m);
  }

 private:
  template <class F>
  static void apply_update(F& fn, T& state) {
    if constexpr (std::is_invocable_v<F&, T&> && std::is_void_v<std::invoke_result_t<F&, T&>>) {
      fn(state);
    } else {
      state = fn(std::move(state));
    }
  }

  T state_;
};

}  // namespace canopy
