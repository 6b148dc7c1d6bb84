// tools/bench otp: supervisor restart latency and DynamicSupervisor throughput, printed
// like the anchors (../shared/anchors/runtime): canopy.otp.<metric>: <value> <unit>
//
//   canopy_otp_bench [--scale F] [--threads N] [restart|dynsup|task|task.batch|task.sequential|task.stream|registry|table ...]

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "canopy/otp/dynamic_supervisor.hpp"
#include "canopy/otp/gen_server.hpp"
#include "canopy/otp/supervisor.hpp"
#include "canopy/otp/registry.hpp"
#include "canopy/otp/table.hpp"
#include "canopy/otp/tasks.hpp"
#include "canopy/testing/memory.hpp"

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

double scale = 1.0;
unsigned threads = 0;  // scheduler threads; 0: one per core
std::vector<std::string> areas;  // "task" runs every task figure, "task.batch" only that one

bool wanted(const std::string& figure) {
  if (areas.empty()) return true;
  return std::any_of(areas.begin(), areas.end(), [&](const std::string& a) {
    return figure == a || figure.rfind(a + ".", 0) == 0 || a.rfind(figure + ".", 0) == 0;
  });
}
std::size_t scaled(std::size_t n) { return std::max<std::size_t>(1, static_cast<std::size_t>(static_cast<double>(n) * scale)); }

void figure(const std::string& metric, double value, const char* unit) {
  std::printf("canopy.otp.%s: %.4g %s\n", metric.c_str(), value, unit);
  std::fflush(stdout);
}

double seconds_since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

canopy::runtime_config config() {
  canopy::runtime_config c;
  c.threads = threads;
  c.logger = std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  return c;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

struct ping {};

class named_worker final : public canopy::gen_server {
 protected:
  result handle_call(canopy::message&, const canopy::reply_address&) override { return reply(1); }
};

canopy::child_spec named(const std::string& name) {
  return canopy::child_spec("w", [name] {
    return canopy::child_start::ready(canopy::gen_server::start_link<named_worker>({.name = name}));
  });
}

class echo final : public canopy::process {
 protected:
  void receive(canopy::message& m) override {
    if (m.is_call()) reply(m.reply_to(), 0);
  }
};

// From a process, as the anchors measure: kill -> the restarted worker is registered under
// its name and has answered a call. While waiting it yields to the scheduler with a round
// trip to an echo process, so the supervisor gets to run.
class restart_driver final : public canopy::process {
 public:
  restart_driver(std::vector<std::string> names, std::size_t samples, std::vector<double>* out, std::atomic<bool>* done)
      : names_(std::move(names)), samples_(samples), out_(out), done_(done) {}

 protected:
  void on_start() override { echo_ = spawn<echo>(); }
  void receive(canopy::message& m) override {
    if (m.is<int>()) run();
  }

 private:
  canopy::async run() {
    for (std::size_t i = 0; i < samples_; ++i) {
      const std::string& name = names_[i % names_.size()];
      canopy::pid old = system().whereis(name);
      const auto t0 = clock_type::now();
      exit(old, canopy::exit_reason::kill());
      for (;;) {
        canopy::pid now = system().whereis(name);
        if (now && now != old) {
          auto answered = co_await call<int>(now, ping{});
          if (answered) break;
        }
        (void)co_await call<int>(echo_, 0);
      }
      out_->push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
    }
    done_->store(true, std::memory_order_release);
  }
  std::vector<std::string> names_;
  std::size_t samples_;
  std::vector<double>* out_;
  std::atomic<bool>* done_;
  canopy::pid echo_;
};

std::vector<double> measure_restarts(canopy::runtime& rt, std::vector<std::string> names, std::size_t samples) {
  std::vector<double> us;
  us.reserve(samples);
  std::atomic<bool> done{false};
  canopy::pid d = rt.spawn<restart_driver>(std::move(names), samples, &us, &done);
  rt.send(d, 1);
  while (!done.load(std::memory_order_acquire)) std::this_thread::sleep_for(1ms);
  return us;
}

void bench_restart() {
  const std::size_t samples = scaled(10000);
  {
    canopy::runtime rt(config());
    std::vector<std::string> names;
    for (int i = 0; i < 100; ++i) {
      names.push_back("w" + std::to_string(i));
      if (!canopy::supervisor::start(rt, {.max_restarts = 1000000000}, {named(names.back())})) std::abort();
    }
    auto us = measure_restarts(rt, names, samples);
    figure("sup_restart.100sups_rotating.median_us", percentile(us, 0.5), "us");
    figure("sup_restart.100sups_rotating.p99_us", percentile(us, 0.99), "us");
  }
  {
    canopy::runtime rt(config());
    if (!canopy::supervisor::start(rt, {.max_restarts = 1000000000}, {named("only")})) std::abort();
    auto us = measure_restarts(rt, {"only"}, samples);
    figure("sup_restart.1sup.median_us", percentile(us, 0.5), "us");
    figure("sup_restart.1sup.p99_us", percentile(us, 0.99), "us");
    const std::size_t k = std::min<std::size_t>(1000, us.size());
    figure("sup_restart.1sup.first1000_median_us", percentile({us.begin(), us.begin() + static_cast<std::ptrdiff_t>(k)}, 0.5), "us");
    figure("sup_restart.1sup.last1000_median_us", percentile({us.end() - static_cast<std::ptrdiff_t>(k), us.end()}, 0.5), "us");
  }
  std::fprintf(stderr, "# sup_restart: %zu kills each from a driver process; done when whereis finds the new worker and it answered a call\n", samples);
}

class idle_child final : public canopy::gen_server {};

// A process that starts n children with start_child calls, one after another.
class starter final : public canopy::process {
 public:
  starter(canopy::pid sup, std::size_t n, std::atomic<bool>* done) : sup_(std::move(sup)), n_(n), done_(done) {}

 protected:
  void receive(canopy::message& m) override {
    if (m.is<int>()) run();
  }

 private:
  canopy::async run() {
    auto spec = canopy::child_spec::worker<idle_child>("c").shutdown(canopy::shutdown_policy::brutal_kill());
    for (std::size_t i = 0; i < n_; ++i) {
      canopy::start_child_request request{spec};
      auto r = co_await call<canopy::result<canopy::pid>>(sup_, std::move(request), canopy::infinity);
      if (!r || !*r) std::abort();
    }
    done_->store(true, std::memory_order_release);
  }
  canopy::pid sup_;
  std::size_t n_;
  std::atomic<bool>* done_;
};

void bench_dynsup() {
  for (std::size_t n : {scaled(10000), scaled(100000), scaled(1000000)}) {
    canopy::runtime rt(config());
    auto sup = canopy::dynamic_supervisor::start(rt);
    std::atomic<bool> done{false};
    canopy::pid s = rt.spawn<starter>(*sup, n, &done);
    const auto t0 = clock_type::now();
    rt.send(s, 1);
    while (!done.load(std::memory_order_acquire)) std::this_thread::sleep_for(50us);
    const double rate = static_cast<double>(n) / seconds_since(t0);
    const auto s0 = clock_type::now();
    auto watch = rt.watch(*sup);
    rt.exit(*sup, canopy::exit_reason::shutdown());
    if (!watch.wait(600s)) std::abort();
    const double shutdown_ms = seconds_since(s0) * 1e3;
    const std::string size = n >= 1000000 ? std::to_string(n / 1000000) + "M" : std::to_string(n / 1000) + "k";
    figure("dynsup.start_child_" + size, rate, "children/s");
    figure("dynsup.shutdown_" + size + "_ms", shutdown_ms, "ms");
    if (n == scaled(100000)) {
      figure("dynsup.start_child", rate, "children/s");
      figure("dynsup.shutdown_100k_ms", shutdown_ms, "ms");
    }
  }
  std::fprintf(stderr, "# dynsup: start_child calls from one process (co_await), brutal_kill children; shutdown of the supervisor with all of them\n");
}

// 100,000 tasks: all started, then all awaited, from one process (Elixir's
// async_await_batch); and one at a time (async_await_sequential).
class task_driver final : public canopy::process {
 public:
  task_driver(std::size_t n, bool batch, std::atomic<bool>* done) : n_(n), batch_(batch), done_(done) {}

 protected:
  void receive(canopy::message& m) override {
    if (m.is<int>()) run();
  }

 private:
  canopy::async run() {
    if (batch_) {
      std::vector<canopy::task_handle<std::size_t>> ts;
      ts.reserve(n_);
      auto t0 = clock_type::now();
      for (std::size_t i = 0; i < n_; ++i) ts.push_back(canopy::tasks::async([i] { return i; }));
      auto t1 = clock_type::now();
      for (auto& t : ts) (void)co_await canopy::tasks::await(t);
      std::fprintf(stderr, "# task batch: %zu spawned in %.1f ms, awaited in %.1f ms\n", n_,
                   (seconds_since(t0) - seconds_since(t1)) * 1e3, seconds_since(t1) * 1e3);
    } else {
      for (std::size_t i = 0; i < n_; ++i) {
        auto t = canopy::tasks::async([i] { return i; });
        (void)co_await canopy::tasks::await(t);
      }
    }
    done_->store(true, std::memory_order_release);
  }
  std::size_t n_;
  bool batch_;
  std::atomic<bool>* done_;
};

class stream_driver final : public canopy::process {
 public:
  stream_driver(std::size_t n, std::atomic<bool>* done) : n_(n), done_(done) {}

 protected:
  void receive(canopy::message& m) override {
    if (m.is<int>()) run(n_, done_);
  }

 private:
  static canopy::async run(std::size_t n, std::atomic<bool>* done) {
    auto next = std::make_shared<std::size_t>(0);
    auto sum = std::make_shared<std::size_t>(0);
    std::function<std::optional<std::size_t>()> source = [next, n]() -> std::optional<std::size_t> {
      if (*next == n) return std::nullopt;
      return (*next)++;
    };
    std::function<void(canopy::result<std::size_t>)> sink = [sum](canopy::result<std::size_t> r) { *sum += r.value_or(0); };
    co_await canopy::tasks::async_stream<std::size_t>(std::move(source), [](std::size_t i) { return i; }, std::move(sink));
    done->store(true, std::memory_order_release);
  }
  std::size_t n_;
  std::atomic<bool>* done_;
};

void bench_task() {
  for (bool batch : {true, false}) {
    if (!wanted(batch ? "task.batch" : "task.sequential")) continue;
    const std::size_t n = scaled(100000);
    canopy::runtime rt(config());
    std::atomic<bool> done{false};
    canopy::pid d = rt.spawn<task_driver>(n, batch, &done);
    const auto t0 = clock_type::now();
    rt.send(d, 1);
    while (!done.load(std::memory_order_acquire)) std::this_thread::sleep_for(50us);
    figure(batch ? "task.async_await_batch" : "task.async_await_sequential", static_cast<double>(n) / seconds_since(t0),
           "tasks/s");
  }
  std::fprintf(stderr, "# task: 100,000 tasks from one process, all started then awaited (batch) or one by one\n");
  if (wanted("task.stream")) {
    const std::size_t n = scaled(1000000);
    canopy::runtime rt(config());
    std::atomic<bool> done{false};
    canopy::pid d = rt.spawn<stream_driver>(n, &done);
    const auto t0 = clock_type::now();
    rt.send(d, 1);
    while (!done.load(std::memory_order_acquire)) std::this_thread::sleep_for(50us);
    figure("task.async_stream_1M", static_cast<double>(n) / seconds_since(t0), "items/s");
    std::fprintf(stderr, "# task.async_stream: %zu items, max_concurrency = scheduler threads, ordered\n", n);
  }
}

// ---- registry and tables ------------------------------------------------------------------

using canopy::testing::resident_bytes;

// Runs fn(part) on `parts` threads at once; seconds from the common start to the last end.
template <class F>
double on_threads(unsigned parts, F fn) {
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < parts; ++i)
    ts.emplace_back([&, i] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      fn(i);
    });
  while (ready.load() != parts) std::this_thread::yield();
  const auto t0 = clock_type::now();
  go.store(true, std::memory_order_release);
  for (auto& t : ts) t.join();
  return seconds_since(t0);
}

using key_registry = canopy::registry<std::uint64_t>;

// Registers its own key as it starts, then idles (as the anchor's registrants do).
class registrant final : public canopy::process {
 public:
  registrant(key_registry* reg, std::uint64_t key, std::atomic<std::size_t>* done) : reg_(reg), key_(key), done_(done) {}

 protected:
  void on_start() override {
    if (!reg_->register_key(key_)) std::abort();
    done_->fetch_add(1, std::memory_order_relaxed);
  }
  void receive(canopy::message&) override {}

 private:
  key_registry* reg_;
  std::uint64_t key_;
  std::atomic<std::size_t>* done_;
};

class idle final : public canopy::process {
 public:
  explicit idle(std::atomic<std::size_t>* done) : done_(done) {}

 protected:
  void on_start() override { done_->fetch_add(1, std::memory_order_relaxed); }
  void receive(canopy::message&) override {}

 private:
  std::atomic<std::size_t>* done_;
};

// Every key 1..n once, in the anchors' scrambled order.
std::uint64_t scrambled(std::uint64_t k, std::uint64_t n) { return (k * 7919) % n + 1; }

void bench_registry() {
  const std::size_t n = scaled(1000000);
  // Memory: the same number of idle processes without keys, for the baseline.
  long process_only = 0;
  {
    canopy::runtime rt(config());
    std::atomic<std::size_t> done{0};
    const long rss0 = resident_bytes();
    for (std::size_t i = 0; i < n; ++i) (void)rt.spawn<idle>(&done);
    while (done.load() != n) std::this_thread::sleep_for(1ms);
    process_only = resident_bytes() - rss0;
  }
  canopy::runtime rt(config());
  auto reg = key_registry::start(rt, {.name = "bench"});
  if (!reg) std::abort();
  std::atomic<std::size_t> done{0};
  const long rss0 = resident_bytes();
  const auto t0 = clock_type::now();
  for (std::size_t i = 1; i <= n; ++i) (void)rt.spawn<registrant>(&*reg, i, &done);
  while (done.load(std::memory_order_relaxed) != n) std::this_thread::sleep_for(50us);
  const double secs = seconds_since(t0);
  const long with_keys = resident_bytes() - rss0;
  figure("registry.register_1M", static_cast<double>(n) / secs, "keys/s");
  figure("registry.bytes_per_key", static_cast<double>(with_keys - process_only) / static_cast<double>(n), "bytes");
  for (unsigned readers : {1u, 2u}) {
    const double d = on_threads(readers, [&](unsigned) {
      std::size_t found = 0;
      for (std::uint64_t k = n; k > 0; --k) found += reg->lookup(scrambled(k, n)).size();
      if (found != n) std::abort();
    });
    figure(readers == 1 ? "registry.lookup.1thread" : "registry.lookup.2threads",
           static_cast<double>(n) * readers / d, "lookups/s");
  }
  std::fprintf(stderr, "# registry: %zu processes each registering its own unique key (spawn included); bytes: RSS over the same processes without keys; lookups of every key in scrambled order\n", n);
}

// A process that runs one function (creating and filling tables as their owner).
class table_owner final : public canopy::process {
 public:
  explicit table_owner(std::function<void()> fn) : fn_(std::move(fn)) {}

 protected:
  void on_start() override { fn_(); }
  void receive(canopy::message&) override {}

 private:
  std::function<void()> fn_;
};

void bench_table() {
  using int_table = canopy::table<std::int64_t, std::int64_t>;
  const std::size_t n = scaled(1000000);
  canopy::runtime rt(config());
  auto make = [&] {
    std::optional<int_table> made;
    std::atomic<std::size_t> done{0};
    (void)rt.spawn<table_owner>([&] {
      made = *int_table::create({.access = canopy::table_access::everyone});
      done = 1;
    });
    while (done.load() == 0) std::this_thread::sleep_for(100us);
    return *made;
  };
  {
    auto t = make();
    const double d = on_threads(1, [&](unsigned) {
      for (std::size_t i = 1; i <= n; ++i) t.insert(static_cast<std::int64_t>(i), static_cast<std::int64_t>(i));
    });
    figure("table.insert.1thread", static_cast<double>(n) / d, "ops/s");
  }
  auto t = make();
  const long rss0 = resident_bytes();
  const double d2 = on_threads(2, [&](unsigned part) {
    const std::size_t half = n / 2;
    const std::size_t from = part == 0 ? 1 : half + 1;
    const std::size_t to = part == 0 ? half : n;
    for (std::size_t i = from; i <= to; ++i) t.insert(static_cast<std::int64_t>(i), static_cast<std::int64_t>(i));
  });
  const long rss1 = resident_bytes();
  figure("table.insert.2threads", static_cast<double>(n) / d2, "ops/s");
  if (t.size() != n) std::abort();
  for (unsigned readers : {1u, 2u}) {
    const double d = on_threads(readers, [&](unsigned) {
      std::size_t found = 0;
      for (std::uint64_t k = n; k > 0; --k) found += t.lookup(static_cast<std::int64_t>(scrambled(k, n))) ? 1 : 0;
      if (found != n) std::abort();
    });
    figure(readers == 1 ? "table.lookup.1thread" : "table.lookup.2threads", static_cast<double>(n) * readers / d,
           "ops/s");
  }
  figure("table.bytes_per_entry", static_cast<double>(t.memory()) / static_cast<double>(n), "bytes");
  figure("table.rss_bytes_per_entry", static_cast<double>(rss1 - rss0) / static_cast<double>(n), "bytes");
  std::fprintf(stderr, "# table: set of (int64, int64), public; %zu inserts from 1 and 2 threads, lookups of every key in scrambled order; bytes: table::memory() and RSS\n", n);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
      scale = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = static_cast<unsigned>(std::atoi(argv[++i]));
    } else if (argv[i][0] != '-') {
      areas.emplace_back(argv[i]);
    } else {
      std::fprintf(stderr, "usage: %s [--scale F] [--threads N] [restart|dynsup|task|task.batch|task.sequential|task.stream|registry|table ...]\n", argv[0]);
      return 2;
    }
  }
  if (wanted("restart")) bench_restart();
  if (wanted("dynsup")) bench_dynsup();
  if (wanted("task")) bench_task();
  if (wanted("registry")) bench_registry();
  if (wanted("table")) bench_table();
  return 0;
}
