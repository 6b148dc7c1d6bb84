// A tour of canopy::core, printed as it happens: processes, a call, a crash seen through
// a link and a monitor, a timer. tools/launch runs it until the apps exist.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "canopy/core/process.hpp"
#include "canopy/core/runtime.hpp"

using namespace std::chrono_literals;

struct get {};
struct add {
  int n;
};
struct boom {};

// A counter: casts change it, calls read it, `boom` crashes it.
class counter final : public canopy::process {
 protected:
  void receive(canopy::message& m) override {
    if (auto* a = m.get<add>()) value_ += a->n;
    if (m.get<get>()) reply(m.reply_to(), value_);
    if (m.get<boom>()) throw std::runtime_error("counter overflowed on purpose");
  }

 private:
  int value_ = 0;
};

struct start {};
struct tick {};

// Watches the counter through a link (trapping exits) and a monitor, and reads it with a
// call from inside a process (the process parks; no scheduler thread is blocked).
class observer final : public canopy::process {
 public:
  explicit observer(canopy::pid counter) : counter_(std::move(counter)) {}

 protected:
  void on_start() override {
    process_flag(canopy::trap_exit::on);
    link(counter_);
    monitor(counter_);
    std::printf("observer %s linked to and monitoring counter %s\n", self().to_string().c_str(),
                counter_.to_string().c_str());
  }
  void receive(canopy::message& m) override {
    if (m.get<start>()) read_then_crash();
    if (m.get<tick>()) {
      std::printf("timer fired after 50 ms\n");
      ticked_ = true;
    }
    if (auto* e = m.get<canopy::exit_message>())
      std::printf("exit signal from %s: %s\n", e->from.to_string().c_str(), e->reason.to_string().c_str());
    if (auto* d = m.get<canopy::down_message>()) {
      std::printf("down from %s: %s\n", d->who.to_string().c_str(), d->reason.to_string().c_str());
      down_ = true;
    }
    if (ticked_ && down_) exit(canopy::exit_reason::normal());
  }

 private:
  canopy::async read_then_crash() {
    auto value = co_await call<int>(counter_, get{});
    std::printf("counter reads %d (called from inside a process)\n", value.value_or(-1));
    send_after(50ms, self(), tick{});
    send(counter_, boom{});
  }
  canopy::pid counter_;
  bool ticked_ = false;
  bool down_ = false;
};

int main() {
  auto logger = std::make_shared<spdlog::logger>("canopy", std::make_shared<spdlog::sinks::stdout_color_sink_mt>());
  canopy::runtime rt({.logger = logger});
  std::printf("runtime up: %u scheduler threads\n", rt.scheduler_threads());

  canopy::pid c = rt.spawn<counter>();
  for (int i = 1; i <= 10; ++i) rt.send(c, add{i});
  auto sum = rt.call<int>(c, get{});
  std::printf("counter %s holds %d after ten casts (called from main)\n", c.to_string().c_str(), sum.value_or(-1));

  canopy::pid o = rt.spawn<observer>(c);
  auto done = rt.watch(o);
  rt.send(o, start{});
  auto reason = done.wait(5s);
  std::printf("observer exited: %s\n", reason ? reason->to_string().c_str() : reason.error().to_string().c_str());
  std::printf("live processes: %zu; shutting down\n", rt.process_count());
  return reason ? 0 : 1;
}
