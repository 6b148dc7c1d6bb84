#pragma once
// Internal: waits (until a deadline) for one whole multipart message on a socket.

#include <chrono>
#include <optional>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

namespace canopy::msg::detail {

inline std::optional<std::vector<zmq::message_t>> receive_until(zmq::socket_t& socket,
                                                                std::chrono::steady_clock::time_point deadline) {
  zmq_pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) return std::nullopt;
    zmq::poll(&item, 1, left);
    if (!(item.revents & ZMQ_POLLIN)) continue;
    std::vector<zmq::message_t> frames;
    if (zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait) && !frames.empty())
      return frames;
  }
}

}  // namespace canopy::msg::detail
