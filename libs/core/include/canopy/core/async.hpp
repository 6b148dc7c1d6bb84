#pragma once
// async: a fire-and-forget coroutine that runs inside a process and may co_await a call
// without holding a scheduler thread hostage.
// Thread-safety: start and resume an async only from its own process's callbacks.
//
//   canopy::async handle_lookup(lookup req, canopy::reply_address from) {
//     auto price = co_await call<int>(pricing_, get_price{req.sku});  // parks this process
//     reply(from, price.value_or(0));
//   }
//
// While the coroutine waits, the process is parked in a selective receive: only the reply
// (or the callee's death, or the timeout) resumes it; other messages stay queued, in order,
// and are handled after it. Exit signals still act at once (a kill kills a parked process).
// A process waits for one call at a time, like an Erlang process in receive.
// An exception escaping the coroutine crashes the process, exactly as one escaping receive().
//
// GCC 12 pitfall (a compiler bug; clang 14 is fine): a temporary with non-trivial members
// (a std::string, a std::function) built as an *argument* inside a co_await expression can be
// relocated without its move constructor and corrupt the heap. Name such a request first:
//   my_request req{name};                       // not: co_await call<R>(p, my_request{name})
//   auto r = co_await call<R>(p, std::move(req));
//
// task<T>: a lazily started coroutine an async (or another task) co_awaits to compose
// waiting steps: `co_await stop_child(i)`. Its result or exception passes to the awaiter.
// If the process exits while parked, the whole chain is destroyed from its root async.

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace canopy {

class async {
 public:
  struct promise_type {
    async get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    // Hands the exception to the running process, which crashes with it.
    void unhandled_exception() noexcept;
    // The coroutine that owns the chain: destroying it destroys every awaited task.
    std::coroutine_handle<> root_handle() noexcept {
      return std::coroutine_handle<promise_type>::from_promise(*this);
    }
  };
};

namespace detail {
template <class Promise>
struct task_final_awaiter {
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
    auto next = h.promise().continuation;
    return next ? next : std::noop_coroutine();
  }
  void await_resume() const noexcept {}
};

struct task_promise_base {
  std::coroutine_handle<> continuation;
  std::coroutine_handle<> root;
  std::exception_ptr error;
  std::suspend_always initial_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { error = std::current_exception(); }
  std::coroutine_handle<> root_handle() const noexcept { return root; }
};
}  // namespace detail

namespace detail {
// What task<T> and task<void> share: owning the frame, starting it when awaited (with
// symmetric transfer), and handing the chain's root down.
template <class Promise>
class task_base {
 public:
  task_base(task_base&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  task_base(const task_base&) = delete;
  task_base& operator=(const task_base&) = delete;
  task_base& operator=(task_base&&) = delete;
  ~task_base() {
    if (h_) h_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> parent) noexcept {
    h_.promise().continuation = parent;
    h_.promise().root = parent.promise().root_handle();
    return h_;
  }

 protected:
  explicit task_base(std::coroutine_handle<Promise> h) noexcept : h_(h) {}
  void rethrow_if_failed() const {
    if (h_.promise().error) std::rethrow_exception(h_.promise().error);
  }
  std::coroutine_handle<Promise> h_;
};

template <class T>
struct task_promise;
}  // namespace detail

template <class T = void>
class [[nodiscard]] task : public detail::task_base<detail::task_promise<T>> {
 public:
  using promise_type = detail::task_promise<T>;
  T await_resume() {
    this->rethrow_if_failed();
    return std::move(*this->h_.promise().value);
  }

 private:
  friend promise_type;
  explicit task(std::coroutine_handle<promise_type> h) noexcept : detail::task_base<promise_type>(h) {}
};

template <>
class [[nodiscard]] task<void> : public detail::task_base<detail::task_promise<void>> {
 public:
  using promise_type = detail::task_promise<void>;
  void await_resume() { rethrow_if_failed(); }

 private:
  friend promise_type;
  explicit task(std::coroutine_handle<promise_type> h) noexcept : task_base(h) {}
};

namespace detail {
template <class T>
struct task_promise : task_promise_base {
  std::optional<T> value;
  task<T> get_return_object() noexcept {
    return task<T>(std::coroutine_handle<task_promise>::from_promise(*this));
  }
  task_final_awaiter<task_promise> final_suspend() noexcept { return {}; }
  template <class U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
};

template <>
struct task_promise<void> : task_promise_base {
  task<void> get_return_object() noexcept {
    return task<void>(std::coroutine_handle<task_promise>::from_promise(*this));
  }
  task_final_awaiter<task_promise> final_suspend() noexcept { return {}; }
  void return_void() noexcept {}
};
}  // namespace detail

}  // namespace canopy
