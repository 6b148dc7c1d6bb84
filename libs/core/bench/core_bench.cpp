// tools/bench core: the runtime's figures, printed like the anchors
// (../shared/anchors/runtime) so the two can be read side by side:
//   canopy.core.<metric>: <value> <unit>
// Context (sizes, repetitions, CPU) goes to stderr.
//
//   canopy_core_bench [--scale F] [--threads N] [spawn|idle|call|send ...]
// --scale shrinks every workload (0.01 for a smoke run); the figures are for --scale 1.

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "canopy/core/process.hpp"
#include "canopy/core/runtime.hpp"
#include "canopy/testing/memory.hpp"

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

double scale = 1.0;
unsigned threads = 0;

std::size_t scaled(std::size_t n) { return std::max<std::size_t>(1, static_cast<std::size_t>(static_cast<double>(n) * scale)); }

void figure(const std::string& metric, double value, const char* unit) {
  std::printf("canopy.core.%s: %.4g %s\n", metric.c_str(), value, unit);
  std::fflush(stdout);
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

using canopy::testing::resident_bytes;

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

canopy::runtime_config config() {
  canopy::runtime_config c;
  c.threads = threads;
  c.logger = std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  return c;
}

// Spins (yielding) until `done` — the benchmark's own completion wait, on the main thread.
template <class F>
void wait_for(F&& done) {
  while (!done()) std::this_thread::sleep_for(50us);
}

// ---- spawn -------------------------------------------------------------------------------------

class idle_process final : public canopy::process {
 public:
  explicit idle_process(std::atomic<std::size_t>* started) : started_(started) {}

 protected:
  void on_start() override { started_->fetch_add(1, std::memory_order_relaxed); }
  void receive(canopy::message&) override {}

 private:
  std::atomic<std::size_t>* started_;
};

void bench_spawn() {
  const std::size_t n = scaled(1'000'000);
  canopy::runtime rt(config());
  std::atomic<std::size_t> started{0};
  std::vector<canopy::pid> pids;
  pids.reserve(n);
  for (std::size_t i = 0; i < 1000; ++i) pids.push_back(canopy::pid());  // touch the vector's pages
  pids.clear();
  const long rss0 = resident_bytes();
  const auto t0 = clock_type::now();
  for (std::size_t i = 0; i < n; ++i) pids.push_back(rt.spawn<idle_process>(&started));
  const double spawn_s = seconds_since(t0);
  wait_for([&] { return started.load() == n; });
  const double all_idle_s = seconds_since(t0);
  const long rss1 = resident_bytes();
  // The pid vector is ours, not the runtime's: subtract it.
  const long pid_bytes = static_cast<long>(pids.capacity() * sizeof(canopy::pid));
  figure("spawn.us_per_spawn", spawn_s * 1e6 / static_cast<double>(n), "us");
  figure("spawn.us_per_spawn_until_all_idle", all_idle_s * 1e6 / static_cast<double>(n), "us");
  figure("spawn.bytes_per_process", static_cast<double>(rss1 - rss0 - pid_bytes) / static_cast<double>(n), "bytes");
  std::fprintf(stderr, "# spawn: %zu processes from a non-process thread, %u scheduler threads\n", n, rt.scheduler_threads());

  const auto s0 = clock_type::now();
  rt.shutdown();
  figure("shutdown.ms", seconds_since(s0) * 1e3, "ms");
  std::fprintf(stderr, "# shutdown: of the runtime holding %zu processes\n", n);
}

void bench_idle() {
  const std::size_t n = scaled(10'000);
  canopy::runtime rt(config());
  std::atomic<std::size_t> started{0};
  for (std::size_t i = 0; i < n; ++i) (void)rt.spawn<idle_process>(&started);
  wait_for([&] { return started.load() == n; });
  std::this_thread::sleep_for(100ms);  // let the workers' short spin end
  const double cpu0 = process_cpu_seconds();
  const auto w0 = clock_type::now();
  std::this_thread::sleep_for(1s);
  const double cpu_ms = (process_cpu_seconds() - cpu0) * 1e3;
  figure("idle.cpu_ms_per_s", cpu_ms / seconds_since(w0), "ms/s");
  std::fprintf(stderr, "# idle: %zu idle processes for 1 s (CPU of the whole program)\n", n);
}

// ---- call round trips ----------------------------------------------------------------------

struct increment {};

class counter_server final : public canopy::process {
 protected:
  void receive(canopy::message& m) override {
    if (m.is<increment>()) reply(m.reply_to(), ++count_);
  }

 private:
  std::uint64_t count_ = 0;
};

class call_client final : public canopy::process {
 public:
  call_client(canopy::pid server, std::size_t calls, std::atomic<std::size_t>* done)
      : server_(std::move(server)), calls_(calls), done_(done) {}

 protected:
  void on_start() override {}
  void receive(canopy::message& m) override {
    if (m.is<int>()) loop();
  }

 private:
  canopy::async loop() {
    for (std::size_t i = 0; i < calls_; ++i) {
      auto r = co_await call<std::uint64_t>(server_, increment{});
      if (!r) std::abort();
    }
    done_->fetch_add(1, std::memory_order_release);
  }
  canopy::pid server_;
  std::size_t calls_;
  std::atomic<std::size_t>* done_;
};

double run_calls(std::size_t clients, std::size_t servers, std::size_t total) {
  canopy::runtime rt(config());
  std::vector<canopy::pid> srv;
  for (std::size_t s = 0; s < servers; ++s) srv.push_back(rt.spawn<counter_server>());
  std::atomic<std::size_t> done{0};
  std::vector<canopy::pid> cl;
  for (std::size_t c = 0; c < clients; ++c) cl.push_back(rt.spawn<call_client>(srv[c % servers], total / clients, &done));
  const auto t0 = clock_type::now();
  for (auto& c : cl) rt.send(c, 1);  // go
  wait_for([&] { return done.load(std::memory_order_acquire) == clients; });
  return static_cast<double>(total / clients * clients) / seconds_since(t0);
}

double median3(double a, double b, double c) { return std::max(std::min(a, b), std::min(std::max(a, b), c)); }

void bench_calls() {
  const std::size_t total = scaled(1'000'000);
  struct shape { std::size_t c, s; };
  for (shape sh : {shape{1, 1}, shape{2, 1}, shape{8, 1}, shape{8, 8}}) {
    double a = run_calls(sh.c, sh.s, total);
    double b = run_calls(sh.c, sh.s, total);
    double c = run_calls(sh.c, sh.s, total);
    std::fprintf(stderr, "# call %zuc/%zus: %.0f %.0f %.0f calls/s\n", sh.c, sh.s, a, b, c);
    figure("call." + std::to_string(sh.c) + (sh.c == 1 ? "client_" : "clients_") + std::to_string(sh.s) +
               (sh.s == 1 ? "server" : "servers") + ".calls_per_s",
           median3(a, b, c), "calls/s");
  }
}

// ---- one-way sends ---------------------------------------------------------------------------

struct go {};
struct more {};

class receiver final : public canopy::process {
 public:
  receiver(std::size_t expect, std::atomic<bool>* done) : expect_(expect), done_(done) {}

 protected:
  void receive(canopy::message& m) override {
    if (m.is<std::uint64_t>() && ++seen_ == expect_) done_->store(true, std::memory_order_release);
  }

 private:
  std::size_t expect_;
  std::size_t seen_ = 0;
  std::atomic<bool>* done_;
};

// Sends in slices, mailing itself to continue, as a BEAM sender is preempted.
class sender final : public canopy::process {
 public:
  sender(canopy::pid to, std::size_t total) : to_(std::move(to)), left_(total) {}

 protected:
  void receive(canopy::message& m) override {
    if (!m.is<go>() && !m.is<more>()) return;
    const std::size_t slice = std::min<std::size_t>(left_, 4096);
    for (std::size_t i = 0; i < slice; ++i) send(to_, std::uint64_t{i});
    left_ -= slice;
    if (left_ > 0) send(self(), more{});
  }

 private:
  canopy::pid to_;
  std::size_t left_;
};

double run_sends(std::size_t n) {
  canopy::runtime rt(config());
  std::atomic<bool> done{false};
  canopy::pid r = rt.spawn<receiver>(n, &done);
  canopy::pid s = rt.spawn<sender>(r, n);
  const auto t0 = clock_type::now();
  rt.send(s, go{});
  wait_for([&] { return done.load(std::memory_order_acquire); });
  return static_cast<double>(n) / seconds_since(t0);
}

void bench_sends() {
  const std::size_t n = scaled(10'000'000);
  double a = run_sends(n);
  double b = run_sends(n);
  double c = run_sends(n);
  std::fprintf(stderr, "# send 1->1: %.0f %.0f %.0f msgs/s (%zu messages each)\n", a, b, c, n);
  figure("send.1to1.msgs_per_s", median3(a, b, c), "msgs/s");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> areas;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
      scale = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = static_cast<unsigned>(std::atoi(argv[++i]));
    } else if (argv[i][0] != '-') {
      areas.emplace_back(argv[i]);
    } else {
      std::fprintf(stderr, "usage: %s [--scale F] [--threads N] [spawn|idle|call|send ...]\n", argv[0]);
      return 2;
    }
  }
  auto wanted = [&](const char* area) {
    return areas.empty() || std::find(areas.begin(), areas.end(), area) != areas.end();
  };
  std::fprintf(stderr, "# canopy core bench: %u cpus, scale %.3g\n", std::thread::hardware_concurrency(), scale);
  if (wanted("spawn")) bench_spawn();
  if (wanted("idle")) bench_idle();
  if (wanted("call")) bench_calls();
  if (wanted("send")) bench_sends();
  return 0;
}
