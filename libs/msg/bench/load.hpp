#pragma once
// Load for the benchmarks (tools/bench) and the soak: percentiles, DEALERs opened and polled
// alike, a driver that keeps requests in flight from many of them on one thread, and the
// bare ZeroMQ router the benchmarks measure themselves against.
// Header-only, benchmarks only.
// Thread-safety: one thread per drive().
//
//   double rate = canopy::bench::drive(endpoint, 50, 16, 0, 100000,
//       [](std::size_t i, std::uint64_t id) { return canopy::msg::encode_request(id, "ping", 0, ...); });

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "canopy/msg/client.hpp"

namespace canopy::bench {

// A ROUTER on its own thread, on a loopback port, that answers every message at once and
// does nothing else: with `canned` empty it sends each message straight back (the raw
// echo), otherwise it answers [identity, canned] (a reply shaped like the app's).
class bare_router {
 public:
  explicit bare_router(std::string canned = {}) : socket_(ctx_, zmq::socket_type::router), canned_(std::move(canned)) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("tcp://127.0.0.1:0");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] {
      std::vector<zmq::message_t> frames;
      zmq_pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      while (!stop_.load()) {
        zmq::poll(&item, 1, std::chrono::milliseconds(50));
        for (;;) {
          frames.clear();
          if (!zmq::recv_multipart(socket_, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
          if (canned_.empty()) {
            zmq::send_multipart(socket_, frames);
          } else {
            socket_.send(frames.front(), zmq::send_flags::sndmore);
            socket_.send(zmq::buffer(canned_), zmq::send_flags::none);
          }
        }
      }
    });
  }
  ~bare_router() {
    stop_ = true;
    thread_.join();
  }
  bare_router(const bare_router&) = delete;
  bare_router& operator=(const bare_router&) = delete;
  [[nodiscard]] const std::string& endpoint() const { return endpoint_; }

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t socket_;
  std::string canned_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// `n` DEALERs connected to `endpoint` (linger 0), the way every load generator opens them.
inline std::vector<zmq::socket_t> dealers(zmq::context_t& ctx, const std::string& endpoint, std::size_t n) {
  std::vector<zmq::socket_t> socks;
  for (std::size_t i = 0; i < n; ++i) {
    socks.emplace_back(ctx, zmq::socket_type::dealer);
    socks.back().set(zmq::sockopt::linger, 0);
    socks.back().connect(endpoint);
  }
  return socks;
}

// A POLLIN item per socket, for zmq::poll over all of them.
inline std::vector<zmq_pollitem_t> poll_items(std::vector<zmq::socket_t>& socks) {
  std::vector<zmq_pollitem_t> items;
  for (auto& s : socks) items.push_back({s.handle(), 0, ZMQ_POLLIN, 0});
  return items;
}

// Requests numbered first .. first + total - 1 (request(i, id) encodes the i-th with that
// id), from `clients` DEALERs with `pipeline` in flight each. on_reply sees every decoded
// reply with its number. A failed or undecodable reply ends the program (a benchmark of
// errors is no benchmark). Requests/s.
inline double drive(const std::string& endpoint, std::size_t clients, std::size_t pipeline, std::size_t first,
                    std::size_t total, const std::function<std::string(std::size_t, std::uint64_t)>& request,
                    const std::function<void(std::size_t, const msg::reply&)>& on_reply = {}) {
  zmq::context_t ctx(1);
  std::vector<zmq::socket_t> socks = dealers(ctx, endpoint, clients);
  std::vector<zmq_pollitem_t> items = poll_items(socks);
  std::size_t next = 0, done = 0;
  auto send_one = [&](std::size_t c) {
    if (next >= total) return;
    const std::size_t i = first + next++;
    socks[c].send(zmq::buffer(request(i, i + 1)), zmq::send_flags::none);  // id = number + 1
  };
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t c = 0; c < clients; ++c)
    for (std::size_t k = 0; k < pipeline; ++k) send_one(c);
  while (done < total) {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(1000));
    for (std::size_t c = 0; c < clients; ++c) {
      if (!(items[c].revents & ZMQ_POLLIN)) continue;
      zmq::message_t m;
      while (socks[c].recv(m, zmq::recv_flags::dontwait)) {
        auto reply = msg::decode_reply(m.to_string(), {});
        if (!reply || !reply->ok || !reply->id) {
          std::fprintf(stderr, "bench: a request failed: %s\n", reply ? reply->message.c_str() : "undecodable");
          std::exit(1);
        }
        if (on_reply) on_reply(static_cast<std::size_t>(*reply->id - 1), *reply);
        ++done;
        send_one(c);
      }
    }
  }
  return static_cast<double>(total) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace canopy::bench
