// tools/bench cache: the cache app through the wire, shaped like redis-benchmark so the two
// compare (tools/bench cache --compare-redis runs both in one go): one client thread, c
// DEALER connections; each sends P requests, waits for all P replies, then sends the next
// batch; one fixed key and a 100-byte value (GETs always hit). Latency of a request: from
// the send of its batch to the receipt of its reply.
// Prints canopy.cache.<get|set>.c<C>.P<P>: ops/s, with .p50_us and .p99_us.
//
//   canopy_cache_bench [--scale F] [--endpoint ADDR]   (no endpoint: an in-process cache)

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "canopy/app/instance.hpp"
#include "canopy/cache_app/app.hpp"
#include "canopy/msg/client.hpp"
#include "load.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
double scale = 1.0;

using canopy::bench::percentile;

std::string request(bool get, std::uint64_t id) {
  static const std::string value(100, 'v');
  return canopy::msg::encode_request(id, get ? "get" : "put", get ? 1 : 2, [&](canopy::wire::packer& p) {
    p.pack("key");
    p.pack("key:__rand_int__");
    if (!get) {
      p.pack("value");
      p.pack(value);
    }
  });
}

void run(const std::string& endpoint, bool get, std::size_t clients, std::size_t pipeline, std::size_t total) {
  zmq::context_t ctx(1);
  std::vector<zmq::socket_t> socks = canopy::bench::dealers(ctx, endpoint, clients);
  std::vector<zmq_pollitem_t> items = canopy::bench::poll_items(socks);
  std::vector<clock_type::time_point> batch_sent(clients);
  std::vector<std::size_t> waiting(clients, 0);
  std::vector<double> latencies;
  latencies.reserve(total);
  std::uint64_t id = 1;
  std::size_t sent = 0, done = 0;
  auto send_batch = [&](std::size_t i) {
    batch_sent[i] = clock_type::now();
    for (std::size_t k = 0; k < pipeline && sent < total; ++k, ++sent, ++waiting[i])
      socks[i].send(zmq::buffer(request(get, id++)), zmq::send_flags::none);
  };
  const auto t0 = clock_type::now();
  for (std::size_t i = 0; i < clients; ++i) send_batch(i);
  while (done < total) {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(1000));
    for (std::size_t i = 0; i < clients; ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      zmq::message_t m;
      while (socks[i].recv(m, zmq::recv_flags::dontwait)) {
        auto reply = canopy::msg::decode_reply(m.to_string(), {});
        if (!reply || !reply->ok) {
          std::fprintf(stderr, "cache bench: a request failed: %s\n", reply ? reply->message.c_str() : "undecodable");
          std::exit(1);
        }
        latencies.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - batch_sent[i]).count());
        ++done;
        if (--waiting[i] == 0 && sent < total) send_batch(i);
      }
    }
  }
  const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  const std::string name = std::string("canopy.cache.") + (get ? "get" : "set") + ".c" + std::to_string(clients) +
                           ".P" + std::to_string(pipeline);
  std::printf("%s: %.4g ops/s\n", name.c_str(), static_cast<double>(done) / secs);
  std::printf("%s.p50_us: %.4g us\n", name.c_str(), percentile(latencies, 0.5));
  std::printf("%s.p99_us: %.4g us\n", name.c_str(), percentile(latencies, 0.99));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string endpoint;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
      scale = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc) {
      endpoint = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--scale F] [--endpoint ADDR]\n", argv[0]);
      return 2;
    }
  }
  canopy::cache_app::app app;
  std::unique_ptr<canopy::app::instance> running;
  if (endpoint.empty()) {
    canopy::app::settings s;
    s.endpoint = "tcp://127.0.0.1:0";
    s.events_endpoint = "tcp://127.0.0.1:0";
    s.registry = "none";
    auto quiet = std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
    auto started = canopy::app::instance::start(app, s, quiet);
    if (!started) {
      std::fprintf(stderr, "cannot start the cache: %s\n", started.error().to_string().c_str());
      return 1;
    }
    running = std::move(*started);
    endpoint = running->endpoint();
  }
  const auto n = [](std::size_t base) { return std::max<std::size_t>(100, static_cast<std::size_t>(base * scale)); };
  struct shape {
    std::size_t clients, pipeline, total;
  };
  for (const shape& s : {shape{1, 1, n(20000)}, shape{50, 1, n(100000)}, shape{50, 16, n(200000)}}) {
    run(endpoint, false, s.clients, s.pipeline, s.total);  // set first: the key exists for get
    run(endpoint, true, s.clients, s.pipeline, s.total);
  }
  std::fprintf(stderr, "# cache: %s canopy-cache on loopback; one client thread, c DEALERs, batches of P, one key, 100-byte values\n",
               running ? "an in-process" : "a running");
  if (running) running->stop();
  return 0;
}
