#include "canopy/msg/subscriber.hpp"

#include <zmq.hpp>

#include "curve_socket.hpp"
#include "receive.hpp"

namespace canopy::msg {

struct subscriber::impl {
  zmq::context_t ctx{1};
  zmq::socket_t socket{ctx, zmq::socket_type::sub};
  wire::decode_limits limits;
};

subscriber::subscriber(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
subscriber::~subscriber() = default;

canopy::result<std::unique_ptr<subscriber>> subscriber::connect(const std::string& endpoint,
                                                                const std::vector<std::string>& prefixes,
                                                                wire::decode_limits limits,
                                                                const curve_client_keys& curve) {
  if (auto ok = check(curve); !ok) return ok.error();
  auto p = std::make_unique<impl>();
  p->limits = limits;
  try {
    p->socket.set(zmq::sockopt::linger, 0);
    // Frames past the limit cost the publisher's connection, not our memory.
    p->socket.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(2 * limits.max_message_bytes));
    for (const std::string& prefix : prefixes) p->socket.set(zmq::sockopt::subscribe, prefix);
    detail::apply_client_curve(p->socket, curve);
    p->socket.connect(endpoint);
  } catch (const zmq::error_t& e) {
    return error(errc::invalid_argument, std::string("cannot subscribe to ") + endpoint + ": " + e.what());
  }
  return std::unique_ptr<subscriber>(new subscriber(std::move(p)));
}

void subscriber::subscribe(const std::string& prefix) { impl_->socket.set(zmq::sockopt::subscribe, prefix); }
void subscriber::unsubscribe(const std::string& prefix) { impl_->socket.set(zmq::sockopt::unsubscribe, prefix); }

std::optional<event> subscriber::receive(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (auto received = detail::receive_until(impl_->socket, deadline)) {
    std::vector<zmq::message_t>& frames = *received;
    if (frames.size() != 2) {
      ++malformed_;
      continue;
    }
    const std::string body = frames[1].to_string();
    if (wire::check_value(body, impl_->limits)) {
      ++malformed_;
      continue;
    }
    auto handle = std::make_shared<msgpack::object_handle>(msgpack::unpack(body.data(), body.size()));
    if (handle->get().type != msgpack::type::MAP) {
      ++malformed_;
      continue;
    }
    event ev;
    ev.topic = frames[0].to_string();
    ev.body = &handle->get();
    ev.handle = std::move(handle);
    return ev;
  }
  return std::nullopt;
}

}  // namespace canopy::msg
