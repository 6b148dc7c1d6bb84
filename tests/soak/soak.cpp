// canopy-soak (tools/soak runs it): the whole umbrella under a mixed load while faults are injected
// on a schedule, then a check of what must have held, printed as a table.
//
//   canopy-soak --minutes 2 [--seed N] [--bin-dir build/release] [--launcher PATH]
//
// Load (one thread each, every acknowledged operation recorded): cache incr on ten
// counters; session open + send; task submit (echo, unique keys); registry lookups; a good
// client's cache gets, timed. Faults, one every few seconds, drawn from the seed: kill -9 of
// a random app, SIGSTOP then SIGCONT of an app for 2 s, a flood of garbage frames from 20
// peers, a client outpacing an app (four sockets sending without waiting for replies), a
// subscriber that connects to every app's events and never reads. Sampled: each
// app's RSS every second. Checked at the end (after the umbrella is back up):
//   tasks     every acknowledged task finished (awaited while the run goes on, oldest first,
//             so the runner may forget it past max_retained_bytes once seen); none lost
//   sessions  every acknowledged message is there, unless the cache restarted after it
//             (the cache keeps no snapshot in this run: a restart loses what it held)
//   cache     each counter holds its increments acknowledged since the cache last started,
//             plus at most the unanswered ones (the cache keeps no snapshot here)
//   registry  every name listed belongs to a running app (no lease outlives its ttl)
//   launcher  still running: every restart stayed within its intensity
//   overload  each outpacing client got every request answered (ok, or overloaded: the
//             app's push-back) or its reply counted as dropped by the app (the client fell
//             behind reading; info.server.dropped), while the app's RSS stayed under 512 MiB
//   memory    each app's RSS stayed under 512 MiB, with the stalled subscriber and the flood
//   latency   the good client's p99 calm, during the garbage flood, during an overload
// Exit 0 when every invariant held.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <zmq.hpp>

#include "canopy/msg/client.hpp"
#include "canopy/msg/subscriber.hpp"
#include "canopy/testing/memory.hpp"
#include "canopy/testing/ports.hpp"
#include "canopy/testing/subprocess.hpp"
#include "canopy/testing/wait.hpp"
#include "load.hpp"

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
const std::vector<std::string> app_ids = {"registry", "cache", "session_manager", "task_runner"};

std::size_t rss_of(int os_pid) { return static_cast<std::size_t>(canopy::testing::resident_bytes(os_pid)); }

struct umbrella {
  std::map<std::string, std::string> endpoints, events;
  std::filesystem::path dir;

  // An app's OS pid (info), or -1.
  int os_pid(const std::string& app) const {
    auto c = canopy::msg::client::connect(endpoints.at(app), {.send_timeout = 300ms});
    if (!c) return -1;
    auto r = (*c)->call("info", 1s);
    return r && r->ok ? static_cast<int>(canopy::wire::find(*r->result, "os_pid")->via.i64) : -1;
  }
  // Replies the app's server dropped so far (info.server.dropped: peers not reading), or 0.
  std::uint64_t dropped_replies(const std::string& app) const {
    auto c = canopy::msg::client::connect(endpoints.at(app), {.send_timeout = 300ms});
    if (!c) return 0;
    auto r = (*c)->call("info", 1s);
    if (!r || !r->ok) return 0;
    const msgpack::object* server = canopy::wire::find(*r->result, "server");
    const msgpack::object* dropped = server ? canopy::wire::find(*server, "dropped") : nullptr;
    return dropped ? dropped->via.u64 : 0;
  }
  bool all_up() const {
    for (const auto& app : app_ids)
      if (os_pid(app) < 0) return false;
    return true;
  }
};

// The end of the run, which every paced loop waits on: a loop's pause between two
// operations is a wait for this with a deadline, so the load stops at once when it comes.
class stop_signal {
 public:
  void stop() {
    {
      std::lock_guard lk(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
  }
  [[nodiscard]] bool stopped() {
    std::lock_guard lk(mu_);
    return stopped_;
  }
  // Until `t` or the stop; true if stopped.
  bool wait_until(clock_type::time_point t) {
    std::unique_lock lk(mu_);
    return cv_.wait_until(lk, t, [&] { return stopped_; });
  }
  bool wait_for(clock_type::duration d) { return wait_until(clock_type::now() + d); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

// One operation kind's record.
struct tally {
  std::atomic<std::uint64_t> acked{0}, refused{0}, unreachable{0};
};

class soak {
 public:
  soak(umbrella& u, std::uint64_t seed) : u_(u), rng_(seed) {}

  void run_for(std::chrono::seconds length) {
    const auto until = clock_type::now() + length;
    std::vector<std::thread> load;
    load.emplace_back([&] { cache_load(); });
    load.emplace_back([&] { session_load(); });
    load.emplace_back([&] { task_load(); });
    load.emplace_back([&] { task_checker(); });
    load.emplace_back([&] { registry_load(); });
    load.emplace_back([&] { good_client(); });
    load.emplace_back([&] { sample_memory(); });
    // The schedule: a baseline, then a fault every 3 to 5 s, then the end.
    auto next = clock_type::now() + 3s;
    while (next + 3s < until) {
      end_.wait_until(next);
      inject();
      next = clock_type::now() + std::chrono::seconds(3 + rng_() % 3);
    }
    end_.wait_until(until);
    end_.stop();
    for (auto& t : load) t.join();
    stalled_.clear();
  }

  // The checks; true when all held.
  bool check() {
    std::printf("\n%-10s %-62s %s\n", "INVARIANT", "WHAT WAS SEEN", "HOLDS");
    bool all = true;
    auto row = [&](const char* name, const std::string& seen, bool holds) {
      std::printf("%-10s %-62s %s\n", name, seen.c_str(), holds ? "yes" : "NO");
      all = all && holds;
    };
    // Back up: every app answers.
    const bool up = canopy::testing::wait_until([&] { return u_.all_up(); }, 60s);
    row("umbrella", up ? "every app answers after the run" : "an app did not come back", up);

    // tasks: those the checker had not seen finished yet
    std::size_t finished = tasks_finished_, lost = tasks_lost_;
    const std::size_t seen_during_run = tasks_finished_;
    {
      auto c = canopy::msg::client::connect(u_.endpoints["task_runner"]);
      std::lock_guard lk(mu_);
      for (const std::string& id : unchecked_tasks_) {
        auto r = (*c)->call("await", 2, [&](canopy::wire::packer& p) {
          p.pack("task_id");
          p.pack(id);
          p.pack("timeout_ms");
          p.pack(30000);
        }, 40s);
        if (r && r->ok) {
          ++finished;
        } else {
          ++lost;
        }
      }
    }
    row("tasks", std::to_string(tasks_acknowledged_) + " acknowledged, " + std::to_string(finished) + " finished (" +
                     std::to_string(seen_during_run) + " seen during the run), " + std::to_string(lost) + " lost",
        lost == 0 && finished == tasks_acknowledged_);

    // sessions and the cache: losses allowed only past a restart of the cache.
    const bool cache_restarted = restarts_["cache"] > 0;
    std::size_t short_sessions = 0;
    {
      auto c = canopy::msg::client::connect(u_.endpoints["session_manager"]);
      std::lock_guard lk(mu_);
      for (const auto& entry : sent_) {
        const std::string& user = entry.first;  // named: clang 14 lambdas cannot capture bindings
        const std::uint64_t seq = entry.second;
        auto r = (*c)->call("get", 1, [&](canopy::wire::packer& p) {
          p.pack("user");
          p.pack(user);
        }, 10s);
        std::uint64_t count = 0;
        if (r && r->ok) count = canopy::wire::find(*r->result, "message_count")->via.u64;
        if (count < std::min<std::uint64_t>(seq, 100)) ++short_sessions;
      }
    }
    row("sessions",
        std::to_string(sent_.size()) + " users, " + std::to_string(short_sessions) + " missing acknowledged messages" +
            (cache_restarted ? " (cache restarted)" : ""),
        short_sessions == 0 || cache_restarted);
    std::size_t off = 0;
    {
      auto c = canopy::msg::client::connect(u_.endpoints["cache"]);
      for (int k = 0; k < 10; ++k) {
        auto r = (*c)->call("get", 1, [&](canopy::wire::packer& p) {
          p.pack("key");
          p.pack("counter:" + std::to_string(k));
        }, 10s);
        std::int64_t v = 0;
        if (r && r->ok && canopy::wire::find(*r->result, "found")->via.boolean)
          v = canopy::wire::find(*r->result, "value")->via.i64;
        // Acknowledged by the cache as it is now: at least those after it answered, at most
        // those after the old one died, plus the unanswered ones.
        const std::uint64_t least = counters_[k].load() - base_[k].load();
        const std::uint64_t most = counters_[k].load() - base_lo_[k].load() + unknown_[k].load();
        if (static_cast<std::uint64_t>(v) < least || static_cast<std::uint64_t>(v) > most) {
          ++off;
          std::printf("  counter:%d holds %lld; acknowledged by this cache: %llu to %llu\n", k, static_cast<long long>(v),
                      static_cast<unsigned long long>(least), static_cast<unsigned long long>(most));
        }
      }
    }
    row("cache", std::to_string(cache_.acked.load()) + " incr acknowledged; " + std::to_string(off) +
                     " of 10 counters off their acknowledged increments since the cache's last start",
        off == 0);

    // registry: a killed app's name may stay until its lease's ttl (10 s) runs out, and no
    // longer — then every name listed is held by a live app, the three of them registered.
    std::string names;
    const bool names_ok = canopy::testing::wait_until([&] {
      names.clear();
      auto c = canopy::msg::client::connect(u_.endpoints["registry"]);
      auto r = (*c)->call("list", 10s);
      const msgpack::object* listed = r && r->ok ? canopy::wire::find(*r->result, "names") : nullptr;
      if (listed == nullptr) return false;
      bool alive = listed->via.array.size == 3;
      for (std::uint32_t i = 0; i < listed->via.array.size; ++i) {
        const auto& n = listed->via.array.ptr[i];
        names += canopy::wire::find(n, "name")->as<std::string>() + " ";
        const int pid = static_cast<int>(canopy::wire::find(*canopy::wire::find(n, "meta"), "os_pid")->via.i64);
        if (::kill(pid, 0) != 0) alive = false;  // a name whose holder is gone
      }
      return alive;
    }, 15s);
    row("registry", "listed within a lease's ttl: " + names, names_ok);

    std::string faults;
    for (const auto& [what, n] : faults_) faults += what + " " + std::to_string(n) + ", ";
    row("faults", faults.empty() ? "none" : faults.substr(0, faults.size() - 2), true);
    std::string rs;
    for (const auto& [app, n] : restarts_) rs += app + " " + std::to_string(n) + " ";
    row("launcher", "restarted: " + (rs.empty() ? std::string("none") : rs), true);

    // overload: every request answered (ok, or overloaded as push-back) or its reply
    // counted as dropped by the app (the client fell behind reading), memory bounded.
    for (const overload_run& o : overloads_) {
      const std::string seen =
          o.app + ": " + std::to_string(o.sent) + " sent (" + std::to_string(o.blocked) + " client HWM waits), " +
          std::to_string(o.ok) + " ok, " + std::to_string(o.overloaded) + " overloaded, " +
          std::to_string(o.other) + " other, " + std::to_string(o.unanswered()) + " unanswered (" +
          std::to_string(o.dropped) + " dropped at the app's send HWM); RSS " + std::to_string(o.rss_before >> 20) +
          " -> " + std::to_string(o.rss_peak >> 20) + " MiB";
      row("overload", seen,
          o.unanswered() <= o.dropped && o.other == 0 && o.rss_peak < (std::size_t{512} << 20));
    }

    std::string mem;
    bool bounded = true;
    for (const auto& [app, peak] : peak_rss_) {
      mem += app + " " + std::to_string(peak >> 20) + " MiB ";
      bounded = bounded && peak < (std::size_t{512} << 20);
    }
    row("memory", "peak RSS: " + mem, bounded);

    std::lock_guard lk(mu_);
    const double before = canopy::bench::percentile(calm_us_, 0.99), during = canopy::bench::percentile(flood_us_, 0.99);
    const double overloaded = canopy::bench::percentile(overload_us_, 0.99);
    row("latency", "good client get p99: " + std::to_string(static_cast<int>(before)) + " us calm, " +
                       std::to_string(static_cast<int>(during)) + " us during floods (" +
                       std::to_string(flood_us_.size()) + " samples), " + std::to_string(static_cast<int>(overloaded)) +
                       " us while a client outpaces an app (" + std::to_string(overload_us_.size()) + ")",
        flood_us_.empty() || during < 1e6);
    return all;
  }

 private:
  // A client that reconnects after a failure (the app may be restarting).
  struct peer {
    std::string endpoint;
    std::unique_ptr<canopy::msg::client> c;
    std::optional<canopy::msg::reply> call(std::string_view op, std::uint32_t pairs,
                                           const std::function<void(canopy::wire::packer&)>& w) {
      if (!c) {
        auto fresh = canopy::msg::client::connect(endpoint, {.send_timeout = 500ms});
        if (!fresh) return std::nullopt;
        c = std::move(*fresh);
      }
      auto r = c->call(op, pairs, w, 2s);
      if (!r) {
        c.reset();  // in-flight requests are lost with the socket: a fresh one next time
        return std::nullopt;
      }
      return *r;
    }
  };

  void cache_load() {
    peer p{u_.endpoints["cache"], nullptr};
    std::uint64_t i = 0;
    while (!end_.stopped()) {
      const int k = static_cast<int>(i++ % 10);
      auto r = p.call("incr", 1, [&](canopy::wire::packer& w) {
        w.pack("key");
        w.pack("counter:" + std::to_string(k));
      });
      if (!r) {
        ++cache_.unreachable;
        ++unknown_[k];  // it may have been applied (a reply lost, a stopped cache resumed)
      } else if (r->ok) {
        ++cache_.acked;
        ++counters_[k];
      } else {
        ++cache_.refused;
      }
      (void)end_.wait_for(2ms);  // the pace
    }
  }

  void session_load() {
    peer p{u_.endpoints["session_manager"], nullptr};
    std::uint64_t i = 0;
    while (!end_.stopped()) {
      const std::string user = "soak:" + std::to_string(i++ % 50);
      auto o = p.call("open", 1, [&](canopy::wire::packer& w) {
        w.pack("user");
        w.pack(user);
      });
      if (!o || !o->ok) continue;
      auto r = p.call("send", 2, [&](canopy::wire::packer& w) {
        w.pack("user");
        w.pack(user);
        w.pack("message");
        w.pack(i);
      });
      if (r && r->ok) {
        std::lock_guard lk(mu_);
        sent_[user] = canopy::wire::find(*r->result, "seq")->via.u64;
      }
      (void)end_.wait_for(5ms);  // the pace
    }
  }

  void task_load() {
    peer p{u_.endpoints["task_runner"], nullptr};
    std::uint64_t i = 0;
    while (!end_.stopped()) {
      auto r = p.call("submit", 2, [&](canopy::wire::packer& w) {
        w.pack("kind");
        w.pack("echo");
        w.pack("key");
        w.pack("soak-" + std::to_string(i++));
      });
      if (r && r->ok) acknowledged_task(*r->result);
      (void)end_.wait_for(5ms);  // the pace
    }
  }

  void acknowledged_task(const msgpack::object& result) {
    std::lock_guard lk(mu_);
    unchecked_tasks_.push_back(canopy::wire::find(result, "task_id")->as<std::string>());
    ++tasks_acknowledged_;
  }

  // Awaits acknowledged tasks as the run goes on, oldest first: the runner keeps finished
  // tasks within max_retained_bytes and forgets the oldest past it, so a run that
  // acknowledges more than that must see them finish before they go. ok is finished and
  // not_found is lost; no answer (the app down or stopped) or any other error (timeout:
  // not finished yet; overloaded, unavailable: busy or restarting) is asked again.
  void task_checker() {
    peer p{u_.endpoints["task_runner"], nullptr};
    while (!end_.stopped()) {
      std::string id;
      {
        std::lock_guard lk(mu_);
        if (!unchecked_tasks_.empty()) id = unchecked_tasks_.front();
      }
      if (id.empty()) {
        (void)end_.wait_for(20ms);
        continue;
      }
      auto r = p.call("await", 2, [&](canopy::wire::packer& w) {
        w.pack("task_id");
        w.pack(id);
        w.pack("timeout_ms");
        w.pack(1000);
      });
      if (!r) {
        (void)end_.wait_for(50ms);
        continue;
      }
      if (!r->ok && r->code != canopy::wire::error_code::not_found) {
        (void)end_.wait_for(20ms);
        continue;
      }
      std::lock_guard lk(mu_);
      unchecked_tasks_.pop_front();
      if (r->ok) {
        ++tasks_finished_;
      } else {
        ++tasks_lost_;
        std::fprintf(stderr, "soak: task %s lost: %s\n", id.c_str(), r->message.c_str());
      }
    }
  }

  void registry_load() {
    peer p{u_.endpoints["registry"], nullptr};
    while (!end_.stopped()) {
      (void)p.call("lookup", 1, [](canopy::wire::packer& w) {
        w.pack("name");
        w.pack("cache");
      });
      (void)end_.wait_for(20ms);  // the pace
    }
  }

  void good_client() {
    peer p{u_.endpoints["cache"], nullptr};
    while (!end_.stopped()) {
      const auto t0 = clock_type::now();
      auto r = p.call("get", 1, [](canopy::wire::packer& w) {
        w.pack("key");
        w.pack("counter:0");
      });
      const double us = std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
      if (r && r->ok) {
        std::lock_guard lk(mu_);
        (flooding_ ? flood_us_ : overloading_ ? overload_us_ : calm_us_).push_back(us);
      }
      (void)end_.wait_for(10ms);  // the pace
    }
  }

  void sample_memory() {
    while (!end_.stopped()) {
      for (const auto& app : app_ids) {
        const int pid = u_.os_pid(app);
        if (pid <= 0) continue;
        std::lock_guard lk(mu_);
        peak_rss_[app] = std::max(peak_rss_[app], rss_of(pid));
      }
      (void)end_.wait_for(1s);  // the pace
    }
  }

  void inject() {
    const unsigned pick = static_cast<unsigned>(rng_() % 5);
    const std::string app = app_ids[rng_() % app_ids.size()];
    const int pid = u_.os_pid(app);
    if (pick == 0 && pid > 0) {
      std::printf("fault: kill -9 %s (%d)\n", app.c_str(), pid);
      // Who the launcher restarts: the app, and with the registry every app (rest_for_one).
      std::map<std::string, int> before;
      for (const auto& a : app_ids)
        if (a == app || app == "registry") before[a] = u_.os_pid(a);
      ::kill(pid, SIGKILL);
      const bool cache_goes = before.count("cache") > 0;
      if (cache_goes) {
        // Increments acknowledged from here on may be the new cache's; all before it, the old's.
        const int old = before["cache"];
        (void)canopy::testing::wait_until([&] { return ::kill(old, 0) != 0; }, 20s);
        for (int k = 0; k < 10; ++k) base_lo_[k] = counters_[k].load();
      }
      ++faults_["kill -9"];
      ++restarts_[app];
      if (app == "registry")  // rest_for_one: the others restart too
        for (const auto& other : app_ids)
          if (other != "registry") ++restarts_[other];
      // Back once each of them answers from a new process (kill returns before the old
      // one is gone, and it might still answer a moment).
      (void)canopy::testing::wait_until([&] {
        for (const auto& [a, old] : before) {
          const int now = u_.os_pid(a);
          if (now <= 0 || now == old) return false;
        }
        return u_.all_up();
      }, 30s);
      if (cache_goes) {
        // ... and from here on they are all the new cache's (it started empty).
        for (int k = 0; k < 10; ++k) {
          base_[k] = counters_[k].load();
          unknown_[k] = 0;
        }
      }
    } else if (pick == 1 && pid > 0) {
      std::printf("fault: SIGSTOP %s for 2 s\n", app.c_str());
      ::kill(pid, SIGSTOP);
      (void)end_.wait_for(2s);  // the fault's length (the end cuts it short)
      ::kill(pid, SIGCONT);
      ++faults_["sigstop"];
    } else if (pick == 2) {
      std::printf("fault: garbage from 20 peers at %s for 2 s\n", app.c_str());
      flooding_ = true;
      flood(u_.endpoints[app], 2s);
      flooding_ = false;
      ++faults_["garbage flood"];
    } else if (pick == 3) {
      // Each app in turn, so a run's table has every app's figures.
      const std::string& target = app_ids[static_cast<std::size_t>(faults_["overload"]) % app_ids.size()];
      std::printf("fault: a client outpacing %s for 2 s\n", target.c_str());
      overloading_ = true;
      overload(target, 2s);
      overloading_ = false;
      ++faults_["overload"];
    } else {
      std::printf("fault: a subscriber to every app that never reads\n");
      for (const auto& a : app_ids) {
        auto s = canopy::msg::subscriber::connect(u_.events[a], {""});
        if (s) stalled_.push_back(std::move(*s));
      }
      ++faults_["stalled subscriber"];
    }
    std::fflush(stdout);
  }

  // What one overload did: requests sent as fast as the client's sockets took them, and
  // how the app pushed back.
  struct overload_run {
    std::string app;
    std::uint64_t sent = 0, blocked = 0;        // blocked: a send refused by the client's own HWM
    std::uint64_t ok = 0, overloaded = 0, other = 0;
    std::uint64_t dropped = 0;  // by the app: replies to a peer past its send HWM (this client, reading too slowly)
    std::size_t rss_before = 0, rss_peak = 0;
    [[nodiscard]] std::uint64_t unanswered() const { return sent - ok - overloaded - other; }
  };

  // The request an overload sends to `app`: a put of 100 bytes to one of 1,000 keys, a get
  // of a soak session, an echo task (recorded like the load's: it must finish), members.
  static void overload_request(msgpack::sbuffer& b, const std::string& app, std::uint64_t id) {
    msgpack::packer<msgpack::sbuffer> p(b);
    p.pack_map(3);
    p.pack("id");
    p.pack(id);
    p.pack("op");
    if (app == "cache") {
      p.pack("put");
      p.pack("args");
      p.pack_map(2);
      p.pack("key");
      p.pack("overload:" + std::to_string(id % 1000));
      p.pack("value");
      p.pack(std::string(100, 'v'));
    } else if (app == "session_manager") {
      p.pack("get");
      p.pack("args");
      p.pack_map(1);
      p.pack("user");
      p.pack("soak:" + std::to_string(id % 50));
    } else if (app == "task_runner") {
      p.pack("submit");
      p.pack("args");
      p.pack_map(1);
      p.pack("kind");
      p.pack("echo");
    } else {  // a group no one joins: always answered, whoever is registered at the moment
      p.pack("members");
      p.pack("args");
      p.pack_map(1);
      p.pack("group");
      p.pack("overload");
    }
  }

  // Four DEALERs (ZeroMQ's default HWM of 1,000) sending to `app` without waiting for
  // replies, reading them as they come, for `length`; then up to 10 s for the rest.
  void overload(const std::string& app, std::chrono::seconds length) {
    overload_run run{.app = app};
    const int pid = u_.os_pid(app);
    run.rss_before = run.rss_peak = pid > 0 ? rss_of(pid) : 0;
    const std::uint64_t dropped_before = u_.dropped_replies(app);
    zmq::context_t ctx(1);
    std::vector<zmq::socket_t> peers = canopy::bench::dealers(ctx, u_.endpoints[app], 4);
    const canopy::wire::decode_limits limits;
    auto drain = [&](zmq::socket_t& s) {
      zmq::message_t m;
      while (s.recv(m, zmq::recv_flags::dontwait)) {
        auto r = canopy::msg::decode_reply(m.to_string(), limits);
        if (r && r->ok) {
          ++run.ok;
          if (app == "task_runner") acknowledged_task(*r->result);
        } else if (r && r->code == canopy::wire::error_code::overloaded) {
          ++run.overloaded;
        } else {
          ++run.other;
        }
      }
    };
    const auto until = clock_type::now() + length;
    auto next_sample = clock_type::now();
    msgpack::sbuffer b;
    while (clock_type::now() < until && !end_.stopped()) {
      for (auto& s : peers) {
        for (int k = 0; k < 64; ++k) {
          b.clear();
          overload_request(b, app, run.sent + 1);
          if (!s.send(zmq::buffer(b.data(), b.size()), zmq::send_flags::dontwait)) {
            ++run.blocked;
            break;
          }
          ++run.sent;
        }
        drain(s);
      }
      if (clock_type::now() >= next_sample && pid > 0) {
        run.rss_peak = std::max(run.rss_peak, rss_of(pid));
        next_sample += 100ms;
      }
    }
    const auto grace = clock_type::now() + 10s;
    std::vector<zmq_pollitem_t> items = canopy::bench::poll_items(peers);
    while (run.unanswered() > 0 && clock_type::now() < grace) {
      zmq::poll(items, 100ms);
      for (auto& s : peers) drain(s);
    }
    if (pid > 0) run.rss_peak = std::max(run.rss_peak, rss_of(pid));
    run.dropped = u_.dropped_replies(app) - dropped_before;
    std::lock_guard lk(mu_);
    overloads_.push_back(run);
  }

  void flood(const std::string& endpoint, std::chrono::seconds length) {
    zmq::context_t ctx(1);
    std::vector<zmq::socket_t> peers;
    for (int i = 0; i < 20; ++i) {
      peers.emplace_back(ctx, zmq::socket_type::dealer);
      peers.back().set(zmq::sockopt::linger, 0);
      peers.back().set(zmq::sockopt::sndhwm, 1000);
      peers.back().connect(endpoint);
    }
    const auto until = clock_type::now() + length;
    std::string junk;
    while (clock_type::now() < until) {
      for (auto& s : peers) {
        junk.resize(1 + rng_() % 300);
        for (char& ch : junk) ch = static_cast<char>(rng_());
        (void)s.send(zmq::buffer(junk), zmq::send_flags::dontwait);
      }
      if (end_.wait_for(1ms)) break;  // the flood's pace
    }
  }

  umbrella& u_;
  std::mt19937_64 rng_;
  stop_signal end_;
  std::atomic<bool> flooding_{false}, overloading_{false};
  std::mutex mu_;
  tally cache_;
  std::array<std::atomic<std::uint64_t>, 10> counters_{};  // acknowledged increments
  std::array<std::atomic<std::uint64_t>, 10> base_{};      // ... when the cache last came up
  std::array<std::atomic<std::uint64_t>, 10> base_lo_{};   // ... when the one before it died
  std::array<std::atomic<std::uint64_t>, 10> unknown_{};   // unanswered since then
  std::map<std::string, std::uint64_t> sent_;
  std::deque<std::string> unchecked_tasks_;  // acknowledged, not yet seen finished, oldest first
  std::size_t tasks_acknowledged_ = 0, tasks_finished_ = 0, tasks_lost_ = 0;
  std::vector<double> calm_us_, flood_us_, overload_us_;
  std::map<std::string, std::size_t> peak_rss_;
  std::map<std::string, int> faults_, restarts_;
  std::vector<std::unique_ptr<canopy::msg::subscriber>> stalled_;
  std::vector<overload_run> overloads_;
};

}  // namespace

int main(int argc, char** argv) {
  double minutes = 2;
  std::uint64_t seed = 1;
  std::string bin_dir = "build/release", launcher;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--minutes" && i + 1 < argc) {
      minutes = std::atof(argv[++i]);
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--bin-dir" && i + 1 < argc) {
      bin_dir = argv[++i];
    } else if (a == "--launcher" && i + 1 < argc) {
      launcher = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--minutes N] [--seed N] [--bin-dir DIR] [--launcher PATH]\n", argv[0]);
      return 2;
    }
  }
  bin_dir = std::filesystem::absolute(bin_dir).string();
  if (launcher.empty()) launcher = bin_dir + "/tools/launcher/canopy-launch";
  umbrella u;
  u.dir = std::filesystem::temp_directory_path() / ("canopy_soak_" + std::to_string(::getpid()));
  std::filesystem::remove_all(u.dir);
  std::filesystem::create_directories(u.dir);
  {
    std::ofstream cfg(u.dir / "canopy.toml");
    cfg << "bin_dir = \"" << bin_dir << "\"\nconfig_dir = \"" << (u.dir / "none").string() << "\"\ndata_dir = \""
        << (u.dir / "data").string() << "\"\nlog_dir = \"" << (u.dir / "logs").string() << "\"\npid_file = \""
        << (u.dir / "launch.pid").string() << "\"\nmax_restarts = 100\nrestart_period_ms = 60000\n";
    for (const auto& app : app_ids) {
      u.endpoints[app] = "tcp://127.0.0.1:" + std::to_string(canopy::testing::free_tcp_port());
      u.events[app] = "tcp://127.0.0.1:" + std::to_string(canopy::testing::free_tcp_port());
      cfg << "[" << app << "]\nendpoint = \"" << u.endpoints[app] << "\"\nevents = \"" << u.events[app] << "\"\n";
    }
  }
  canopy::testing::subprocess launch({launcher, "--config", (u.dir / "canopy.toml").string()});
  if (!launch.wait_for_line("apps running", 60s)) {
    std::fprintf(stderr, "canopy-soak: the umbrella did not come up:\n%s\n", launch.output().c_str());
    return 1;
  }
  std::printf("canopy-soak: %.1f min, seed %llu, umbrella in %s\n", minutes, static_cast<unsigned long long>(seed),
              u.dir.c_str());
  std::fflush(stdout);
  soak s(u, seed);
  s.run_for(std::chrono::seconds(static_cast<long>(minutes * 60)));
  const bool held = s.check();
  launch.signal(SIGTERM);
  const auto code = launch.wait_exit(60s);
  const std::string stopped = "SIGTERM: the launcher exited " + std::to_string(code.value_or(-1));
  std::printf("%-10s %-62s %s\n", "stop", stopped.c_str(), code == 0 ? "yes" : "NO");
  std::filesystem::remove_all(u.dir);
  return held && code == 0 ? 0 : 1;
}
