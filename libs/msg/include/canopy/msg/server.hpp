#pragma once
// msg::server: an app's ZeroMQ face (docs/protocol.md "Transport"). It binds a ROUTER for
// requests and a PUB for events and owns both on one I/O thread (ZeroMQ sockets are never
// shared between threads). Each request is decoded there (libs/wire, bounded) and handed
// to the app's handler as an `incoming`; the handler passes it on to a process and returns
// at once. Whoever holds the incoming replies from any thread, once; the reply travels back
// through the I/O thread. Many requests per peer may be in flight, answered in any order.
// Thread-safety: publish() and the incoming's replies from any thread; start/stop from one.
//
//   auto srv = canopy::msg::server::start({.endpoint = "tcp://127.0.0.1:7410"},
//       [&](canopy::msg::incoming req) { rt.send(cache_pid, std::move(req)); });
//   // in the cache process:
//   req.reply_ok([&](canopy::wire::packer& p) { p.pack_map(0); });
//
// Bad input never reaches the handler and never stops the service: a malformed envelope,
// several payload frames, an empty or oversized payload, anything the decoder refuses is
// answered with its error (bad_request / too_large) from the I/O thread, logged at debug
// level, and the next request is served as usual. Past max_in_flight unanswered requests a
// new one is answered `overloaded`. An incoming destroyed without a reply (its handler
// crashed, or forgot) answers `internal` itself, so no request is left hanging.
//
// Envelopes: a DEALER's request arrives as [identity, payload]; a REQ's as [identity, "",
// payload]. Every frame before the payload is sent back in front of the reply. Extra routing
// frames (a proxy's) must end with the empty delimiter, as REQ's do.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "canopy/core/result.hpp"
#include "canopy/msg/curve.hpp"
#include "canopy/wire/codec.hpp"

namespace spdlog {
class logger;
}

namespace canopy {
class runtime;
}

namespace canopy::msg {

struct server_options {
  std::string endpoint = "tcp://127.0.0.1:0";  // ROUTER; port 0: any free port (see endpoint())
  std::string events_endpoint;                 // PUB; empty: no events
  wire::decode_limits limits;                  // limits.max_message_bytes: past it, too_large
  std::size_t max_in_flight = 10000;           // unanswered requests; past it, overloaded
  // Per peer. A reply to a peer past it (one that does not read its replies) is dropped,
  // counted in stats().dropped and logged, rather than holding up every other peer.
  int send_hwm = 10000;
  int receive_hwm = 10000;
  // Per subscriber: events queued for one that does not read them; past it, that one
  // misses events (PUB drops) and nobody else is held up. What a stalled subscriber costs
  // the app: this many events (each its topic and payload plus ~200 bytes of ZeroMQ's).
  int events_hwm = 10000;
  std::chrono::milliseconds linger{200};            // on stop, for replies still queued
  std::chrono::milliseconds heartbeat{5000};        // ZMTP heartbeats; a silent peer is dropped after 3
  std::chrono::milliseconds handshake{5000};
  curve_server_keys curve;                          // CURVE on ROUTER and PUB (curve.hpp); off by default
  // Poll the sockets from this runtime's idle scheduler threads (runtime::set_idle_poller),
  // so a request is served on the thread that runs its handler's process — no hand-off
  // between threads. The server's own thread then polls only when no scheduler thread
  // has for 2 ms (all busy). Null, or the runtime has an idle poller already: the
  // server's own thread does it all. The runtime must outlive the server.
  canopy::runtime* runtime = nullptr;
  std::shared_ptr<spdlog::logger> logger;           // null: spdlog's default
};

struct server_stats {
  std::uint64_t received = 0;      // request frames
  std::uint64_t handled = 0;       // handed to the handler
  std::uint64_t refused = 0;       // answered with an error by the server itself
  std::uint64_t replied = 0;       // replies sent
  std::uint64_t dropped = 0;       // replies dropped: the peer was past send_hwm (not reading them)
  std::uint64_t in_flight = 0;     // handed over, not yet answered
  std::uint64_t events = 0;        // published
  std::uint64_t unauthorized = 0;  // CURVE handshakes refused (a key not on the allow-list)
};

namespace detail {
class outbox;

// The routing frames in front of a request (a ROUTER peer's identity, REQ's empty
// delimiter, a proxy's frames), sent back in front of its reply; or an event's topic.
// One string of length-prefixed frames (a byte, or 0xff and four bytes past 254), so a
// DEALER's 5-byte identity or a REQ's envelope fits std::string's inline buffer: nothing
// allocated per request.
class envelope {
 public:
  void add(std::string_view frame);
  template <class F>
  void each(F&& visit) const {
    const char* at = frames_.data();
    const char* end = at + frames_.size();
    while (at < end) {
      std::size_t n = static_cast<unsigned char>(*at++);
      if (n == 0xff) {
        n = 0;
        for (int i = 0; i < 4; ++i) n |= static_cast<std::size_t>(static_cast<unsigned char>(at[i])) << (8 * i);
        at += 4;
      }
      visit(std::string_view(at, n));
      at += n;
    }
  }
 private:
  std::string frames_;
};

// The buffer a reply is packed into: the thread's own, reused (cleared, its memory kept),
// so packing a reply allocates nothing; a fresh one when the thread's is in use (a reply
// packed while packing another). The bytes are copied out into the ZeroMQ message, which
// holds a small reply inline.
class reply_scratch {
 public:
  reply_scratch();
  ~reply_scratch();
  reply_scratch(const reply_scratch&) = delete;
  reply_scratch& operator=(const reply_scratch&) = delete;
  [[nodiscard]] msgpack::sbuffer& buffer() noexcept { return *buf_; }
  [[nodiscard]] std::string_view bytes() const noexcept { return {buf_->data(), buf_->size()}; }

 private:
  msgpack::sbuffer* buf_;
  std::unique_ptr<msgpack::sbuffer> own_;
};
}  // namespace detail

// One request, in the handler's hands. Move-only; reply once, from any thread.
class incoming {
 public:
  incoming(incoming&&) noexcept = default;
  incoming& operator=(incoming&&) noexcept;
  incoming(const incoming&) = delete;
  incoming& operator=(const incoming&) = delete;
  ~incoming();

  [[nodiscard]] const wire::request& request() const noexcept { return request_; }
  [[nodiscard]] std::uint64_t id() const noexcept { return request_.id; }
  [[nodiscard]] std::string_view op() const noexcept { return request_.op; }
  [[nodiscard]] const msgpack::object& args() const noexcept { return *request_.args; }
  [[nodiscard]] bool replied() const noexcept { return out_ == nullptr; }

  // {id, ok: true, result: <one value>}
  template <class F>
  void reply_ok(F&& write_result) {
    if (!out_) return;  // answered already
    detail::reply_scratch scratch;
    wire::encode_ok(scratch.buffer(), request_.id, std::forward<F>(write_result));
    send_bytes(scratch.bytes());
  }
  void reply_error(wire::error_code code, std::string_view message);
  // A reply encoded by the caller (wire::encode_ok / encode_error).
  void send(const msgpack::sbuffer& reply) { send_bytes({reply.data(), reply.size()}); }
  void send_bytes(std::string_view reply);

  // Internal.
  incoming(std::shared_ptr<detail::outbox> out, detail::envelope envelope, wire::request request);

 private:
  std::shared_ptr<detail::outbox> out_;
  detail::envelope envelope_;
  wire::request request_;
};

class server {
 public:
  using handler = std::function<void(incoming)>;

  // Binds and starts the I/O thread. errc::invalid_argument with ZeroMQ's reason when an
  // endpoint cannot be bound (in use, malformed), or for a malformed CURVE key.
  static canopy::result<std::unique_ptr<server>> start(server_options options, handler on_request);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // The bound endpoints (a port 0 resolved to the real one).
  [[nodiscard]] const std::string& endpoint() const noexcept;
  [[nodiscard]] const std::string& events_endpoint() const noexcept;

  // An event: frames [topic, payload]. From any thread; dropped if there is no PUB.
  void publish(std::string topic, msgpack::sbuffer payload);

  [[nodiscard]] server_stats stats() const;
  // Stops the I/O thread (replies queued so far are sent, within linger). Idempotent.
  void stop();

 private:
  struct impl;
  explicit server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace canopy::msg
