// Seed: Task.Supervisor — async (linked, awaited) and async_nolink (the caller survives a
// failing task and learns its exit).
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "canopy/otp/tasks.hpp"
#include "check.hpp"

struct outcome {
  std::atomic<int> done{0};
  std::string linked_result;
  std::string nolink_outcome;
};

class caller final : public canopy::process {
 public:
  caller(canopy::pid sup, outcome* out) : sup_(std::move(sup)), out_(out) {}

 protected:
  void on_start() override { go(sup_, out_); }
  void receive(canopy::message&) override {}

 private:
  static canopy::async go(canopy::pid sup, outcome* out) {
    auto t = co_await canopy::task_supervisor::async(sup, [] { return std::string("computed"); });
    out->linked_result = co_await canopy::tasks::await(t);
    auto risky = co_await canopy::task_supervisor::async_nolink(sup, []() -> int { throw std::runtime_error("boom"); });
    auto r = co_await canopy::tasks::yield(risky, std::chrono::seconds(5));
    out->nolink_outcome = r && !*r ? (*r).error().reason().to_string() : "unexpected";
    out->done = 1;
  }
  canopy::pid sup_;
  outcome* out_;
};

int main() {
  canopy::runtime rt;
  auto sup = canopy::task_supervisor::start(rt);
  check(sup.has_value(), "Task.Supervisor started");
  outcome out;
  canopy::pid c = rt.spawn<caller>(*sup, &out);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!out.done && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  check(out.done == 1, "both tasks finished");
  check(out.linked_result == "computed", "async: the awaited result");
  check(out.nolink_outcome == "{error,std::runtime_error,boom}", "async_nolink: the caller learned the exit");
  check(rt.is_alive(c), "async_nolink: the caller survived");
  return 0;
}
