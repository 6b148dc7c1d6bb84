#pragma once
// kinds: what a task runs. A kind is a function given a `job` in the task's own worker
// process; it finishes the attempt with job.succeed / job.fail, or asks to continue later
// (job.after) — never by blocking: the worker is a process on a scheduler thread.
// Thread-safety: a kinds table is filled before the app starts and only read afterwards;
// a job is used from its worker process only.
//
//   canopy::task_app::kinds k = canopy::task_app::kinds::builtin();
//   k.add("resize", [](canopy::task_app::job& j) {
//     auto width = j.args_object() ... ;
//     j.succeed(canopy::wire::value::of_int(42));
//   });
//   canopy::task_app::app runner(std::move(k));
//
// An exception escaping a kind fails the attempt with its what() (error kind "exception");
// canopy::process_exit (what the built-in `crash` throws) kills the worker process instead,
// which the runner sees as a crash (error kind "crash"). Either counts as a failed attempt.
// A kind that returns without finishing and without `after` fails ("the kind neither
// finished nor continued").
// Built-ins: echo (result = args), sleep (args.ms, then succeeds with nil), fail
// (args.message: raises it), crash (the worker process dies), and exec (argv; off unless
// the config enables it with an allow-list; see exec.hpp).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "canopy/wire/value.hpp"

namespace canopy {
class runtime;
}

namespace canopy::task_app {

class job {
 public:
  virtual ~job() = default;
  [[nodiscard]] virtual const wire::value& args() const noexcept = 0;
  // args() decoded (valid while the job is).
  [[nodiscard]] virtual const msgpack::object& args_object() const noexcept = 0;
  [[nodiscard]] virtual const std::string& task_id() const noexcept = 0;
  [[nodiscard]] virtual unsigned attempt() const noexcept = 0;
  [[nodiscard]] virtual runtime& rt() const noexcept = 0;

  virtual void succeed(wire::value result) = 0;
  virtual void fail(std::string message, std::string kind = "failed") = 0;
  // Runs `then` in the worker after `delay` (a timer, not a sleep).
  virtual void after(std::chrono::milliseconds delay, std::function<void(job&)> then) = 0;
  // Runs `then` in the worker when `deliver` is called, from any thread (a result computed
  // elsewhere: exec's helper thread). `deliver` does nothing once the attempt is over.
  using delivery = std::function<void(std::function<void(job&)> then)>;
  [[nodiscard]] virtual delivery deliverer() = 0;
  // Called when the attempt ends early (timeout, cancel, the app stops): release what
  // runs outside the worker (exec kills its child). Runs in the worker's destructor.
  virtual void on_abandon(std::function<void()> release) = 0;
};

using kind_function = std::function<void(job&)>;

class kinds {
 public:
  // echo, sleep, fail, crash (exec is added by the app when config enables it).
  static kinds builtin();

  // Adds or replaces a kind.
  void add(std::string name, kind_function fn) { table_[std::move(name)] = std::move(fn); }
  [[nodiscard]] const kind_function* find(const std::string& name) const {
    auto it = table_.find(name);
    return it == table_.end() ? nullptr : &it->second;
  }
  [[nodiscard]] const std::map<std::string, kind_function>& all() const noexcept { return table_; }

 private:
  std::map<std::string, kind_function> table_;
};

}  // namespace canopy::task_app
