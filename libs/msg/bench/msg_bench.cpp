// tools/bench msg: a ping op through the full stack (DEALER client -> msg::server's ROUTER ->
// a process -> reply) against a raw ZeroMQ ROUTER echoing the same bytes, in one run.
// Prints canopy.msg.<figure> and canopy.msg.raw.<figure>: round trips/s, p50 / p99 (us).
//
//   canopy_msg_bench [--scale F] [--repeat N] [--only SHAPE] [--side canopy|raw] [--threads N]
//                    [--inline] [--own-thread]
//
// --repeat N: each shape runs N times per side, alternating canopy and raw, and the
// median run is reported (tools/bench msg: 5); the runs' rates go to stderr.
// The server polls from the runtime's idle scheduler threads (server_options.runtime), as
// every app does; --own-thread: the server's own I/O thread polls and hands requests over.
// --inline (a diagnostic, not a figure to quote): the server's handler answers on its I/O
// thread instead of sending the request to a process — the server's own cost without the
// two thread hand-offs a process costs (docs/messaging.md).

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

#include "canopy/core/runtime.hpp"
#include "canopy/msg/server.hpp"
#include "load.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
double scale = 1.0;
std::size_t scaled(std::size_t n) { return std::max<std::size_t>(1, static_cast<std::size_t>(static_cast<double>(n) * scale)); }

void figure(const std::string& name, double value, const char* unit) {
  std::printf("canopy.msg.%s: %.4g %s\n", name.c_str(), value, unit);
  std::fflush(stdout);
}

using canopy::bench::percentile;

// {id, op: "ping"} with the id patched in place per request (a uint64 at a fixed offset).
struct request_bytes {
  std::string bytes;
  std::size_t id_at = 0;
  request_bytes() {
    msgpack::sbuffer buf;
    canopy::wire::packer p(buf);
    p.pack_map(2);
    p.pack("op");
    p.pack("ping");
    p.pack("id");
    id_at = buf.size() + 1;
    buf.write("\xcf", 1);  // uint64, fixed width
    buf.write("\0\0\0\0\0\0\0\0", 8);
    bytes.assign(buf.data(), buf.size());
  }
  const std::string& with_id(std::uint64_t id) {
    for (int i = 0; i < 8; ++i) bytes[id_at + static_cast<std::size_t>(i)] = static_cast<char>(id >> (56 - 8 * i));
    return bytes;
  }
};


void answer_ping(canopy::msg::incoming& req) {
  req.reply_ok([](canopy::wire::packer& p) {
    p.pack_map(1);
    p.pack("pong");
    p.pack(true);
  });
}

// The server's handler process: answers ping with {pong: true}.
class pong_process final : public canopy::process {
 protected:
  void receive(canopy::message& m) override {
    if (auto* req = m.get<canopy::msg::incoming>()) answer_ping(*req);
  }
};

struct run_result {
  double rate = 0;
  std::vector<double> latencies_us;
};

// `sockets` DEALERs in this thread, each keeping `depth` requests in flight, until `total`
// replies came back. Latency: from a request's send to its reply.
run_result drive(const std::string& endpoint, std::size_t sockets, std::size_t depth, std::size_t total) {
  zmq::context_t ctx(1);
  std::vector<zmq::socket_t> socks = canopy::bench::dealers(ctx, endpoint, sockets);
  std::vector<zmq_pollitem_t> items = canopy::bench::poll_items(socks);
  request_bytes req;
  std::vector<clock_type::time_point> sent_at(total + sockets * depth + 1);
  std::uint64_t next_id = 0;
  auto send_one = [&](zmq::socket_t& s) {
    sent_at[next_id] = clock_type::now();
    s.send(zmq::buffer(req.with_id(next_id)), zmq::send_flags::none);
    ++next_id;
  };
  run_result out;
  out.latencies_us.reserve(total);
  const auto t0 = clock_type::now();
  for (auto& s : socks)
    for (std::size_t d = 0; d < depth; ++d) send_one(s);
  std::size_t done = 0;
  while (done < total) {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(1000));
    for (std::size_t i = 0; i < socks.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      zmq::message_t m;
      while (socks[i].recv(m, zmq::recv_flags::dontwait)) {
        // The reply's id: the raw echo returns the request; the server a reply map.
        std::uint64_t id = 0;
        auto h = msgpack::unpack(static_cast<const char*>(m.data()), m.size());
        if (const auto* v = canopy::wire::find(h.get(), "id")) id = v->via.u64;
        out.latencies_us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - sent_at[id]).count());
        ++done;
        if (next_id < total) send_one(socks[i]);  // keep this socket's depth until all are sent
      }
    }
  }
  out.rate = static_cast<double>(done) / std::chrono::duration<double>(clock_type::now() - t0).count();
  return out;
}

// One side's runs of a shape: the median run's figures (by rate, and the medians of the
// runs' p50 and p99), so one lucky or unlucky minute of this noisy VM does not decide.
struct runs {
  std::vector<double> rates, p50s, p99s;
  void add(const run_result& r) {
    rates.push_back(r.rate);
    p50s.push_back(percentile(r.latencies_us, 0.5));
    p99s.push_back(percentile(r.latencies_us, 0.99));
  }
};

void report(const std::string& prefix, const std::string& name, const runs& r) {
  figure(prefix + name, percentile(r.rates, 0.5), "req/s");
  figure(prefix + name + ".p50_us", percentile(r.p50s, 0.5), "us");
  figure(prefix + name + ".p99_us", percentile(r.p99s, 0.5), "us");
  if (r.rates.size() > 1) {
    std::string each;
    for (double x : r.rates) each += (each.empty() ? "" : " ") + std::to_string(static_cast<long>(x));
    std::fprintf(stderr, "# %s%s: the median of %zu runs: %s req/s\n", prefix.c_str(), name.c_str(), r.rates.size(),
                 each.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string only, side;
  unsigned threads = 0;  // scheduler threads; 0: one per core
  bool answer_inline = false;
  int repeat = 1;  // runs per shape and side, alternating; the median is reported
  bool scheduler_polls = true;  // as every app runs (app::settings::scheduler_polls)
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
      scale = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      only = argv[++i];
    } else if (std::strcmp(argv[i], "--side") == 0 && i + 1 < argc) {
      side = argv[++i];
    } else if (std::strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
      repeat = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = static_cast<unsigned>(std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--inline") == 0) {
      answer_inline = true;
    } else if (std::strcmp(argv[i], "--own-thread") == 0) {
      scheduler_polls = false;
    } else {
      std::fprintf(stderr, "usage: %s [--scale F] [--repeat N] [--only SHAPE] [--side canopy|raw] [--threads N] [--inline] [--own-thread]\n", argv[0]);
      return 2;
    }
  }
  canopy::runtime_config config;
  if (threads > 0) config.threads = threads;
  config.logger = std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  canopy::runtime rt(config);
  canopy::pid handler = rt.spawn<pong_process>();
  canopy::msg::server_options server_options{.logger = config.logger};
  if (scheduler_polls) server_options.runtime = &rt;
  auto srv = canopy::msg::server::start(server_options, [&](canopy::msg::incoming req) {
    if (answer_inline) {
      answer_ping(req);
    } else {
      rt.send(handler, std::move(req));
    }
  });
  if (!srv) {
    std::fprintf(stderr, "cannot start the server: %s\n", srv.error().to_string().c_str());
    return 1;
  }
  canopy::bench::bare_router raw;  // the raw echo
  struct shape {
    const char* name;
    std::size_t sockets, depth, total;
  };
  const shape shapes[] = {
      {"pingpong.1client", 1, 1, scaled(20000)},
      {"clients50", 50, 1, scaled(50000)},
      {"pipeline16", 1, 16, scaled(200000)},
      {"pipeline256", 1, 256, scaled(500000)},
  };
  for (const shape& s : shapes) {
    if (!only.empty() && only != s.name) continue;
    // Side by side, alternating, so both see the same machine.
    runs ours, theirs;
    for (int r = 0; r < repeat; ++r) {
      if (side != "raw") ours.add(drive((*srv)->endpoint(), s.sockets, s.depth, s.total));
      if (side != "canopy") theirs.add(drive(raw.endpoint(), s.sockets, s.depth, s.total));
    }
    if (side != "raw") report("", s.name, ours);
    if (side != "canopy") report("raw.", s.name, theirs);
  }
  std::fprintf(stderr, "# msg: ping through DEALER -> msg::server -> a process -> reply, and a raw ROUTER echo of the same bytes; TCP loopback; one client thread\n");
  return 0;
}
