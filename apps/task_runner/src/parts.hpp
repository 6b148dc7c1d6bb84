#pragma once
// Internal: what the task runner's server and workers share (see app.hpp for the tree).

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "canopy/app/application.hpp"
#include "canopy/core/clock.hpp"
#include "canopy/core/pid.hpp"
#include "canopy/task_app/app.hpp"
#include "canopy/task_app/journal.hpp"
#include "canopy/task_app/kinds.hpp"
#include "canopy/task_app/task_book.hpp"

namespace canopy::task_app {

inline constexpr const char* server_name = "task_runner.server";
inline constexpr const char* workers_name = "task_runner.workers";

class exec_pool;
struct exec_pool_deleter {
  void operator()(exec_pool* p) const noexcept;  // exec.cpp, where exec_pool is complete
};
using exec_pool_ptr = std::unique_ptr<exec_pool, exec_pool_deleter>;

// One per start of the app. The book and the journal live here, not in the server
// process, so a crash of the server loses nothing (its restart takes them over).
struct runner_env {
  runner_env(canopy::app::context& c, options o, kinds k);
  ~runner_env();

  canopy::app::context* ctx;
  options opts;
  kinds table;
  task_book book;
  std::unique_ptr<journal_writer> journal;  // null when the journal is off
  exec_pool_ptr exec;                       // null unless exec is enabled
  bool loaded = false;                      // the journal was replayed (first server start)

  // Task times are wall-clock ms; the runtime's timers run on its own clock (virtual in
  // tests). now_ms() is the wall clock as of the start plus the runtime clock's progress,
  // so the two agree — and tests that advance a virtual clock move task time too.
  [[nodiscard]] std::uint64_t now_ms() const;
  [[nodiscard]] time_point at(std::uint64_t ms) const;

  // The server as it is now (a journal callback runs on the writer thread).
  void set_server(pid p);
  [[nodiscard]] pid server() const;

 private:
  std::uint64_t wall_base_;
  time_point mono_base_;
  mutable std::mutex mu_;
  pid server_;
};

// Worker -> server: an attempt's end.
struct attempt_done {
  std::uint64_t number;
  unsigned attempt;
  bool ok;
  std::optional<wire::value> result;
  std::optional<task_error> error;
};

// Journal writer thread -> server.
struct journal_durable {
  std::uint64_t seq;
  bool ok;
  std::string why;
};

// The worker process's child spec for one attempt (worker.cpp).
child_spec worker_spec(const std::shared_ptr<runner_env>& env, pid server, const task& t);
// The server's (server.cpp).
child_spec server_spec(const std::shared_ptr<runner_env>& env);
// exec as a kind (exec.cpp); the pool waits on children on its own threads.
kind_function exec_kind(exec_pool& pool);
exec_pool_ptr make_exec_pool(const exec_options& o);
// Why an exec task may not run: unauthorized (disabled, not on the allow-list) or
// invalid_args (no argv), or nothing.
std::optional<std::pair<wire::error_code, std::string>> exec_refusal(const exec_options& o, const msgpack::object& args);

}  // namespace canopy::task_app
