#pragma once
// supervisor: OTP's supervisor (SEMANTICS.md 1-25), statement for statement.
// Thread-safety: a supervisor is a process; the static admin API blocks a non-process
// thread (inside a process, co_await call with the request types below).
//
// Lifecycle. start/start_link validate the flags and child specs (two children with one id,
// an empty id or no start function: errc::invalid_argument), then start the children in
// list order and return only when all started (5). If one fails, those already started are
// stopped in reverse order and start answers start_failed with reason
// {failed_to_start_child,<id>: <reason>} (6). Children stop in reverse start order, one at a
// time (7), each by its shutdown policy, watched by a monitor (8-11).
//
// Restarts. permanent children always, transient unless the exit is clean, temporary never
// (13-15; a temporary child is forgotten, also when stopped as a bystander). one_for_one
// restarts the failed child (19); one_for_all stops the others in reverse order and restarts
// all in start order (20); rest_for_one stops the children started after the failed one
// and restarts it and them in order (21). One failure is one restart toward the intensity
// (22). A failed restart marks the child `restarting` and is retried by a message the
// supervisor sends itself; each retry counts; the API still answers meanwhile (23). More
// than max_restarts in max_seconds (monotonic, injectable clock): stop all children, exit
// with shutdown — the parent then applies its own policy (24-25).
//
// A supervisor traps exits. An exit signal from its parent (or from the runtime's
// shutdown) stops its children in reverse order and then the supervisor, with that reason.
//
//   auto sup = canopy::supervisor::start(rt, {.strategy = canopy::strategy::one_for_all},
//       {canopy::child_spec::worker<db>("db"), canopy::child_spec::worker<cache>("cache")});

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "canopy/core/clock.hpp"
#include "canopy/core/pid.hpp"
#include "canopy/core/process.hpp"
#include "canopy/core/result.hpp"
#include "canopy/core/runtime.hpp"
#include "canopy/otp/child_spec.hpp"

namespace canopy {

enum class strategy : std::uint8_t { one_for_one, one_for_all, rest_for_one };
[[nodiscard]] const char* to_string(strategy s) noexcept;

// SEMANTICS 3: Elixir's defaults.
struct supervisor_flags {
  canopy::strategy strategy = strategy::one_for_one;
  unsigned max_restarts = 3;
  duration max_seconds = std::chrono::seconds(5);
};

struct child_info {
  std::string id;
  pid child;  // null when not running
  child_type type;
  restart_type restart;
  bool restarting;
};

struct child_counts {
  std::size_t specs = 0;
  std::size_t active = 0;
  std::size_t supervisors = 0;
  std::size_t workers = 0;
};

// A supervisor's live tree: itself, and each child (child supervisors recursively).
struct supervision_tree {
  std::string id;
  pid self;
  child_type type = child_type::supervisor;
  canopy::strategy strategy = strategy::one_for_one;  // supervisors only
  std::uint64_t restarts = 0;                         // restarts this supervisor made
  bool restarting = false;
  std::vector<supervision_tree> children;
  // Children left out of `children` (a DynamicSupervisor lists at most
  // dynamic_supervisor::tree_children_listed of its children).
  std::uint64_t omitted = 0;
};
// Renders a tree as indented text, one line per node.
std::string render(const supervision_tree& tree);

// Requests of the admin API, for co_await call<Reply>(sup, request) inside a process.
struct start_child_request {
  child_spec spec;
};
struct terminate_child_request {
  std::string id;
};
struct restart_child_request {
  std::string id;
};
struct delete_child_request {
  std::string id;
};
struct which_children_request {};
struct count_children_request {};
struct tree_request {};

class supervisor final : public process {
 public:
  supervisor(supervisor_flags flags, std::vector<child_spec> children);

  // From a non-process thread: blocks until every child started.
  static canopy::result<pid> start(runtime& rt, supervisor_flags flags, std::vector<child_spec> children,
                                   process_name name = {});
  // From inside a process (co_await it): a supervisor linked to the caller.
  static child_start start_link(supervisor_flags flags, std::vector<child_spec> children,
                                process_name name = {});
  // A child spec for a supervisor under another one (type supervisor, shutdown infinity).
  static child_spec spec(std::string id, supervisor_flags flags, std::vector<child_spec> children);

  static canopy::result<pid> start_child(runtime& rt, const pid& sup, child_spec spec);
  // Stops the child and keeps its spec (a temporary child's is forgotten) (18).
  static canopy::result<void> terminate_child(runtime& rt, const pid& sup, const std::string& id);
  static canopy::result<pid> restart_child(runtime& rt, const pid& sup, const std::string& id);
  static canopy::result<void> delete_child(runtime& rt, const pid& sup, const std::string& id);
  static canopy::result<std::vector<child_info>> which_children(runtime& rt, const pid& sup);
  static canopy::result<child_counts> count_children(runtime& rt, const pid& sup);
  static canopy::result<supervision_tree> tree(runtime& rt, const pid& sup);

 protected:
  void on_start() override;
  void receive(message& m) override;

 private:
  struct child {
    child_spec spec;
    pid running;
    bool restarting = false;
  };

  // Handlers of one message each; they may park (a selective receive, like OTP's).
  async start_all(reply_address from);
  async on_child_exit(pid who, exit_reason reason);
  async on_retry(std::string id);
  async shutdown_and_exit(exit_reason reason);
  async do_start_child(child_spec spec, reply_address from);
  async do_terminate_child(std::string id, reply_address from);
  async do_restart_child(std::string id, reply_address from);
  async answer_tree(reply_address from);

  // The strategy's reaction to child `index` failing (or its restart failing).
  task<> restart_after_failure(std::size_t index);
  // Starts the stopped children [from, to) in order. On a failure marks that child
  // restarting, sends the retry message and leaves the rest stopped (SEMANTICS 23).
  task<> restart_range(std::size_t from, std::size_t to);
  // Stops one child by its shutdown policy, watched by a monitor (SEMANTICS 8-11).
  task<> stop_child(std::size_t index);
  // Stops children [from, to) in reverse order, except `skip`; temporaries are forgotten.
  task<> stop_range(std::size_t from, std::size_t to, std::size_t skip);
  // Records one restart; false if that exceeds the intensity (SEMANTICS 22, 24).
  bool add_restart();
  void forget_stopped_temporaries();
  [[nodiscard]] std::size_t find(const std::string& id) const;
  [[nodiscard]] std::size_t find(const pid& p) const;
  [[nodiscard]] std::vector<child_info> which() const;
  [[nodiscard]] child_counts counts() const;

  static canopy::result<pid> finish_start(detail::runtime_core& rt, const detail::spawn_args& args,
                                          const process_name& name, detail::process_cell* parent);

  supervisor_flags flags_;
  std::vector<child> children_;
  std::vector<time_point> restart_times_;
  std::uint64_t restarts_ = 0;
  pid parent_;
  bool stopping_ = false;
};

}  // namespace canopy
