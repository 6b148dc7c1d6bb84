#pragma once
// canopy-task-runner: supervised jobs with a durable journal (docs/protocol.md
// "task_runner"). Thread-safety: an application object is used by one app::instance at a
// time.
//
// Tree (task_runner.sup, rest_for_one):
//   app.control           ping / info / tree
//   task_runner.workers   DynamicSupervisor: one temporary worker process per attempt
//   task_runner.server    every op; owns the task book (task_book.hpp) and the journal
//                         (journal.hpp); starts attempts, watches each worker (monitor),
//                         times attempts out, retries with backoff, answers await when the
//                         task finishes (no thread waits), forgets finished tasks after
//                         retention
//   app.registration
// submit is answered once its record is durable (fsync policy: journal.hpp). At start the
// journal is replayed: finished tasks keep their results (until retention), tasks that
// were queued or running run again (at least once; an interrupted run counted as an
// attempt). The journal is compacted (rewritten from the live tasks) as it grows.
// Config: config/task_runner.toml.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "canopy/app/application.hpp"
#include "canopy/task_app/journal.hpp"
#include "canopy/task_app/kinds.hpp"
#include "canopy/task_app/task_book.hpp"

namespace canopy::task_app {

struct exec_options {
  bool enabled = false;
  std::vector<std::string> allow;        // executables (exact paths) that may run
  std::size_t max_output_bytes = 65536;  // per stream; the rest is cut (truncated: true)
  unsigned threads = 4;                  // helper threads waiting on children
};

struct options {
  task_book::limits limits;
  std::uint64_t max_attempts = 100;                   // a larger max_attempts: invalid_args
  std::size_t max_args_bytes = 65536;                 // a task's args, msgpack-encoded
  std::chrono::milliseconds max_await{300000};        // longest await timeout_ms
  bool journal = true;                                // false: nothing survives a restart
  std::string journal_path;                           // empty: <data_dir>/task_runner.journal
  fsync_policy fsync = fsync_policy::group;
  std::chrono::milliseconds fsync_window{2};          // group commit's gathering time
  std::uint64_t compact_after = 200000;               // records beyond the live tasks' count
  exec_options exec;
};

struct runner_env;

class app final : public canopy::app::application {
 public:
  explicit app(kinds k = kinds::builtin());
  ~app() override;

  [[nodiscard]] std::string_view id() const override { return "task_runner"; }
  [[nodiscard]] std::string default_endpoint() const override { return "tcp://127.0.0.1:7430"; }
  [[nodiscard]] std::string default_events_endpoint() const override { return "tcp://127.0.0.1:7431"; }
  void configure(canopy::app::config& c) override;
  [[nodiscard]] supervisor_flags flags() const override;
  std::vector<child_spec> children(canopy::app::context& ctx) override;
  [[nodiscard]] std::string_view route(std::string_view op) const override;
  void stopped(canopy::app::context& ctx) override;

  // For tests: set before start (configure() does it from the file).
  void set_options(const options& o) { options_ = o; }
  // The kinds tasks may name (add your own before start).
  [[nodiscard]] kinds& kind_table() noexcept { return kinds_; }

 private:
  options options_;
  kinds kinds_;
  std::shared_ptr<runner_env> env_;
};

}  // namespace canopy::task_app
