#pragma once
// msg::remote: one app as the processes of a runtime see it — requests that never block a
// scheduler thread. A DEALER on its own I/O thread plus a gateway process: a process calls
// the gateway (co_await remote.call(...)), is parked like in any call, and resumes with the
// reply when it arrives. Any number of processes share one remote, with many requests in
// flight, answered in any order. Thread-safety: call() from inside any process of the
// runtime; stats() from anywhere; start / stop / destroy from one thread, before the runtime
// is destroyed.
//
//   auto cache = canopy::msg::remote::start(rt, "tcp://127.0.0.1:7420");
//   // in an async coroutine of any process of rt:
//   canopy::msg::reply r = co_await (*cache)->call("get", 1, [](canopy::wire::packer& p) {
//     p.pack("key");
//     p.pack("k");
//   });
//   if (r.ok) use(*r.result); else log(wire::to_string(r.code), r.message);
//
// Everything that can go wrong on the way comes back as a reply with an error code, so a
// caller looks at one thing: `timeout` (no reply within request_options::timeout, for each
// attempt), `unavailable` (no connection took the request within send_timeout — the app is
// down or not yet reachable — or the remote was stopped). Requests that are safe to repeat
// may ask for attempts > 1: after a timeout the same request (same id) is sent again;
// ZeroMQ reconnects underneath, so a restarted app answers the retry. A reply that arrives
// after its caller gave up is dropped.

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "canopy/core/pid.hpp"
#include "canopy/core/process.hpp"
#include "canopy/core/result.hpp"
#include "canopy/msg/client.hpp"
#include "canopy/wire/codec.hpp"

namespace canopy {
class runtime;
}

namespace canopy::msg {

struct request_options {
  std::chrono::milliseconds timeout{5000};  // per attempt
  unsigned attempts = 1;                    // > 1 only for requests safe to repeat
};

struct remote_stats {
  std::uint64_t sent = 0;         // request frames sent, retries included
  std::uint64_t replies = 0;      // replies handed to their callers (a cast's are dropped)
  std::uint64_t timeouts = 0;     // requests answered `timeout` after their last attempt
  std::uint64_t unavailable = 0;  // requests answered `unavailable`
  std::uint64_t in_flight = 0;    // requests waiting for a reply or for a connection
};

namespace detail {
class remote_io;
// What a process sends the gateway: a request already encoded, with its id.
struct outgoing {
  std::uint64_t id = 0;
  std::string bytes;
  request_options options;
};
}  // namespace detail

class remote {
 public:
  // Connects (ZeroMQ connects in the background: the app need not be up yet).
  // errc::invalid_argument for a malformed endpoint.
  static canopy::result<std::unique_ptr<remote>> start(runtime& rt, const std::string& endpoint,
                                                       client_options options = {});
  ~remote();
  remote(const remote&) = delete;
  remote& operator=(const remote&) = delete;

  // The awaitable call() returns: co_await it from an async coroutine of a process.
  class [[nodiscard]] call_awaiter {
   public:
    bool await_ready() { return inner_.await_ready(); }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) {
      inner_.await_suspend(h);
    }
    reply await_resume() { return settle(inner_.await_resume()); }

   private:
    friend class remote;
    explicit call_awaiter(process::call_awaiter<reply> inner) : inner_(std::move(inner)) {}
    static reply settle(canopy::result<reply> r);
    process::call_awaiter<reply> inner_;
  };

  // Sends {id, op, args: a map of `arg_pairs` pairs written by write_args} and parks the
  // calling process until its reply. std::logic_error outside a process.
  template <class F>
  call_awaiter call(std::string_view op, std::uint32_t arg_pairs, F&& write_args, request_options options = {}) {
    detail::outgoing out{next_id(), {}, options};
    out.bytes = encode_request(out.id, op, arg_pairs, std::forward<F>(write_args));
    return start_call(std::move(out));
  }
  call_awaiter call(std::string_view op, request_options options = {}) {
    return call(op, 0, [](wire::packer&) {}, options);
  }

  // Sends a request whose reply nobody waits for (it is dropped): from any thread, inside a
  // process or not. Sent even while the remote stops (within client_options::linger).
  template <class F>
  void cast(std::string_view op, std::uint32_t arg_pairs, F&& write_args, request_options options = {}) {
    detail::outgoing out{next_id(), {}, options};
    out.bytes = encode_request(out.id, op, arg_pairs, std::forward<F>(write_args));
    start_cast(std::move(out));
  }

  [[nodiscard]] const std::string& endpoint() const noexcept { return endpoint_; }
  // The gateway process (its pid shows in the runtime's process list).
  [[nodiscard]] pid gateway() const noexcept { return gateway_; }
  [[nodiscard]] remote_stats stats() const;

  // Answers every request still in flight `unavailable`, stops the I/O thread and the
  // gateway. Idempotent; the destructor calls it.
  void stop();

 private:
  remote(runtime& rt, std::string endpoint, std::chrono::milliseconds send_timeout,
         std::shared_ptr<detail::remote_io> io);
  std::uint64_t next_id() noexcept;
  call_awaiter start_call(detail::outgoing out);
  void start_cast(detail::outgoing out);

  runtime& rt_;
  std::string endpoint_;
  std::chrono::milliseconds send_timeout_;
  std::shared_ptr<detail::remote_io> io_;
  pid gateway_;
  bool stopped_ = false;
};

}  // namespace canopy::msg
