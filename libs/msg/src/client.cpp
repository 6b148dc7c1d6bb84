#include "canopy/msg/client.hpp"

#include <algorithm>

#include <zmq.hpp>

#include "curve_socket.hpp"
#include "receive.hpp"

namespace canopy::msg {

struct client::impl {
  zmq::context_t ctx{1};
  zmq::socket_t socket{ctx, zmq::socket_type::dealer};
  client_options options;
  std::string endpoint;

  void open() {
    socket = zmq::socket_t(ctx, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, static_cast<int>(options.linger.count()));
    socket.set(zmq::sockopt::sndhwm, options.send_hwm);
    socket.set(zmq::sockopt::rcvhwm, options.receive_hwm);
    socket.set(zmq::sockopt::immediate, 1);  // queue only to completed connections
    detail::apply_client_curve(socket, options.curve);
    socket.connect(endpoint);
  }
};

client::client(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
client::~client() = default;

canopy::result<std::unique_ptr<client>> client::connect(const std::string& endpoint, client_options options) {
  if (auto ok = check(options.curve); !ok) return ok.error();
  auto p = std::make_unique<impl>();
  p->options = options;
  p->endpoint = endpoint;
  try {
    p->open();
  } catch (const zmq::error_t& e) {
    return error(errc::invalid_argument, std::string("cannot connect to ") + endpoint + ": " + e.what());
  }
  return std::unique_ptr<client>(new client(std::move(p)));
}

bool client::send_frames(const std::vector<std::string>& frames) {
  // Wait (bounded) until a connection can take the message, then send without blocking.
  zmq_pollitem_t item{impl_->socket.handle(), 0, ZMQ_POLLOUT, 0};
  zmq::poll(&item, 1, impl_->options.send_timeout);
  if (!(item.revents & ZMQ_POLLOUT)) return false;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const auto flags = (i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none) | zmq::send_flags::dontwait;
    if (!impl_->socket.send(zmq::buffer(frames[i]), flags)) return false;
  }
  return true;
}

void client::send_request(std::uint64_t id, const std::string& bytes) {
  if (!send_frames({bytes})) unsent_.push_back(id);
}

void client::reconnect() {
  impl_->open();
  set_aside_.clear();  // replies of the old socket's requests will not come
}

std::optional<reply> decode_reply(std::string frame, const wire::decode_limits& limits) {
  if (wire::check_value(frame, limits)) return std::nullopt;
  auto owned = std::make_shared<std::string>(std::move(frame));
  auto handle = std::make_shared<msgpack::object_handle>(msgpack::unpack(owned->data(), owned->size()));
  const msgpack::object& root = handle->get();
  if (root.type != msgpack::type::MAP) return std::nullopt;
  reply r;
  r.handle = handle;  // unpacked without references: it owns copies of every string
  if (const auto* id = wire::find(root, "id"); id && id->type == msgpack::type::POSITIVE_INTEGER) r.id = id->via.u64;
  const auto* ok = wire::find(root, "ok");
  r.ok = ok && ok->type == msgpack::type::BOOLEAN && ok->via.boolean;
  if (r.ok) {
    r.result = wire::find(root, "result");
  } else if (const auto* e = wire::find(root, "error")) {
    if (const auto* code = wire::find(*e, "code"); code && code->type == msgpack::type::STR)
      r.code = wire::error_code_from_string({code->via.str.ptr, code->via.str.size}).value_or(wire::error_code::internal);
    if (const auto* m = wire::find(*e, "message"); m && m->type == msgpack::type::STR)
      r.message.assign(m->via.str.ptr, m->via.str.size);
  }
  return r;
}

std::optional<reply> client::receive_socket(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (auto frames = detail::receive_until(impl_->socket, deadline)) {
    if (auto r = decode_reply(frames->back().to_string(), impl_->options.limits)) return r;  // else: skipped
  }
  return std::nullopt;
}

std::optional<reply> client::receive(std::chrono::milliseconds timeout) {
  if (!set_aside_.empty()) {
    reply r = std::move(set_aside_.front());
    set_aside_.pop_front();
    return r;
  }
  return receive_socket(timeout);
}

canopy::result<reply> client::await(std::uint64_t id, std::chrono::milliseconds timeout) {
  if (auto it = std::find(unsent_.begin(), unsent_.end(), id); it != unsent_.end()) {
    unsent_.erase(it);
    return error(errc::unavailable, "no connection to " + impl_->endpoint + " took request " + std::to_string(id));
  }
  for (auto it = set_aside_.begin(); it != set_aside_.end(); ++it)
    if (it->id == id) {
      reply r = std::move(*it);
      set_aside_.erase(it);
      return r;
    }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) return error(errc::timeout, "no reply to request " + std::to_string(id));
    auto r = receive_socket(left);
    if (!r) return error(errc::timeout, "no reply to request " + std::to_string(id));
    if (r->id == id) return std::move(*r);
    set_aside_.push_back(std::move(*r));
  }
}

}  // namespace canopy::msg
