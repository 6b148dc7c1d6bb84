#include "canopy/msg/server.hpp"

#include <spdlog/logger.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <cassert>
#include <array>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "canopy/core/runtime.hpp"
#include "curve_socket.hpp"
#include "handoff.hpp"

namespace canopy::msg {

namespace detail {

void envelope::add(std::string_view frame) {
  if (frame.size() < 0xff) {
    frames_.push_back(static_cast<char>(frame.size()));
  } else {
    frames_.push_back('\xff');
    for (int i = 0; i < 4; ++i) frames_.push_back(static_cast<char>(frame.size() >> (8 * i)));
  }
  frames_.append(frame);
}

namespace {
thread_local msgpack::sbuffer scratch_buffer(256);  // not msgpack's 8 KiB default: most replies are small
thread_local bool scratch_in_use = false;
constexpr std::size_t scratch_keep = 64 * 1024;  // past this, a thread's buffer is given back after use
}  // namespace

reply_scratch::reply_scratch() {
  if (!scratch_in_use) {
    scratch_in_use = true;
    scratch_buffer.clear();
    buf_ = &scratch_buffer;
  } else {
    own_ = std::make_unique<msgpack::sbuffer>(256);
    buf_ = own_.get();
  }
}

reply_scratch::~reply_scratch() {
  if (own_) return;
  if (scratch_buffer.size() > scratch_keep) scratch_buffer = msgpack::sbuffer(256);  // a 1 MiB reply once
  scratch_in_use = false;
}

struct outbox_item {
  bool event = false;
  envelope head;  // a reply's envelope, or the event's topic
  zmq::message_t payload;
};

// What other threads hand the I/O thread: replies and events.
class outbox : public handoff<outbox_item> {
 public:
  using item = outbox_item;
  std::atomic<std::uint64_t> received{0}, handled{0}, refused{0}, replied{0}, dropped{0}, in_flight{0}, events{0},
      unauthorized{0};
};

}  // namespace detail

// ---- incoming ---------------------------------------------------------------------------------

incoming::incoming(std::shared_ptr<detail::outbox> out, detail::envelope envelope, wire::request request)
    : out_(std::move(out)), envelope_(std::move(envelope)), request_(std::move(request)) {}

incoming& incoming::operator=(incoming&& other) noexcept {
  if (this != &other) {
    if (out_) reply_error(wire::error_code::internal, "the request was dropped without a reply");
    out_ = std::move(other.out_);
    envelope_ = std::move(other.envelope_);
    request_ = std::move(other.request_);
  }
  return *this;
}

incoming::~incoming() {
  if (out_) reply_error(wire::error_code::internal, "the request was dropped without a reply");
}

void incoming::reply_error(wire::error_code code, std::string_view message) {
  if (!out_) return;  // answered already
  detail::reply_scratch scratch;
  wire::encode_error(scratch.buffer(), request_.id, code, message);
  send_bytes(scratch.bytes());
}

void incoming::send_bytes(std::string_view reply) {
  std::shared_ptr<detail::outbox> out = std::move(out_);
  if (!out) return;  // answered already: a second reply is dropped
  // A handler that writes a malformed reply (a map header counting the wrong number of
  // pairs) leaves its client waiting for a reply it cannot decode: catch it in tests.
  assert(!wire::check_value(reply, wire::decode_limits{}) && "a reply that is not one well-formed msgpack value");
  out->in_flight.fetch_sub(1, std::memory_order_relaxed);
  out->push({false, std::move(envelope_), zmq::message_t(reply.data(), reply.size())});  // dropped after stop
}

// ---- server -----------------------------------------------------------------------------------

// The sockets are used by one thread at a time: whoever holds `role` — the server's own
// thread, or a scheduler thread polling through idle_poller (the exchange on `role` is the
// barrier ZeroMQ asks for when a socket changes threads).
struct server::impl final : canopy::idle_poller {
  server_options options;
  handler on_request;
  std::shared_ptr<spdlog::logger> log;
  std::shared_ptr<detail::outbox> out = std::make_shared<detail::outbox>();
  std::string endpoint;
  std::string events_endpoint;
  std::thread io;
  bool stopped = false;

  zmq::context_t ctx{1};
  zmq::socket_t router{ctx, zmq::socket_type::router};
  zmq::socket_t pub{ctx, zmq::socket_type::pub};
  zmq::socket_t zap{ctx, zmq::socket_type::rep};
  zmq_pollitem_t items[3] = {};
  int polled = 2;
  std::vector<zmq::message_t> frames;
  std::vector<detail::outbox::item> batch;  // the outbox's buffers, reused

  // Requests read per poll at most. Small enough that a pipelining peer's replies go out
  // while it sends more: with 256 a peer keeping 256 in flight moved in lock-step (read
  // all, answer all, wait for all), 0.6 against 0.8-1.1M req/s with 64 (docs/messaging.md).
  static constexpr int full_batch = 64;
  std::atomic<bool> role{false};
  std::atomic<bool> interrupted{false};
  bool scheduler_polls = false;  // installed as the runtime's idle poller
  std::mutex own_mu;             // the own thread's pause between polls, cut short by stop
  std::condition_variable own_cv;
  bool own_stop = false;

  outcome poll(bool block) noexcept override;
  void interrupt() noexcept override {
    interrupted.store(true, std::memory_order_seq_cst);
    out->interrupt();
  }

  void run(std::promise<std::string> bound);
  // One round: the outbox flushed, a poll (blocking: until something comes), a bounded
  // batch of requests served. How many were served; -1 once the outbox is closed (stop).
  int poll_once(bool block);
  void flush(bool fd_readable = false);
  void serve();  // the request in `frames`
  void refuse(detail::envelope envelope, std::optional<std::uint64_t> id,
              wire::error_code code, const std::string& why);
  void send_reply(detail::outbox::item& it);
  void authenticate();
};

namespace {

void configure(zmq::socket_t& s, const server_options& o) {
  s.set(zmq::sockopt::linger, static_cast<int>(o.linger.count()));
  s.set(zmq::sockopt::sndhwm, o.send_hwm);
  s.set(zmq::sockopt::rcvhwm, o.receive_hwm);
  s.set(zmq::sockopt::handshake_ivl, static_cast<int>(o.handshake.count()));
  s.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(o.heartbeat.count()));
  s.set(zmq::sockopt::heartbeat_timeout, static_cast<int>(3 * o.heartbeat.count()));
  s.set(zmq::sockopt::heartbeat_ttl, static_cast<int>(3 * o.heartbeat.count()));
}

std::string to_string(const zmq::message_t& m) { return std::string(static_cast<const char*>(m.data()), m.size()); }

}  // namespace

void server::impl::run(std::promise<std::string> bound) {
  try {
    if (options.curve.enabled()) zap.bind(detail::zap_endpoint);  // before any handshake can start
    configure(router, options);
    detail::apply_server_curve(router, options.curve);
    // A hard guard well above the protocol's limit (docs/protocol.md: 4 x): frames past it
    // cost the peer its connection; between the two they are answered too_large.
    const std::size_t guard = std::max<std::size_t>(4 * options.limits.max_message_bytes,
                                                    options.limits.max_message_bytes + 65536);
    router.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(guard));
    router.set(zmq::sockopt::router_mandatory, 1);  // a reply to a vanished peer fails visibly
    router.bind(options.endpoint);
    endpoint = router.get(zmq::sockopt::last_endpoint);
    if (!options.events_endpoint.empty()) {
      pub.set(zmq::sockopt::linger, static_cast<int>(options.linger.count()));
      pub.set(zmq::sockopt::sndhwm, options.events_hwm);
      detail::apply_server_curve(pub, options.curve);
      pub.bind(options.events_endpoint);
      events_endpoint = pub.get(zmq::sockopt::last_endpoint);
    }
  } catch (const zmq::error_t& e) {
    bound.set_value(std::string("cannot bind: ") + e.what());
    return;
  }
  items[0] = {router.handle(), 0, ZMQ_POLLIN, 0};
  items[1] = {nullptr, out->fd(), ZMQ_POLLIN, 0};
  items[2] = {zap.handle(), 0, ZMQ_POLLIN, 0};
  polled = options.curve.enabled() ? 3 : 2;
  role.store(true, std::memory_order_seq_cst);  // ours until handed to the scheduler
  scheduler_polls = options.runtime != nullptr && options.runtime->set_idle_poller(this);
  bound.set_value({});

  if (!scheduler_polls) {
    while (poll_once(true) >= 0) {
    }
  } else {
    role.store(false, std::memory_order_seq_cst);
    // The fallback: poll when every scheduler thread is busy (no one holds the role).
    for (;;) {
      {
        std::unique_lock lk(own_mu);
        if (own_cv.wait_for(lk, std::chrono::milliseconds(2), [&] { return own_stop; })) break;
      }
      bool free = false;
      if (role.compare_exchange_strong(free, true, std::memory_order_seq_cst)) {
        const bool open = poll_once(false) >= 0;
        role.store(false, std::memory_order_seq_cst);
        if (!open) break;
      }
    }
    // stop() removed us from the runtime first: the role is free for good, and ours.
    while (role.exchange(true, std::memory_order_seq_cst)) std::this_thread::yield();
  }
  // Replies queued before stop still go out (the sockets linger); then the endpoints are
  // free again before stop() returns.
  batch = out->take(std::move(batch));
  for (auto& it : batch)
    if (!it.event) send_reply(it);
  router.close();
  pub.close();
  zap.close();
  ctx.close();
}

canopy::idle_poller::outcome server::impl::poll(bool block) noexcept {
  bool free = false;
  if (!role.compare_exchange_strong(free, true, std::memory_order_seq_cst)) return outcome::busy;
  try {
    poll_once(block);
  } catch (const std::exception& e) {  // never into the scheduler
    log->error("msg server {}: {}", endpoint, e.what());
  }
  role.store(false, std::memory_order_seq_cst);
  return outcome::served;
}

void server::impl::flush(bool fd_readable) {
  batch = out->take(std::move(batch), fd_readable);
  for (auto& it : batch) {
    if (!it.event) {
      send_reply(it);
    } else if (!events_endpoint.empty()) {
      it.head.each([&](std::string_view topic) {
        pub.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      });
      pub.send(it.payload, zmq::send_flags::dontwait);
      out->events.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

int server::impl::poll_once(bool block) {
  if (out->pending()) flush();
  if (out->closed()) return -1;
  // Only a poll that may block counts as asleep: pushes during a poll that returns at once
  // are flushed right after it, without an eventfd write each.
  if (block) out->set_sleeping(true);
  // An interrupt() whose eventfd write the flush above consumed must not be slept through.
  const bool wait = block && !out->pending() && !interrupted.exchange(false, std::memory_order_seq_cst);
  try {
    zmq::poll(items, polled, std::chrono::milliseconds(wait ? -1 : 0));
  } catch (const zmq::error_t& e) {
    out->set_sleeping(false);
    if (e.num() == EINTR) return 0;
    log->error("msg server {}: poll failed: {}", endpoint, e.what());
    return -1;
  }
  out->set_sleeping(false);
  if ((items[1].revents & ZMQ_POLLIN) || out->pending()) {
    flush((items[1].revents & ZMQ_POLLIN) != 0);
    if (out->closed()) return -1;
  }
  if (polled == 3 && (items[2].revents & ZMQ_POLLIN)) authenticate();
  int served = 0;
  if (items[0].revents & ZMQ_POLLIN) {
    // A bounded batch, so replies waiting in the outbox are not starved by a flood.
    for (; served < full_batch; ++served) {
      frames.clear();
      std::optional<std::size_t> got;
      try {
        got = zmq::recv_multipart(router, std::back_inserter(frames), zmq::recv_flags::dontwait);
      } catch (const zmq::error_t& e) {
        log->debug("msg server {}: receive failed: {}", endpoint, e.what());
        break;
      }
      if (!got) break;
      serve();
    }
  }
  return served;
}

// One ZAP request (RFC 27): [version, request id, domain, address, identity, mechanism,
// credentials...]; for CURVE the one credential is the client's 32-byte public key. Anything
// else — another mechanism, a key not on the allow-list, a malformed request — is refused.
void server::impl::authenticate() {
  std::vector<zmq::message_t> request;
  try {
    if (!zmq::recv_multipart(zap, std::back_inserter(request), zmq::recv_flags::dontwait)) return;
  } catch (const zmq::error_t& e) {
    log->error("msg server {}: ZAP receive failed: {}", endpoint, e.what());
    return;
  }
  const auto frame = [&](std::size_t i) { return i < request.size() ? to_string(request[i]) : std::string(); };
  bool allowed = false;
  std::string client_key;
  if (request.size() >= 7 && frame(0) == "1.0" && frame(5) == "CURVE" && request[6].size() == 32) {
    char z85[41];
    if (zmq_z85_encode(z85, static_cast<const std::uint8_t*>(request[6].data()), 32) != nullptr) {
      client_key = z85;
      allowed = std::find(options.curve.allowed_clients.begin(), options.curve.allowed_clients.end(), client_key) !=
                options.curve.allowed_clients.end();
    }
  }
  if (!allowed) {
    out->unauthorized.fetch_add(1, std::memory_order_relaxed);
    log->info("msg server {}: refused a {} handshake from {} (key {})", endpoint, frame(5), frame(3),
              client_key.empty() ? "none" : client_key);
  }
  const std::string request_id = frame(1);
  const std::string status = allowed ? "200" : "400";
  const std::string text = allowed ? "OK" : "not on the allow-list";
  const std::array<zmq::const_buffer, 6> reply{zmq::buffer(std::string_view("1.0")), zmq::buffer(request_id),
                                               zmq::buffer(status), zmq::buffer(text),
                                               zmq::buffer(client_key), zmq::const_buffer()};
  try {
    zmq::send_multipart(zap, reply);
  } catch (const zmq::error_t& e) {
    log->error("msg server {}: ZAP reply failed: {}", endpoint, e.what());
  }
}

void server::impl::serve() {
  out->received.fetch_add(1, std::memory_order_relaxed);
  // [identity, payload] (DEALER) or [identity, ..., "", payload] (REQ, proxies).
  detail::envelope envelope;
  std::size_t payload_at = 1;
  std::size_t delimiter = 0;
  for (std::size_t i = 1; i < frames.size(); ++i)
    if (frames[i].size() == 0) {
      delimiter = i;
      break;
    }
  if (delimiter != 0) payload_at = delimiter + 1;
  for (std::size_t i = 0; i < std::min(payload_at, frames.size()); ++i) envelope.add(frames[i].to_string_view());
  if (frames.size() <= payload_at) {
    refuse(std::move(envelope), std::nullopt, wire::error_code::bad_request, "no payload frame");
    return;
  }
  if (frames.size() > payload_at + 1) {
    refuse(std::move(envelope), std::nullopt, wire::error_code::bad_request,
           std::to_string(frames.size() - payload_at) + " payload frames; exactly one is expected");
    return;
  }
  const zmq::message_t& payload = frames[payload_at];
  if (payload.size() > options.limits.max_message_bytes) {
    refuse(std::move(envelope), std::nullopt, wire::error_code::too_large,
           "a payload of " + std::to_string(payload.size()) + " bytes (limit " +
               std::to_string(options.limits.max_message_bytes) + ")");
    return;
  }
  // Copied out of the ZeroMQ frame (wire's pooled storage), not kept in it: with libzmq's
  // zero-copy receive a frame is a view into an 8 KiB read buffer, and a request held by
  // a slow handler would keep that whole buffer alive.
  wire::decoded d = wire::decode_request(payload.to_string_view(), options.limits);
  if (!d.ok()) {
    const wire::decode_failure& f = d.failure();
    refuse(std::move(envelope), f.id, f.code, f.message);
    return;
  }
  if (out->in_flight.load(std::memory_order_relaxed) >= options.max_in_flight) {
    refuse(std::move(envelope), d.value().id, wire::error_code::overloaded,
           std::to_string(options.max_in_flight) + " requests in flight; retry later");
    return;
  }
  out->in_flight.fetch_add(1, std::memory_order_relaxed);
  out->handled.fetch_add(1, std::memory_order_relaxed);
  try {
    on_request(incoming(out, std::move(envelope), std::move(d.value())));
  } catch (const std::exception& e) {  // the incoming, destroyed, answered `internal`
    log->error("msg server {}: the request handler threw: {}", endpoint, e.what());
  }
}

void server::impl::refuse(detail::envelope envelope, std::optional<std::uint64_t> id,
                          wire::error_code code, const std::string& why) {
  out->refused.fetch_add(1, std::memory_order_relaxed);
  log->debug("msg server {}: refused a request ({}): {}", endpoint, wire::to_string(code), why);
  detail::reply_scratch scratch;
  wire::encode_error(scratch.buffer(), id, code, why);
  const std::string_view reply = scratch.bytes();
  detail::outbox::item it{false, std::move(envelope), zmq::message_t(reply.data(), reply.size())};
  send_reply(it);
}

void server::impl::send_reply(detail::outbox::item& it) {
  try {
    // With ROUTER_MANDATORY a peer past its high-water mark refuses the first frame (EAGAIN).
    bool sent = true;
    it.head.each([&](std::string_view f) {
      if (sent) sent = router.send(zmq::buffer(f), zmq::send_flags::sndmore | zmq::send_flags::dontwait).has_value();
    });
    if (sent) sent = router.send(it.payload, zmq::send_flags::dontwait).has_value();
    if (sent) {
      out->replied.fetch_add(1, std::memory_order_relaxed);
    } else if (out->dropped.fetch_add(1, std::memory_order_relaxed) % 10000 == 0) {  // a line per 10,000
      log->warn("msg server {}: a peer is past its high-water mark (not reading its replies); {} replies dropped",
                endpoint, out->dropped.load(std::memory_order_relaxed));
    }
  } catch (const zmq::error_t& e) {  // EHOSTUNREACH: the peer went away
    log->debug("msg server {}: reply not delivered: {}", endpoint, e.what());
  }
}

server::server(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

canopy::result<std::unique_ptr<server>> server::start(server_options options, handler on_request) {
  auto p = std::make_unique<impl>();
  if (auto ok = check(options.curve); !ok) return ok.error();
  p->log = options.logger ? options.logger : spdlog::default_logger();
  p->options = std::move(options);
  p->on_request = std::move(on_request);
  std::promise<std::string> bound;
  auto bound_result = bound.get_future();
  impl* raw = p.get();
  p->io = std::thread([raw, b = std::move(bound)]() mutable { raw->run(std::move(b)); });
  if (std::string failure = bound_result.get(); !failure.empty()) {
    p->io.join();
    return error(errc::invalid_argument, failure + " (" + p->options.endpoint + ")");
  }
  return std::unique_ptr<server>(new server(std::move(p)));
}

server::~server() { stop(); }

const std::string& server::endpoint() const noexcept { return impl_->endpoint; }
const std::string& server::events_endpoint() const noexcept { return impl_->events_endpoint; }

void server::publish(std::string topic, msgpack::sbuffer payload) {
  detail::envelope head;
  head.add(topic);
  impl_->out->push({true, std::move(head), zmq::message_t(payload.data(), payload.size())});
}

server_stats server::stats() const {
  const detail::outbox& o = *impl_->out;
  return {o.received.load(), o.handled.load(), o.refused.load(), o.replied.load(), o.dropped.load(),
          o.in_flight.load(), o.events.load(), o.unauthorized.load()};
}

void server::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  // No scheduler thread polls from here on (set_idle_poller(nullptr) waits out a poll).
  if (impl_->scheduler_polls) impl_->options.runtime->set_idle_poller(nullptr);
  impl_->out->close();
  {
    std::lock_guard lk(impl_->own_mu);
    impl_->own_stop = true;
  }
  impl_->own_cv.notify_all();
  if (impl_->io.joinable()) impl_->io.join();
}

}  // namespace canopy::msg
