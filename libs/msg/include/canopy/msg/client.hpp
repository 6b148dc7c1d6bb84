#pragma once
// msg::client: a DEALER speaking docs/protocol.md to one app — requests pipelined (many in
// flight, replies matched by id, in any order), per-request timeouts. Thread-safety: one
// thread at a time (a client is a socket); make one per thread.
//
//   auto c = canopy::msg::client::connect("tcp://127.0.0.1:7410");
//   auto r = (*c)->call("get", 1, [](canopy::wire::packer& p) { p.pack("key"); p.pack("k"); });
//   if (r && r->ok) use(*r->result);
//
// A send never blocks past `send_timeout`: with no connection (the app is down; the socket
// sets ZMQ_IMMEDIATE) the request is not queued and waiting for it answers
// errc::unavailable. call_idempotent retries Lazy-Pirate style: after a timeout it drops the
// socket, connects a new one and sends the same request again, a bounded number of times —
// only for requests that are safe to repeat; other requests in flight on this client are
// lost with the old socket.
// Inside a process use msg::remote (remote.hpp) instead: it never blocks a scheduler thread.

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "canopy/core/result.hpp"
#include "canopy/msg/curve.hpp"
#include "canopy/msg/outcome.hpp"
#include "canopy/wire/codec.hpp"

namespace canopy::msg {

// A request's bytes: {id, op, args: a map of `arg_pairs` pairs written by write_args}.
template <class F>
std::string encode_request(std::uint64_t id, std::string_view op, std::uint32_t arg_pairs, F&& write_args) {
  msgpack::sbuffer buf(256);  // not msgpack's 8 KiB default: most requests are small
  wire::packer p(buf);
  p.pack_map(3);
  p.pack("id");
  p.pack(id);
  p.pack("op");
  p.pack_str(static_cast<std::uint32_t>(op.size()));
  p.pack_str_body(op.data(), static_cast<std::uint32_t>(op.size()));
  p.pack("args");
  p.pack_map(arg_pairs);
  write_args(p);
  return std::string(buf.data(), buf.size());
}

struct client_options {
  std::chrono::milliseconds linger{0};
  std::chrono::milliseconds send_timeout{1000};  // waiting for a connection to send on
  int send_hwm = 10000;
  int receive_hwm = 10000;
  wire::decode_limits limits;  // for replies
  curve_client_keys curve;     // CURVE (curve.hpp); off by default
};

// A decoded reply.
struct reply {
  std::optional<std::uint64_t> id;  // nil when the server could not read one
  bool ok = false;
  const msgpack::object* result = nullptr;  // when ok
  wire::error_code code = wire::error_code::internal;  // when not ok
  std::string message;
  std::shared_ptr<msgpack::object_handle> handle;  // owns what result points to
};

class client {
 public:
  static canopy::result<std::unique_ptr<client>> connect(const std::string& endpoint, client_options options = {});
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Sends {id, op, args: a map of `arg_pairs` pairs written by write_args}; returns the id.
  template <class F>
  std::uint64_t send(std::string_view op, std::uint32_t arg_pairs, F&& write_args) {
    const std::uint64_t id = next_id_++;
    send_request(id, encode_request(id, op, arg_pairs, std::forward<F>(write_args)));
    return id;
  }
  std::uint64_t send(std::string_view op) {
    return send(op, 0, [](wire::packer&) {});
  }
  // Raw frames (tests of bad input): sent as one multipart message. False if no
  // connection took them within send_timeout.
  bool send_frames(const std::vector<std::string>& frames);

  // The next reply, whatever its id (replies set aside by call() first).
  std::optional<reply> receive(std::chrono::milliseconds timeout);
  // send + wait for that id's reply (others are kept for receive()). errc::timeout.
  template <class F>
  canopy::result<reply> call(std::string_view op, std::uint32_t arg_pairs, F&& write_args,
                             std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    return await(send(op, arg_pairs, std::forward<F>(write_args)), timeout);
  }
  canopy::result<reply> call(std::string_view op, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    return await(send(op), timeout);
  }
  canopy::result<reply> await(std::uint64_t id, std::chrono::milliseconds timeout);

  // Up to `attempts` tries of `per_attempt` each, reconnecting between them (see above).
  template <class F>
  canopy::result<reply> call_idempotent(std::string_view op, std::uint32_t arg_pairs, F&& write_args,
                                        std::chrono::milliseconds per_attempt, unsigned attempts) {
    const std::uint64_t id = next_id_++;
    const std::string bytes = encode_request(id, op, arg_pairs, std::forward<F>(write_args));
    canopy::result<reply> last = error(errc::timeout, "no attempt made");
    for (unsigned attempt = 0; attempt < attempts; ++attempt) {
      if (attempt > 0) reconnect();
      send_request(id, bytes);
      last = await(id, per_attempt);
      if (last || (last.code() != errc::timeout && last.code() != errc::unavailable)) return last;
    }
    return last;
  }
  // Drops the socket (and whatever was in flight on it) and connects a new one.
  void reconnect();

 private:
  void send_request(std::uint64_t id, const std::string& bytes);
  struct impl;
  explicit client(std::unique_ptr<impl> p);
  std::optional<reply> receive_socket(std::chrono::milliseconds timeout);
  std::unique_ptr<impl> impl_;
  std::uint64_t next_id_ = 1;
  std::deque<reply> set_aside_;
  std::vector<std::uint64_t> unsent_;  // ids whose request found no connection
};

// Decodes a reply frame (for clients built on other sockets: REQ, tests).
std::optional<reply> decode_reply(std::string frame, const wire::decode_limits& limits);

// A reply as an outcome: an error reply's code and message; an ok reply without a result
// is internal. (msg::remote's replies carry transport failures as codes already.)
inline outcome<reply> as_outcome(reply r, std::string_view op) {
  if (!r.ok) return failure{r.code, r.message};
  if (r.result == nullptr) return failure{wire::error_code::internal, "a reply to " + std::string(op) + " without a result"};
  return r;
}

// For an app's client library: c.call(...) with every failure as a msg::failure — no
// connection: unavailable; no reply in time: timeout; an error reply: its code and message;
// an ok reply without a result: internal.
template <class F>
outcome<reply> call_outcome(client& c, std::string_view op, std::uint32_t arg_pairs, F&& write_args,
                            std::chrono::milliseconds timeout) {
  auto r = c.call(op, arg_pairs, std::forward<F>(write_args), timeout);
  if (!r) {
    const bool unreachable = r.code() == errc::unavailable;
    return failure{unreachable ? wire::error_code::unavailable : wire::error_code::timeout, r.error().to_string()};
  }
  return as_outcome(std::move(*r), op);
}

}  // namespace canopy::msg
