// Seed: TaskRunner — jobs started and stopped under a DynamicSupervisor.
#include <string>

#include "canopy/otp/dynamic_supervisor.hpp"
#include "check.hpp"

struct status {};

class job final : public canopy::gen_server {
 public:
  explicit job(std::string name) : name_(std::move(name)) {}

 protected:
  result handle_call(canopy::message& m, const canopy::reply_address& from) override {
    if (m.get<status>()) return reply(name_ + " running");
    return gen_server::handle_call(m, from);
  }

 private:
  std::string name_;
};

// TaskRunner.start_task / stop_task.
canopy::result<canopy::pid> start_task(canopy::runtime& rt, const canopy::pid& runner, std::string name) {
  return canopy::dynamic_supervisor::start_child(
      rt, runner, canopy::child_spec::worker<job>("job", std::move(name)).restart(canopy::restart_type::temporary));
}
canopy::result<void> stop_task(canopy::runtime& rt, const canopy::pid& runner, const canopy::pid& task) {
  return canopy::dynamic_supervisor::terminate_child(rt, runner, task);
}

int main() {
  canopy::runtime rt;
  auto runner = canopy::dynamic_supervisor::start(rt, {}, "task_runner");
  check(runner.has_value(), "TaskRunner (a DynamicSupervisor) started");
  auto a = start_task(rt, *runner, "report");
  auto b = start_task(rt, *runner, "backup");
  check(a && b, "two tasks started");
  check(rt.call<std::string>(*a, status{}).value_or("") == "report running", "a task answers");
  check(canopy::dynamic_supervisor::count_children(rt, *runner)->active == 2, "two children");
  check(stop_task(rt, *runner, *a).has_value() && !rt.is_alive(*a), "stop_task stopped one");
  check(canopy::dynamic_supervisor::count_children(rt, *runner)->active == 1, "one child left");
  check(stop_task(rt, *runner, *a).code() == canopy::errc::not_found, "stopping it again: not_found");
  return 0;
}
