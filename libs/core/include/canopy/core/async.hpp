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

#include <coroutine>
#include <exception>

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
  };
};

}  // namespace canopy
