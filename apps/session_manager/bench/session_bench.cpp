// tools/bench session_manager: the session manager through the wire.
//   rates   open / send / get with 50 DEALER clients, one request in flight each, with the
//           write-through to an in-process cache (the deployed shape), then standalone:
//           canopy.session_manager.<op>.c50 and .c50.standalone (ops/s)
//   memory  RSS of this process (a standalone session manager and the clients) before and
//           after opening 100,000 and then 1,000,000 sessions:
//           canopy.session_manager.bytes_per_session.<100k|1M>; then open and send with a
//           million open: canopy.session_manager.<open|send>.c50.at_1M
//   expiry  100,000 sessions with a 5 s idle timeout; each closed event's ts_ms against the
//           session's last_active_ms + 5 s: canopy.session_manager.expiry_late_ms.<p50|p99|max>
//
//   canopy_session_bench [--scale F] [--only rates|memory|expiry]

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "canopy/app/instance.hpp"
#include "canopy/cache_app/app.hpp"
#include "canopy/msg/client.hpp"
#include "canopy/msg/subscriber.hpp"
#include "canopy/session_app/app.hpp"
#include "canopy/testing/memory.hpp"
#include "canopy/testing/wait.hpp"
#include "load.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
double scale = 1.0;

std::size_t scaled(std::size_t base) { return std::max<std::size_t>(1000, static_cast<std::size_t>(base * scale)); }

using canopy::bench::drive;
using canopy::bench::percentile;

std::size_t rss_bytes() { return static_cast<std::size_t>(canopy::testing::resident_bytes()); }

std::shared_ptr<spdlog::logger> quiet() {
  return std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
}

canopy::app::settings loopback() {
  canopy::app::settings s;
  s.endpoint = "tcp://127.0.0.1:0";
  s.events_endpoint = "tcp://127.0.0.1:0";
  s.registry = "none";
  s.max_in_flight = 100000;
  return s;
}

std::string user(std::size_t i) { return "user:" + std::to_string(i); }

std::string open_request(std::size_t i, std::uint64_t id, std::uint64_t idle_ms) {
  return canopy::msg::encode_request(id, "open", 2, [&](canopy::wire::packer& p) {
    p.pack("user");
    p.pack(user(i));
    p.pack("idle_timeout_ms");
    p.pack(idle_ms);
  });
}

std::string user_request(const char* op, std::size_t i, std::uint64_t id) {
  return canopy::msg::encode_request(id, op, 1, [&](canopy::wire::packer& p) {
    p.pack("user");
    p.pack(user(i));
  });
}

std::string send_request(std::size_t i, std::uint64_t id) {
  static const std::string text(100, 'm');
  return canopy::msg::encode_request(id, "send", 2, [&](canopy::wire::packer& p) {
    p.pack("user");
    p.pack(user(i));
    p.pack("message");
    p.pack(text);
  });
}

struct started_app {
  std::unique_ptr<canopy::app::instance> instance;
  std::string endpoint;
};

template <class App>
started_app start(App& app, canopy::app::settings s = loopback()) {
  auto i = canopy::app::instance::start(app, s, quiet());
  if (!i) {
    std::fprintf(stderr, "session bench: cannot start: %s\n", i.error().to_string().c_str());
    std::exit(1);
  }
  started_app out{std::move(*i), {}};
  out.endpoint = out.instance->endpoint();
  return out;
}

void rates(bool with_cache) {
  canopy::cache_app::app cache;
  started_app cache_running;
  canopy::session_app::options o;
  o.cache_endpoint = "none";
  if (with_cache) {
    cache_running = start(cache);
    o.cache_endpoint = cache_running.endpoint;
  }
  canopy::session_app::app sessions;
  sessions.set_options(o);
  started_app running = start(sessions);
  if (with_cache) {  // wait until the link is up, so no write is skipped
    auto c = canopy::msg::client::connect(running.endpoint);
    const bool up = canopy::testing::wait_until([&] {
      auto info = (*c)->call("info", std::chrono::seconds(5));
      const msgpack::object* store = info && info->ok ? canopy::wire::find(*info->result, "store") : nullptr;
      const msgpack::object* state = store ? canopy::wire::find(*store, "state") : nullptr;
      return state && std::string_view(state->via.str.ptr, state->via.str.size) == "available";
    });
    if (!up) {
      std::fprintf(stderr, "session bench: the cache link did not come up\n");
      std::exit(1);
    }
  }
  const std::size_t n = scaled(50000);
  const std::string suffix = with_cache ? "" : ".standalone";
  const double open = drive(running.endpoint, 50, 1, 0, n,
                            [](std::size_t i, std::uint64_t id) { return open_request(i, id, 3600000); });
  const double send = drive(running.endpoint, 50, 1, 0, n, send_request);
  const double get = drive(running.endpoint, 50, 1, 0, n,
                           [](std::size_t i, std::uint64_t id) { return user_request("get", i, id); });
  std::printf("canopy.session_manager.open.c50%s: %.4g ops/s\n", suffix.c_str(), open);
  std::printf("canopy.session_manager.send.c50%s: %.4g ops/s\n", suffix.c_str(), send);
  std::printf("canopy.session_manager.get.c50%s: %.4g ops/s\n", suffix.c_str(), get);
  std::fflush(stdout);
  running.instance->stop();
  if (cache_running.instance) cache_running.instance->stop();
}

void memory() {
  canopy::session_app::app sessions;
  sessions.set_options({.cache_endpoint = "none"});
  started_app running = start(sessions);
  const auto opener = [](std::size_t i, std::uint64_t id) { return open_request(i, id, 3600000); };
  drive(running.endpoint, 50, 16, 0, 1000, opener);  // warm: sockets, pools, first pages
  const std::size_t base = rss_bytes();
  const std::size_t small = scaled(100000), large = scaled(1000000);
  drive(running.endpoint, 50, 16, 1000, small, opener);
  const std::size_t at_small = rss_bytes();
  drive(running.endpoint, 50, 16, 1000 + small, large - small, opener);
  const std::size_t at_large = rss_bytes();
  std::printf("canopy.session_manager.bytes_per_session.100k: %.4g B\n",
              static_cast<double>(at_small - base) / static_cast<double>(small));
  std::printf("canopy.session_manager.bytes_per_session.1M: %.4g B\n",
              static_cast<double>(at_large - base) / static_cast<double>(large));
  // With that many open: still fast (users spread over the whole range).
  const std::size_t n = scaled(50000);
  const auto spread = [&](std::size_t i) { return 1000 + (i * 7919) % large; };
  const double open_more = drive(running.endpoint, 50, 1, 0, n, [&](std::size_t i, std::uint64_t id) {
    return open_request(1000 + large + i, id, 3600000);
  });
  const double send = drive(running.endpoint, 50, 1, 0, n,
                            [&](std::size_t i, std::uint64_t id) { return send_request(spread(i), id); });
  std::printf("canopy.session_manager.open.c50.at_1M: %.4g ops/s\n", open_more);
  std::printf("canopy.session_manager.send.c50.at_1M: %.4g ops/s\n", send);
  std::fprintf(stderr, "# session_manager memory: %zu sessions, RSS %.1f MiB above %.1f MiB\n", large,
               static_cast<double>(at_large - base) / 1048576.0, static_cast<double>(base) / 1048576.0);
  std::fflush(stdout);
  running.instance->stop();
}

void expiry() {
  canopy::session_app::app sessions;
  sessions.set_options({.cache_endpoint = "none"});
  canopy::app::settings s = loopback();
  started_app running = start(sessions, s);
  const std::uint64_t idle_ms = 5000;
  const std::size_t n = scaled(100000);

  // The subscriber drains on its own thread from before the first open.
  auto sub = canopy::msg::subscriber::connect(running.instance->events_endpoint(), {"session_manager.closed"});
  std::vector<std::uint64_t> closed_at(n, 0);
  std::atomic<std::size_t> closed{0};
  std::atomic<bool> probe_seen{false};
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop.load()) {
      auto ev = (*sub)->receive(std::chrono::milliseconds(100));
      if (!ev) continue;
      const msgpack::object* u = canopy::wire::find(*ev->body, "user");
      const msgpack::object* ts = canopy::wire::find(*ev->body, "ts_ms");
      if (u == nullptr || ts == nullptr) continue;
      const std::string name(u->via.str.ptr, u->via.str.size);
      if (name.rfind("user:", 0) != 0) {
        probe_seen = true;
        continue;
      }
      const std::size_t i = std::strtoull(name.c_str() + 5, nullptr, 10);
      if (i < n && closed_at[i] == 0) {
        closed_at[i] = ts->via.u64;
        closed.fetch_add(1);
      }
    }
  });
  // The subscription is up once a probe's closed event shows (a handshake, not a sleep).
  {
    auto c = canopy::msg::client::connect(running.endpoint);
    const auto probe = [](canopy::wire::packer& p) {
      p.pack("user");
      p.pack("probe");
    };
    (void)canopy::testing::wait_until([&] {
      (void)(*c)->call("open", 1, probe, std::chrono::seconds(5));
      (void)(*c)->call("close", 1, probe, std::chrono::seconds(5));
      return probe_seen.load();
    });
  }
  std::vector<std::uint64_t> active(n, 0);
  drive(running.endpoint, 50, 16, 0, n, [&](std::size_t i, std::uint64_t id) { return open_request(i, id, idle_ms); });
  drive(running.endpoint, 50, 16, 0, n, [](std::size_t i, std::uint64_t id) { return user_request("get", i, id); },
        [&](std::size_t i, const canopy::msg::reply& r) {
          active[i] = canopy::wire::find(*r.result, "last_active_ms")->via.u64;
        });
  // Every session's closed event, or what came within the idle timeout and 30 s more.
  (void)canopy::testing::wait_until([&] { return closed.load() >= n; },
                                    std::chrono::milliseconds(idle_ms) + std::chrono::seconds(30));
  stop = true;
  reader.join();
  std::vector<double> late;
  late.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    if (closed_at[i] != 0)
      late.push_back(static_cast<double>(static_cast<std::int64_t>(closed_at[i]) -
                                         static_cast<std::int64_t>(active[i] + idle_ms)));
  std::printf("canopy.session_manager.expiry_late_ms.p50: %.4g ms\n", percentile(late, 0.5));
  std::printf("canopy.session_manager.expiry_late_ms.p99: %.4g ms\n", percentile(late, 0.99));
  std::printf("canopy.session_manager.expiry_late_ms.max: %.4g ms\n", late.empty() ? 0.0 : *std::max_element(late.begin(), late.end()));
  std::fprintf(stderr, "# session_manager expiry: %zu sessions, %zu closed events seen (idle %llu ms)\n", n, late.size(),
               static_cast<unsigned long long>(idle_ms));
  std::fflush(stdout);
  running.instance->stop();
}

}  // namespace

int main(int argc, char** argv) {
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
      scale = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--scale F] [--only rates|memory|expiry]\n", argv[0]);
      return 2;
    }
  }
  if (only.empty()) {
    // Each part in a fresh process: memory freed by one part would be reused by the next
    // and hide from its RSS figures.
    for (const char* part : {"rates", "memory", "expiry"}) {
      std::fflush(stdout);
      const pid_t child = ::fork();
      if (child == 0) {
        std::string scale_text = std::to_string(scale);
        const char* args[] = {argv[0], "--only", part, "--scale", scale_text.c_str(), nullptr};
        ::execv("/proc/self/exe", const_cast<char* const*>(args));
        std::_Exit(127);
      }
      int status = 0;
      if (child < 0 || ::waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "session bench: the %s part failed\n", part);
        return 1;
      }
    }
    return 0;
  }
  if (only == "rates") {
    rates(true);
    rates(false);
  } else if (only == "memory") {
    memory();
  } else if (only == "expiry") {
    expiry();
  } else {
    std::fprintf(stderr, "session bench: no part '%s' (rates, memory, expiry)\n", only.c_str());
    return 2;
  }
  std::fprintf(stderr, "# session_manager: in-process apps on loopback; one client thread, 50 DEALERs\n");
  return 0;
}
