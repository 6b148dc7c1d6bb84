#pragma once
// tasks: Elixir's Task and Task.Supervisor (SEMANTICS.md 47-51, 28). A task runs one
// function in its own process and sends its result to its owner — the process that
// started it. Thread-safety: every function here acts for the running process (call them
// from inside a process's callbacks or coroutines).
//
//   canopy::async fetch_all(canopy::process& self) {
//     auto a = canopy::tasks::async([] { return fetch("a"); });
//     auto b = canopy::tasks::async([] { return fetch("b"); });
//     int total = co_await canopy::tasks::await(a) + co_await canopy::tasks::await(b);
//   }
//
// async links the task to its owner and monitors it: a crash on either side takes down the
// other (47). await(t, timeout = 5000 ms) gives the result; if the timeout passes first the
// owner exits with `timeout` and the linked task dies with it; if the task exited first the
// owner exits with the task's reason; await is allowed once per task (48). yield gives the
// result, the exit, or nothing yet, and may be called again (49). shutdown stops the task
// and gives the result if it had already arrived (50). Under a task_supervisor,
// async_nolink does not link: the owner always learns the outcome, never dies of it (51);
// its children are temporary with a 5000 ms shutdown (28).
// The function's result type must not be void (return a value, as in Elixir). A running
// function is not interrupted (scheduling is cooperative): an exit signal that arrives
// meanwhile takes effect when it returns, and the task then exits with that reason.

#include <deque>
#include <functional>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "canopy/core/async.hpp"
#include "canopy/core/process.hpp"
#include "canopy/core/result.hpp"
#include "canopy/otp/dynamic_supervisor.hpp"

namespace canopy {

template <class R>
class task_handle {
 public:
  task_handle() = default;
  [[nodiscard]] const pid& worker() const noexcept { return worker_; }
  [[nodiscard]] std::uint64_t ref() const noexcept { return ref_; }
  [[nodiscard]] bool linked() const noexcept { return linked_; }

  // Internal.
  task_handle(pid worker, std::uint64_t ref, detail::process_cell* owner, bool linked)
      : worker_(std::move(worker)), ref_(ref), owner_(owner), linked_(linked) {}

 private:
  pid worker_;
  std::uint64_t ref_ = 0;

 public:  // internal: read and set by the awaiters
  detail::process_cell* owner_ = nullptr;
  bool linked_ = false;
  bool awaited_ = false;
};

namespace detail {

struct task_go {
  reply_address to;
};
struct task_finished {};

// Runs the function once and answers the owner (now, or once told where: task_go).
template <class R>
class task_runner final : public process {
 public:
  task_runner(std::function<R()> fn, reply_address to, bool wait_for_owner)
      : fn_(std::move(fn)), to_(std::move(to)), wait_(wait_for_owner) {}

 protected:
  void on_start() override {
    if (!wait_) run();
  }
  void receive(message& m) override {
    if (auto* go = m.get<task_go>()) {
      to_ = go->to;
      run();
    }
    if (m.get<task_finished>()) exit(exit_reason::normal());
  }

 private:
  // The function is not interrupted; exit signals that arrived meanwhile (the owner died)
  // act before the task's own normal exit, which is queued behind them.
  void run() {
    reply(to_, fn_());
    send(self(), task_finished{});
  }
  std::function<R()> fn_;
  reply_address to_;
  bool wait_;
};

process_cell& task_owner();

template <class R>
class task_awaiter {
 public:
  enum class mode : std::uint8_t { await, yield };
  task_awaiter(task_handle<R>& t, duration timeout, mode m) : t_(t), timeout_(timeout), mode_(m) {}

  bool await_ready() {
    if (t_.owner_ != current_process()) throw std::logic_error("only the task's owner may wait for it");
    if (mode_ == mode::await) {
      if (t_.awaited_) throw std::logic_error("await is allowed once per task");  // SEMANTICS 48
      t_.awaited_ = true;
    }
    return begin_wait_result(t_.owner_, t_.ref(), timeout_);
  }
  template <class P>
  void await_suspend(std::coroutine_handle<P> h) {
    park_for_reply(t_.owner_, h, h.promise().root_handle());
  }
  // await: the result, or the owner exits (timeout / the task's reason).
  // yield: the result, the exit, or nothing yet.
  auto await_resume() {
    call_outcome out = take_call_outcome(t_.owner_);
    if (out.failure) {  // the timeout passed
      if (mode_ == mode::await) {
        forget_result(t_.owner_, t_.ref());
        throw process_exit(exit_reason::timeout());
      }
      return std::optional<canopy::result<R>>();
    }
    forget_result(t_.owner_, t_.ref());
    message_node* n = out.reply.get();
    if (n->kind == node_kind::reply) {
      drop_monitor(t_.owner_, t_.ref());  // its normal exit is of no interest any more
      if (n->tag != &tag_for<R>) throw std::logic_error("task answered with an unexpected type");
      return std::optional<canopy::result<R>>(std::move(static_cast<typed_node<R>*>(n)->value));
    }
    exit_reason reason = static_cast<typed_node<down_message>*>(n)->value.reason;
    if (mode_ == mode::await) throw process_exit(reason);
    return std::optional<canopy::result<R>>(error::from_exit(std::move(reason)));
  }

 private:
  task_handle<R>& t_;
  duration timeout_;
  mode mode_;
};

// await() unwraps the optional: it either has a value or threw.
template <class R>
class task_await {
 public:
  task_await(task_handle<R>& t, duration timeout) : inner_(t, timeout, task_awaiter<R>::mode::await) {}
  bool await_ready() { return inner_.await_ready(); }
  template <class P>
  void await_suspend(std::coroutine_handle<P> h) {
    inner_.await_suspend(h);
  }
  R await_resume() { return std::move(**inner_.await_resume()); }

 private:
  task_awaiter<R> inner_;
};

// A child spec that spawns a runner linked to the supervisor starting it.
template <class R>
child_spec task_child(std::function<R()> fn, bool wait_for_owner) {
  child_spec spec("task", [fn = std::move(fn), wait_for_owner]() {
    process_cell* sup = current_process();
    auto construct = [&](void* mem) -> process* { return new (mem) task_runner<R>(fn, reply_address(), wait_for_owner); };
    return child_start::ready(spawn_process(core_of(sup), {sizeof(task_runner<R>), alignof(task_runner<R>), construct, sup, spawn_tie::link}));
  });
  spec.restart(restart_type::temporary).shutdown(shutdown_policy::timeout(std::chrono::milliseconds(5000)));  // 28
  return spec;
}

}  // namespace detail

namespace tasks {

// Starts fn in a new process linked to and monitored by the calling process.
template <class F, class R = std::decay_t<std::invoke_result_t<F&>>>
task_handle<R> async(F fn) {
  static_assert(!std::is_void_v<R>, "a task returns a value");
  detail::process_cell* owner = detail::current_process();
  if (owner == nullptr) throw std::logic_error("tasks::async is called from inside a process");
  const std::uint64_t ref = detail::fresh_ref();
  detail::expect_result(owner, ref);
  reply_address to(detail::pid_of(owner).cell(), ref);
  std::function<R()> body(std::move(fn));
  auto construct = [&](void* mem) -> process* { return new (mem) detail::task_runner<R>(std::move(body), to, false); };
  pid worker = detail::spawn_process(
      detail::core_of(owner), {sizeof(detail::task_runner<R>), alignof(detail::task_runner<R>), construct, owner,
                               detail::spawn_tie::link_and_monitor, nullptr, ref});
  return task_handle<R>(std::move(worker), ref, owner, true);
}

// co_await tasks::await(t[, timeout]) -> R (SEMANTICS 48).
template <class R>
detail::task_await<R> await(task_handle<R>& t, duration timeout = default_call_timeout) {
  return detail::task_await<R>(t, timeout);
}

// co_await tasks::yield(t[, timeout]) -> std::optional<result<R>>: nothing yet, the
// value, or errc::exited with the task's reason (SEMANTICS 49).
template <class R>
detail::task_awaiter<R> yield(task_handle<R>& t, duration timeout = duration::zero()) {
  return detail::task_awaiter<R>(t, timeout, detail::task_awaiter<R>::mode::yield);
}

// co_await tasks::await_many(ts[, timeout]) -> std::vector<R>, in order; the timeout covers
// them all.
template <class R>
task<std::vector<R>> await_many(std::vector<task_handle<R>>& ts, duration timeout = default_call_timeout) {
  detail::process_cell* owner = detail::current_process();
  const time_point until = deadline_after(detail::now_of(owner), timeout);
  std::vector<R> out;
  out.reserve(ts.size());
  for (auto& t : ts) {
    const time_point now = detail::now_of(owner);
    out.push_back(co_await await(t, until > now ? until - now : duration::zero()));
  }
  co_return out;
}

// Stops the task (shutdown, then a kill after `timeout`); gives its result if it had
// already arrived, its exit if it failed before, nothing otherwise (SEMANTICS 50).
template <class R>
task<std::optional<canopy::result<R>>> shutdown(task_handle<R>& t, duration timeout = default_call_timeout) {
  detail::process_cell* owner = t.owner_;
  if (t.linked()) detail::unlink_from(owner, t.worker());
  detail::send_exit(owner, t.worker(), exit_reason::shutdown());
  auto first = co_await yield(t, timeout);
  if (!first) {  // still running after the timeout: kill it
    detail::send_exit(owner, t.worker(), exit_reason::kill());
    first = co_await yield(t, infinity);
  }
  if (first && !first->has_value() && first->error().reason().is_shutdown()) co_return std::nullopt;
  if (first && !first->has_value() && first->error().reason().what() == exit_reason::kind::killed) co_return std::nullopt;
  co_return first;
}

enum class timeout_action : std::uint8_t {
  exit,       // the owner exits with timeout (and the linked tasks with it)
  kill_task,  // that task is killed; its item gives errc::timeout and the stream goes on
};

struct stream_options {
  std::size_t max_concurrency = 0;  // tasks alive at once; 0: the runtime's scheduler threads
  bool ordered = true;              // results in input order (else as they finish)
  duration timeout = default_call_timeout;  // per item, from its task's start
  timeout_action on_timeout = timeout_action::exit;
};

// co_await tasks::async_stream(source, fn, sink[, options]): runs fn on every item the
// source yields (until it yields nothing), at most max_concurrency tasks at a time, and
// hands each outcome to sink: the value, or an error (errc::exited with the task's reason,
// errc::timeout under timeout_action::kill_task). The source is pulled only when a task slot
// is free, so memory stays bounded however long the input. The tasks are linked.
template <class In, class F, class R = std::decay_t<std::invoke_result_t<F&, In>>>
task<> async_stream(std::function<std::optional<In>()> source, F fn,
                    std::function<void(canopy::result<R>)> sink, stream_options options = {}) {
  detail::process_cell* owner = detail::current_process();
  if (owner == nullptr) throw std::logic_error("tasks::async_stream is called from inside a process");
  const std::size_t limit = options.max_concurrency > 0 ? options.max_concurrency : detail::schedulers_of(owner);
  struct slot {
    task_handle<R> handle;
    time_point deadline;
  };
  std::deque<slot> running;
  bool exhausted = false;
  auto emit_node = [&](detail::node_ptr n, task_handle<R>& h) {
    detail::forget_result(owner, h.ref());
    if (n->kind == detail::node_kind::reply) {
      detail::drop_monitor(owner, h.ref());
      sink(std::move(static_cast<detail::typed_node<R>*>(n.get())->value));
    } else {
      sink(error::from_exit(static_cast<detail::typed_node<down_message>*>(n.get())->value.reason));
    }
  };
  for (;;) {
    while (running.size() < limit && !exhausted) {
      std::optional<In> item = source();
      if (!item) {
        exhausted = true;
        break;
      }
      auto h = async([fn, in = std::move(*item)]() mutable { return fn(std::move(in)); });
      running.push_back({std::move(h), deadline_after(detail::now_of(owner), options.timeout)});
    }
    if (running.empty()) co_return;
    if (!options.ordered) {  // hand over whatever finished already, in any order
      bool any = false;
      for (auto it = running.begin(); it != running.end();) {
        if (auto n = detail::try_take_result(owner, it->handle.ref())) {
          emit_node(std::move(n), it->handle);
          it = running.erase(it);
          any = true;
        } else {
          ++it;
        }
      }
      if (any) continue;
    }
    slot& head = running.front();
    const time_point now = detail::now_of(owner);
    auto outcome = co_await yield(head.handle, head.deadline > now ? head.deadline - now : duration::zero());
    if (!outcome) {  // its time is up
      if (options.on_timeout == timeout_action::exit) throw process_exit(exit_reason::timeout());
      detail::unlink_from(owner, head.handle.worker());
      detail::drop_monitor(owner, head.handle.ref());
      detail::forget_result(owner, head.handle.ref());
      detail::send_exit(owner, head.handle.worker(), exit_reason::kill());
      sink(error(errc::timeout, head.handle.worker().to_string()));
    } else {
      sink(std::move(*outcome));
    }
    running.pop_front();
  }
}

}  // namespace tasks

// Task.Supervisor: a dynamic supervisor of temporary task children (SEMANTICS 28).
namespace task_supervisor {

inline canopy::result<pid> start(runtime& rt, dynamic_supervisor_options options = {}, process_name name = {}) {
  return dynamic_supervisor::start(rt, std::move(options), std::move(name));
}
inline child_spec spec(std::string id, dynamic_supervisor_options options = {}) {
  return dynamic_supervisor::spec(std::move(id), std::move(options));
}

// Starts fn under `sup`; the caller owns it (monitors it and gets its result), linked
// (async) or not (async_nolink).
template <class F, class R = std::decay_t<std::invoke_result_t<F&>>>
task<task_handle<R>> async(pid sup, F fn, bool link = true) {
  static_assert(!std::is_void_v<R>, "a task returns a value");
  detail::process_cell* owner = detail::current_process();
  if (owner == nullptr) throw std::logic_error("task_supervisor::async is called from inside a process");
  start_child_request request{detail::task_child<R>(std::function<R()>(std::move(fn)), true)};
  auto started = co_await detail::call_as<canopy::result<pid>>(owner, sup, std::move(request), infinity);
  if (!started) throw process_exit(exit_reason::other("task_supervisor_failed", started.error().to_string()));
  if (!*started) throw process_exit(exit_reason::other("task_supervisor_failed", started->error().to_string()));
  const pid worker = **started;
  const std::uint64_t ref = detail::fresh_ref();
  detail::expect_result(owner, ref);
  detail::watch_with_ref(owner, worker, ref, link);
  detail::send_message(worker, detail::task_go{reply_address(detail::pid_of(owner).cell(), ref)});
  co_return task_handle<R>(worker, ref, owner, link);
}
template <class F, class R = std::decay_t<std::invoke_result_t<F&>>>
task<task_handle<R>> async_nolink(pid sup, F fn) {
  return async(std::move(sup), std::move(fn), false);
}

// Starts fn under `sup` with nobody waiting for it.
template <class F>
task<canopy::result<pid>> start_child(pid sup, F fn) {
  using R = std::decay_t<std::invoke_result_t<F&>>;
  detail::process_cell* owner = detail::current_process();
  start_child_request request{detail::task_child<R>(std::function<R()>(std::move(fn)), false)};
  auto started = co_await detail::call_as<canopy::result<pid>>(owner, sup, std::move(request), infinity);
  if (!started) co_return started.error();
  co_return std::move(*started);
}

}  // namespace task_supervisor

}  // namespace canopy
