#pragma once
// dynamic_supervisor: Elixir's DynamicSupervisor (SEMANTICS.md 26, 27, 7).
// Thread-safety: a process; the static API blocks a non-process thread (inside a
// process, co_await call with start_child_request / dynamic_terminate_request / ...).
//
// Children are started on demand with start_child and have no ids (terminate_child takes
// the pid). The strategy is one_for_one; restart types, shutdown policies and the restart
// intensity work as in supervisor. max_children (default unlimited) makes start_child
// answer errc::max_children when full; a child waiting to restart still counts (26).
// extra_arguments (any value) reaches every child started with worker<S, Extra>(args...)
// as S's first constructor argument (27). On shutdown every child is told at once and they
// are awaited concurrently: the children with shutdown timeout T still alive T after the
// shutdown began are killed (one timer per distinct T), so 100,000 children stop in
// the time of the slowest, not the sum (7).
//
//   auto sessions = canopy::dynamic_supervisor::start(rt, {.max_children = 100000});
//   auto s = canopy::dynamic_supervisor::start_child(rt, *sessions,
//                canopy::child_spec::worker<session>("session", user).restart(canopy::restart_type::temporary));

#include <any>
#include <cstddef>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "canopy/otp/child_spec.hpp"
#include "canopy/otp/supervisor.hpp"

namespace canopy {

struct dynamic_supervisor_options {
  std::size_t max_children = std::numeric_limits<std::size_t>::max();
  unsigned max_restarts = 3;
  duration max_seconds = std::chrono::seconds(5);
  std::any extra_arguments;
};

struct dynamic_terminate_request {
  pid child;
};

// Starts many children in one call (co_await call<std::vector<result<pid>>>(sup, ...)): the
// same as one start_child_request each, in order, at the cost of one round trip — for a
// process that starts children at a high rate (the task runner's workers).
struct start_children_batch {
  std::vector<child_spec> specs;
};

class dynamic_supervisor final : public process {
 public:
  explicit dynamic_supervisor(dynamic_supervisor_options options);

  static canopy::result<pid> start(runtime& rt, dynamic_supervisor_options options = {}, process_name name = {});
  static child_start start_link(dynamic_supervisor_options options = {}, process_name name = {});
  // A child spec for a dynamic supervisor under a supervisor.
  static child_spec spec(std::string id, dynamic_supervisor_options options = {});

  // errc::max_children when full; the child's own start error otherwise.
  static canopy::result<pid> start_child(runtime& rt, const pid& sup, child_spec spec);
  static canopy::result<void> terminate_child(runtime& rt, const pid& sup, const pid& child);
  static canopy::result<std::vector<child_info>> which_children(runtime& rt, const pid& sup);
  static canopy::result<child_counts> count_children(runtime& rt, const pid& sup);

  // A gen_server child built as S(extra, args...), `extra` being the supervisor's
  // extra_arguments (which must hold an Extra).
  template <class S, class Extra, class... A>
  static child_spec worker(std::string id, A... args) {
    return child_spec(std::move(id), [args = std::make_tuple(std::move(args)...)]() {
      const Extra* extra = std::any_cast<Extra>(current_extra_arguments());
      if (extra == nullptr) return child_start::ready(error(errc::invalid_argument, "extra_arguments do not hold the type the child expects"));
      return child_start::ready(std::apply(
          [&](const auto&... a) { return gen_server::start_link<S>(gen_server_options{}, *extra, a...); }, args));
    });
  }
  // The extra_arguments of the dynamic supervisor running this start function.
  static const std::any* current_extra_arguments();

  // A tree_request is answered with at most this many children (oldest pids first, as
  // leaves); the rest are counted in supervision_tree::omitted. A million sessions must
  // not make a million-node reply.
  static constexpr std::size_t tree_children_listed = 100;

 protected:
  void on_start() override;
  void receive(message& m) override;

 private:
  struct pending_restart {
    child_spec spec;
  };

  async do_start_child(child_spec spec, reply_address from);
  async do_start_children(std::vector<child_spec> specs, reply_address from);
  // Why `spec` may not start now (a bad spec, full), or nothing.
  [[nodiscard]] std::optional<error> refusal(const child_spec& spec) const;
  async do_terminate_child(pid child, reply_address from);
  async on_child_exit(pid who, exit_reason reason);
  async retry(std::uint64_t key);
  task<> restart(child_spec spec);
  child_start launch(const child_spec& spec);
  [[nodiscard]] supervision_tree tree() const;
  void begin_shutdown(exit_reason reason);
  void on_shutdown_down(const down_message& d);
  void finish_shutdown_if_done();
  bool add_restart();
  [[nodiscard]] std::size_t count() const noexcept { return children_.size() + restarting_.size(); }

  dynamic_supervisor_options options_;
  std::unordered_map<pid, child_spec> children_;
  std::unordered_map<std::uint64_t, child_spec> restarting_;  // failed restarts, by retry key
  std::uint64_t next_retry_key_ = 1;
  std::vector<time_point> restart_times_;
  std::uint64_t restarts_ = 0;  // restarts made (the tree's count)
  pid parent_;
  // Shutdown state: every child told at once, awaited under one deadline.
  bool stopping_ = false;
  exit_reason stop_reason_ = exit_reason::shutdown();
  std::unordered_map<std::uint64_t, pid> awaiting_;  // monitor ref -> child
  std::map<duration::rep, std::vector<std::uint64_t>> deadline_groups_;  // timeout -> refs
  std::vector<timer_ref> deadline_timers_;
};

}  // namespace canopy
