// tools/bench cache: the cache app through the wire, shaped like redis-benchmark so the two
// compare (tools/bench cache --compare-redis runs both in one go): one client thread, c
// DEALER connections; each sends P requests, waits for all P replies, then sends the next
// batch; one fixed key and a 100-byte value (GETs always hit). Latency of a request: from
// the send of its batch to the receipt of its reply.
// Prints canopy.cache.<get|set>.c<C>.P<P>: ops/s, with .p50_us and .p99_us.
//
//   canopy_cache_bench [--scale F] [--endpoint ADDR] [--ceiling]   (no endpoint: an in-process cache)
//
// --ceiling: also drives, with the same client and shapes, a bare ZeroMQ ROUTER on its own
// thread that answers every request at once with a canned reply shaped like a get's
// ({found: true, value: <100 bytes>}): what ZeroMQ itself allows this client on this
// machine, printed as zmq_ceiling.<get|set>.c<C>.P<P> beside the cache's figures.

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
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

// A get or put request, packed once with its id as a fixed-width uint64 that each send
// patches in place: redis-benchmark likewise renders its commands once. The load
// generator shares the two cores with the server, so what it spends the server lacks.
class request_bytes {
 public:
  explicit request_bytes(bool get) {
    msgpack::sbuffer buf;
    canopy::wire::packer p(buf);
    p.pack_map(3);
    p.pack("op");
    p.pack(get ? "get" : "put");
    p.pack("args");
    p.pack_map(get ? 1 : 2);
    p.pack("key");
    p.pack("key:__rand_int__");
    if (!get) {
      p.pack("value");
      p.pack(std::string(100, 'v'));
    }
    p.pack("id");
    id_at_ = buf.size() + 1;
    buf.write("\xcf\0\0\0\0\0\0\0\0", 9);  // uint64, fixed width
    bytes_.assign(buf.data(), buf.size());
  }
  const std::string& with_id(std::uint64_t id) {
    for (int i = 0; i < 8; ++i) bytes_[id_at_ + static_cast<std::size_t>(i)] = static_cast<char>(id >> (56 - 8 * i));
    return bytes_;
  }

 private:
  std::string bytes_;
  std::size_t id_at_ = 0;
};

// Whether a reply says ok: decoded (bounded) into one zone reused for every reply, so
// checking allocates nothing in the steady state.
class reply_check {
 public:
  bool ok(const zmq::message_t& m, std::string& why) {
    const std::string_view bytes(static_cast<const char*>(m.data()), m.size());
    if (auto refused = canopy::wire::check_value(bytes, {})) {
      why = "undecodable: " + refused->message;
      return false;
    }
    zone_.clear();
    std::size_t off = 0;
    const msgpack::object root = msgpack::unpack(zone_, bytes.data(), bytes.size(), off);
    const msgpack::object* ok = root.type == msgpack::type::MAP ? canopy::wire::find(root, "ok") : nullptr;
    if (ok != nullptr && ok->type == msgpack::type::BOOLEAN && ok->via.boolean) return true;
    why = "not ok: " + canopy::msg::decode_reply(std::string(bytes), {}).value_or(canopy::msg::reply{}).message;
    return false;
  }

 private:
  msgpack::zone zone_{1024};
};

// The ceiling's reply, shaped like a get's.
std::string canned_get_reply() {
  msgpack::sbuffer buf;
  canopy::wire::encode_ok(buf, 1, [](canopy::wire::packer& p) {
    p.pack_map(2);
    p.pack("found");
    p.pack(true);
    p.pack("value");
    p.pack(std::string(100, 'v'));
  });
  return std::string(buf.data(), buf.size());
}


void run(const std::string& prefix, const std::string& endpoint, bool get, std::size_t clients, std::size_t pipeline,
         std::size_t total) {
  zmq::context_t ctx(1);
  std::vector<zmq::socket_t> socks = canopy::bench::dealers(ctx, endpoint, clients);
  std::vector<zmq_pollitem_t> items = canopy::bench::poll_items(socks);
  std::vector<clock_type::time_point> batch_sent(clients);
  std::vector<std::size_t> waiting(clients, 0);
  std::vector<double> latencies;
  latencies.reserve(total);
  std::uint64_t id = 1;
  std::size_t sent = 0, done = 0;
  request_bytes request(get);
  reply_check check;
  std::string why;
  auto send_batch = [&](std::size_t i) {
    batch_sent[i] = clock_type::now();
    for (std::size_t k = 0; k < pipeline && sent < total; ++k, ++sent, ++waiting[i])
      socks[i].send(zmq::buffer(request.with_id(id++)), zmq::send_flags::none);
  };
  const auto t0 = clock_type::now();
  for (std::size_t i = 0; i < clients; ++i) send_batch(i);
  while (done < total) {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(1000));
    for (std::size_t i = 0; i < clients; ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      zmq::message_t m;
      while (socks[i].recv(m, zmq::recv_flags::dontwait)) {
        if (!check.ok(m, why)) {
          std::fprintf(stderr, "cache bench: a request failed: %s\n", why.c_str());
          std::exit(1);
        }
        latencies.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - batch_sent[i]).count());
        ++done;
        if (--waiting[i] == 0 && sent < total) send_batch(i);
      }
    }
  }
  const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  const std::string name = prefix + (get ? "get" : "set") + ".c" + std::to_string(clients) + ".P" +
                           std::to_string(pipeline);
  std::printf("%s: %.4g ops/s\n", name.c_str(), static_cast<double>(done) / secs);
  std::printf("%s.p50_us: %.4g us\n", name.c_str(), percentile(latencies, 0.5));
  std::printf("%s.p99_us: %.4g us\n", name.c_str(), percentile(latencies, 0.99));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string endpoint;
  bool ceiling = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
      scale = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc) {
      endpoint = argv[++i];
    } else if (std::strcmp(argv[i], "--ceiling") == 0) {
      ceiling = true;
    } else {
      std::fprintf(stderr, "usage: %s [--scale F] [--endpoint ADDR] [--ceiling]\n", argv[0]);
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
  std::unique_ptr<canopy::bench::bare_router> canned;
  if (ceiling) canned = std::make_unique<canopy::bench::bare_router>(canned_get_reply());
  for (const shape& s : {shape{1, 1, n(20000)}, shape{50, 1, n(100000)}, shape{50, 16, n(200000)}}) {
    run("canopy.cache.", endpoint, false, s.clients, s.pipeline, s.total);  // set first: the key exists for get
    run("canopy.cache.", endpoint, true, s.clients, s.pipeline, s.total);
    if (canned) {
      run("zmq_ceiling.", canned->endpoint(), false, s.clients, s.pipeline, s.total);
      run("zmq_ceiling.", canned->endpoint(), true, s.clients, s.pipeline, s.total);
    }
  }
  std::fprintf(stderr, "# cache: %s canopy-cache on loopback; one client thread, c DEALERs, batches of P, one key, 100-byte values\n",
               running ? "an in-process" : "a running");
  if (running) running->stop();
  return 0;
}
