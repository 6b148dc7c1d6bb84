// tools/bench registry: the registry app through the wire (an in-process app::instance on
// loopback, DEALER clients on one driver thread): lookups/s and register+renew pairs/s with
// 1 client (strict request/reply) and 50 clients (one request in flight each).
// Prints canopy.registry.<figure>: rate, and p50 / p99 latency in us.
//
//   canopy_registry_bench [--scale F]

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "canopy/app/instance.hpp"
#include "canopy/registry_app/app.hpp"
#include "canopy/registry_client/client.hpp"
#include "load.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
double scale = 1.0;
std::size_t scaled(std::size_t n) { return std::max<std::size_t>(1, static_cast<std::size_t>(static_cast<double>(n) * scale)); }

void figure(const std::string& name, double value, const char* unit) {
  std::printf("canopy.registry.%s: %.4g %s\n", name.c_str(), value, unit);
  std::fflush(stdout);
}

using canopy::bench::percentile;

std::string encode(std::uint64_t id, std::string_view op, const std::function<void(canopy::wire::packer&)>& args,
                   std::uint32_t pairs) {
  return canopy::msg::encode_request(id, op, pairs, args);
}

// A client's script: the next request's bytes given the reply to the previous one (null
// for the first), or empty when it has done `rounds` steps.
using script = std::function<std::string(std::uint64_t id, const msgpack::object* last_result)>;

struct run_result {
  double rate = 0;
  std::vector<double> latencies_us;
};

run_result drive(const std::string& endpoint, std::vector<script> scripts, std::size_t total) {
  zmq::context_t ctx(1);
  std::vector<zmq::socket_t> socks = canopy::bench::dealers(ctx, endpoint, scripts.size());
  std::vector<zmq_pollitem_t> items = canopy::bench::poll_items(socks);
  std::vector<clock_type::time_point> sent_at(socks.size());
  std::uint64_t next_id = 1;
  run_result out;
  out.latencies_us.reserve(total);
  auto send = [&](std::size_t i, const msgpack::object* last) {
    std::string bytes = scripts[i](next_id++, last);
    if (bytes.empty()) return;
    sent_at[i] = clock_type::now();
    socks[i].send(zmq::buffer(bytes), zmq::send_flags::none);
  };
  const auto t0 = clock_type::now();
  for (std::size_t i = 0; i < socks.size(); ++i) send(i, nullptr);
  std::size_t done = 0;
  while (done < total) {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(1000));
    for (std::size_t i = 0; i < socks.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      zmq::message_t m;
      while (socks[i].recv(m, zmq::recv_flags::dontwait)) {
        out.latencies_us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - sent_at[i]).count());
        ++done;
        auto h = msgpack::unpack(static_cast<const char*>(m.data()), m.size());
        const auto* ok = canopy::wire::find(h.get(), "ok");
        if (ok == nullptr || !ok->via.boolean) {
          std::fprintf(stderr, "registry bench: a request failed\n");
          std::exit(1);
        }
        if (done < total) send(i, canopy::wire::find(h.get(), "result"));
      }
    }
  }
  out.rate = static_cast<double>(done) / std::chrono::duration<double>(clock_type::now() - t0).count();
  return out;
}

void report(const std::string& name, const run_result& r, const char* unit) {
  figure(name, r.rate, unit);
  figure(name + ".p50_us", percentile(r.latencies_us, 0.5), "us");
  figure(name + ".p99_us", percentile(r.latencies_us, 0.99), "us");
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
      scale = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--scale F]\n", argv[0]);
      return 2;
    }
  }
  auto quiet = std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  canopy::registry_app::app app;
  canopy::app::settings s;
  s.endpoint = "tcp://127.0.0.1:0";
  s.events_endpoint = "tcp://127.0.0.1:0";
  auto running = canopy::app::instance::start(app, s, quiet);
  if (!running) {
    std::fprintf(stderr, "cannot start the registry: %s\n", running.error().to_string().c_str());
    return 1;
  }
  const std::string endpoint = (*running)->endpoint();
  // 1,000 names to look up.
  {
    auto c = canopy::registry_client::client::connect(endpoint);
    for (int i = 0; i < 1000; ++i)
      if (!(*c)->register_name("svc." + std::to_string(i), "tcp://127.0.0.1:9", {.ttl = std::chrono::hours(1)})) return 1;
  }

  for (std::size_t clients : {std::size_t{1}, std::size_t{50}}) {
    std::vector<script> lookups;
    for (std::size_t c = 0; c < clients; ++c)
      lookups.push_back([c](std::uint64_t id, const msgpack::object*) {
        const std::string name = "svc." + std::to_string((id * 7 + c) % 1000);
        return encode(id, "lookup", [&](canopy::wire::packer& p) { p.pack("name"); p.pack(name); }, 1);
      });
    report("lookup." + std::to_string(clients) + "client" + (clients > 1 ? "s" : ""),
           drive(endpoint, std::move(lookups), scaled(clients == 1 ? 20000 : 100000)), "lookups/s");

    // register a fresh name, then renew its lease; a pair is two round trips.
    std::vector<script> holders;
    for (std::size_t c = 0; c < clients; ++c)
      holders.push_back([c, clients, lease = std::string(), n = std::uint64_t{0}](std::uint64_t id,
                                                                         const msgpack::object* last) mutable {
        if (last != nullptr) {
          if (const auto* l = canopy::wire::find(*last, "lease"); l && l->type == msgpack::type::STR)
            lease.assign(l->via.str.ptr, l->via.str.size);
        }
        if (!lease.empty() && (n % 2) == 1) {
          ++n;
          const std::string held = lease;
          lease.clear();
          return encode(id, "renew", [&](canopy::wire::packer& p) { p.pack("lease"); p.pack(held); }, 1);
        }
        ++n;
        // The run in the name too: the 1-client run's names (ttl 2 s) may still be held
        // when a short run's 50-client part starts.
        const std::string name =
            "bench." + std::to_string(clients) + "." + std::to_string(c) + "." + std::to_string(n);
        return encode(
            id, "register",
            [&](canopy::wire::packer& p) {
              p.pack("name");
              p.pack(name);
              p.pack("endpoint");
              p.pack("tcp://127.0.0.1:9");
              p.pack("ttl_ms");
              p.pack(2000);
            },
            3);
      });
    run_result r = drive(endpoint, std::move(holders), scaled(clients == 1 ? 20000 : 60000));
    r.rate /= 2;  // pairs
    report("register_renew." + std::to_string(clients) + "client" + (clients > 1 ? "s" : ""), r, "pairs/s");
  }
  std::fprintf(stderr, "# registry: an in-process canopy-registry on loopback; DEALER clients on one thread, one request in flight each; lookups of 1,000 names; register (a new name, ttl 2 s) then renew its lease\n");
  (*running)->stop();
  return 0;
}
