#pragma once
// Test helpers for the core suite: a process scripted by lambdas that exposes the
// protected process API, and a thread-safe recorder of what processes observed.

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "canopy/core/process.hpp"
#include "canopy/core/runtime.hpp"
#include "canopy/testing/wait.hpp"

namespace canopy::test {

class scripted : public process {
 public:
  using on_message_fn = std::function<void(scripted&, message&)>;
  using on_init_fn = std::function<void(scripted&)>;

  explicit scripted(on_message_fn on_message, on_init_fn on_init = {})
      : on_message_(std::move(on_message)), on_init_(std::move(on_init)) {}

  using process::await_down;
  using process::call;
  using process::cancel_timer;
  using process::demonitor;
  using process::exit;
  using process::link;
  using process::monitor;
  using process::monitor_and_exit;
  using process::process_flag;
  using process::register_name;
  using process::reply;
  using process::self;
  using process::send;
  using process::send_after;
  using process::spawn;
  using process::spawn_link;
  using process::spawn_monitor;
  using process::system;
  using process::traps_exits;
  using process::unlink;

 protected:
  void on_start() override {
    if (on_init_) on_init_(*this);
  }
  void receive(message& m) override {
    if (on_message_) on_message_(*this, m);
  }

 private:
  on_message_fn on_message_;
  on_init_fn on_init_;
};

// Lines recorded by processes, read by the test thread.
class recorder {
 public:
  void push(std::string line) {
    std::lock_guard lk(mu_);
    lines_.push_back(std::move(line));
  }
  std::vector<std::string> lines() const {
    std::lock_guard lk(mu_);
    return lines_;
  }
  std::size_t size() const {
    std::lock_guard lk(mu_);
    return lines_.size();
  }
  // Waits (with a deadline) until at least n lines were recorded.
  bool wait_for(std::size_t n) const {
    return canopy::testing::wait_until([&] { return size() >= n; });
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// A process that records every message it gets: exit_message, down_message, int, string.
inline scripted::on_message_fn record_into(std::shared_ptr<recorder> rec) {
  return [rec](scripted&, message& m) {
    if (auto* e = m.get<exit_message>()) {
      rec->push("exit " + e->reason.to_string());
    } else if (auto* d = m.get<down_message>()) {
      rec->push("down " + d->reason.to_string());
    } else if (auto* i = m.get<int>()) {
      rec->push("int " + std::to_string(*i));
    } else if (auto* s = m.get<std::string>()) {
      rec->push(*s);
    } else {
      rec->push("other " + m.type_name());
    }
  };
}

// Messages that tell a scripted process to do something (test vocabulary).
struct crash_now {};
struct stop_now {
  exit_reason reason;
};

}  // namespace canopy::test
