#include "canopy/otp/dynamic_supervisor.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <stdexcept>

namespace canopy {

namespace {
thread_local const std::any* tls_extra_arguments = nullptr;

struct retry_dynamic {
  std::uint64_t key;
};
// The shutdown deadline of the children whose shutdown timeout is `after`.
struct shutdown_deadline {
  duration after;
};
}  // namespace

dynamic_supervisor::dynamic_supervisor(dynamic_supervisor_options options) : options_(std::move(options)) {}

canopy::result<pid> dynamic_supervisor::start(runtime& rt, dynamic_supervisor_options options, process_name name) {
  auto construct = [&](void* mem) -> process* { return new (mem) dynamic_supervisor(std::move(options)); };
  return detail::start_process(detail::core_of(rt), {sizeof(dynamic_supervisor), alignof(dynamic_supervisor), construct},
                               name, [](process&) {});
}

child_start dynamic_supervisor::start_link(dynamic_supervisor_options options, process_name name) {
  detail::process_cell* parent = detail::current_process();
  if (parent == nullptr) throw std::logic_error("dynamic_supervisor::start_link must be called from inside a process");
  pid parent_pid = detail::pid_of(parent);
  auto construct = [&](void* mem) -> process* { return new (mem) dynamic_supervisor(std::move(options)); };
  return child_start::ready(detail::start_process(
      detail::core_of(parent),
      {sizeof(dynamic_supervisor), alignof(dynamic_supervisor), construct, parent, detail::spawn_tie::link}, name,
      [&](process& p) { static_cast<dynamic_supervisor&>(p).parent_ = parent_pid; }));
}

child_spec dynamic_supervisor::spec(std::string id, dynamic_supervisor_options options) {
  child_spec s(std::move(id), [options = std::move(options)]() { return start_link(options); });
  s.type(child_type::supervisor);
  return s;
}

const std::any* dynamic_supervisor::current_extra_arguments() { return tls_extra_arguments; }

// Calls a start function with this supervisor's extra_arguments in reach (SEMANTICS 27).
child_start dynamic_supervisor::launch(const child_spec& spec) {
  const std::any* previous = std::exchange(tls_extra_arguments, &options_.extra_arguments);
  struct restore {
    const std::any* previous;
    ~restore() { tls_extra_arguments = previous; }
  } guard{previous};
  return spec.start()();
}

void dynamic_supervisor::on_start() {
  process_flag(trap_exit::on);
  if (options_.max_seconds <= duration::zero()) exit(exit_reason::other("bad_start_spec", "max_seconds must be positive"));
}

void dynamic_supervisor::receive(message& m) {
  if (stopping_) {
    if (auto* d = m.get<down_message>()) on_shutdown_down(*d);
    if (auto* dl = m.get<shutdown_deadline>()) {
      for (std::uint64_t ref : deadline_groups_[dl->after.count()]) {
        if (auto it = awaiting_.find(ref); it != awaiting_.end()) exit(it->second, exit_reason::kill());
      }
    }
    return;  // calls meanwhile are answered by our exit (errc::exited)
  }
  if (m.is_call()) {
    const reply_address from = m.reply_to();
    if (auto* r = m.get<start_child_request>()) {
      do_start_child(std::move(r->spec), from);
    } else if (auto* batch = m.get<start_children_batch>()) {
      do_start_children(std::move(batch->specs), from);
    } else if (auto* t = m.get<dynamic_terminate_request>()) {
      do_terminate_child(t->child, from);
    } else if (m.get<which_children_request>()) {
      std::vector<child_info> out;
      out.reserve(count());
      for (const auto& [p, spec] : children_) out.push_back({spec.id(), p, spec.type(), spec.restart(), false});
      for (const auto& [key, spec] : restarting_) out.push_back({spec.id(), pid(), spec.type(), spec.restart(), true});
      std::sort(out.begin(), out.end(), [](const child_info& a, const child_info& b) { return a.child < b.child; });
      reply(from, std::move(out));
    } else if (m.get<count_children_request>()) {
      child_counts n;
      n.specs = count();
      n.active = children_.size();
      for (const auto& [p, spec] : children_) (spec.type() == child_type::supervisor ? n.supervisors : n.workers)++;
      for (const auto& [k, spec] : restarting_) (spec.type() == child_type::supervisor ? n.supervisors : n.workers)++;
      reply(from, n);
    } else if (m.get<tree_request>()) {
      reply(from, tree());
    } else {
      system().logger().warn("dynamic supervisor {} got an unknown call: {}", self().to_string(), m.type_name());
    }
    return;
  }
  if (auto* e = m.get<exit_message>()) {
    if (!e->from || e->from == parent_) {
      begin_shutdown(e->reason);
    } else {
      on_child_exit(e->from, e->reason);
    }
    return;
  }
  if (auto* r = m.get<retry_dynamic>()) retry(r->key);
}

std::optional<error> dynamic_supervisor::refusal(const child_spec& spec) const {
  if (auto valid = spec.validate(); !valid) return valid.error();
  if (count() >= options_.max_children) return error(errc::max_children, std::to_string(options_.max_children));  // 26
  return std::nullopt;
}

async dynamic_supervisor::do_start_child(child_spec spec, reply_address from) {
  if (auto refused = refusal(spec)) {
    reply(from, canopy::result<pid>(std::move(*refused)));
    co_return;
  }
  auto started = co_await launch(spec);
  if (started) children_.emplace(*started, std::move(spec));
  reply(from, std::move(started));  // an ignore is answered as errc::ignored, nothing kept
}

async dynamic_supervisor::do_start_children(std::vector<child_spec> specs, reply_address from) {
  std::vector<canopy::result<pid>> started;
  started.reserve(specs.size());
  for (child_spec& spec : specs) {
    if (auto refused = refusal(spec)) {
      started.emplace_back(std::move(*refused));
      continue;
    }
    auto one = co_await launch(spec);
    if (one) children_.emplace(*one, std::move(spec));
    started.push_back(std::move(one));
  }
  reply(from, std::move(started));
}

async dynamic_supervisor::do_terminate_child(pid child, reply_address from) {
  auto it = children_.find(child);
  if (it == children_.end()) {
    reply(from, canopy::result<void>(error(errc::not_found, child.to_string())));
    co_return;
  }
  const shutdown_policy policy = it->second.shutdown();
  children_.erase(it);  // its exit is no longer a crash to restart
  if (policy.what() == shutdown_policy::kind::brutal_kill) {
    const monitor_ref ref = monitor_and_exit(child, exit_reason::kill());
    (void)co_await await_down(ref);
  } else {
    const monitor_ref ref = monitor_and_exit(child, exit_reason::shutdown());
    if (!co_await await_down(ref, policy.time())) {
      exit(child, exit_reason::kill());
      (void)co_await await_down(ref);
    }
  }
  reply(from, canopy::result<void>());
}

async dynamic_supervisor::on_child_exit(pid who, exit_reason reason) {
  auto it = children_.find(who);
  if (it == children_.end()) co_return;
  child_spec spec = std::move(it->second);
  children_.erase(it);
  const restart_type type = spec.restart();
  if (type == restart_type::temporary || (type == restart_type::transient && reason.is_clean())) co_return;
  if (!add_restart()) {
    system().logger().error("dynamic supervisor {} reached its restart intensity; shutting down", self().to_string());
    begin_shutdown(exit_reason::shutdown());
    co_return;
  }
  co_await restart(std::move(spec));
}

async dynamic_supervisor::retry(std::uint64_t key) {
  auto it = restarting_.find(key);
  if (it == restarting_.end()) co_return;
  child_spec spec = std::move(it->second);
  restarting_.erase(it);
  if (!add_restart()) {
    begin_shutdown(exit_reason::shutdown());
    co_return;
  }
  co_await restart(std::move(spec));
}

task<> dynamic_supervisor::restart(child_spec spec) {
  auto started = co_await launch(spec);
  if (started) {
    children_.emplace(*started, std::move(spec));
  } else if (started.code() != errc::ignored) {
    system().logger().error("dynamic supervisor {} failed to restart a child: {}; retrying", self().to_string(),
                            started.error().to_string());
    const std::uint64_t key = next_retry_key_++;
    restarting_.emplace(key, std::move(spec));  // still counts toward max_children (26)
    send(self(), retry_dynamic{key});
  }
}

bool dynamic_supervisor::add_restart() {
  const time_point now = system().clock().now();
  std::erase_if(restart_times_, [&](time_point t) { return t <= now - options_.max_seconds; });
  restart_times_.push_back(now);
  if (restart_times_.size() > options_.max_restarts) return false;
  ++restarts_;
  return true;
}

supervision_tree dynamic_supervisor::tree() const {
  supervision_tree node;
  node.self = self();
  node.strategy = strategy::one_for_one;
  node.restarts = restarts_;
  std::vector<const std::pair<const pid, child_spec>*> listed;
  listed.reserve(std::min(children_.size(), tree_children_listed));
  for (const auto& c : children_) listed.push_back(&c);
  const auto by_pid = [](const auto* a, const auto* b) { return a->first < b->first; };
  if (listed.size() > tree_children_listed) {
    std::nth_element(listed.begin(), listed.begin() + tree_children_listed, listed.end(), by_pid);
    listed.resize(tree_children_listed);
  }
  std::sort(listed.begin(), listed.end(), by_pid);
  for (const auto* c : listed) {
    supervision_tree kid;
    kid.id = c->second.id();
    kid.self = c->first;
    kid.type = c->second.type();
    node.children.push_back(std::move(kid));
  }
  for (const auto& [key, spec] : restarting_) {
    if (node.children.size() >= tree_children_listed) break;
    supervision_tree kid;
    kid.id = spec.id();
    kid.type = spec.type();
    kid.restarting = true;
    node.children.push_back(std::move(kid));
  }
  node.omitted = count() - node.children.size();
  return node;
}

// ---- shutdown: all at once, one deadline (SEMANTICS 7) ------------------------------------

void dynamic_supervisor::begin_shutdown(exit_reason reason) {
  stopping_ = true;
  stop_reason_ = std::move(reason);
  restarting_.clear();
  awaiting_.reserve(children_.size());
  // Everyone is told at once; one timer per distinct shutdown timeout kills those of its
  // group still alive when it fires (as Elixir's DynamicSupervisor does).
  for (auto& [child, spec] : children_) {
    const shutdown_policy policy = spec.shutdown();
    const bool brutal = policy.what() == shutdown_policy::kind::brutal_kill;
    const monitor_ref ref = monitor_and_exit(child, brutal ? exit_reason::kill() : exit_reason::shutdown());
    awaiting_.emplace(ref.value(), child);
    if (!brutal && policy.time() != infinity) deadline_groups_[policy.time().count()].push_back(ref.value());
  }
  children_.clear();
  for (const auto& [after, refs] : deadline_groups_)
    deadline_timers_.push_back(send_after(duration(after), self(), shutdown_deadline{duration(after)}));
  finish_shutdown_if_done();
}

void dynamic_supervisor::on_shutdown_down(const down_message& d) {
  awaiting_.erase(d.ref.value());
  finish_shutdown_if_done();
}

void dynamic_supervisor::finish_shutdown_if_done() {
  if (!awaiting_.empty()) return;
  for (timer_ref t : deadline_timers_) cancel_timer(t);
  exit(stop_reason_);
}

}  // namespace canopy

namespace canopy {

// ---- client API ------------------------------------------------------------------------------

canopy::result<pid> dynamic_supervisor::start_child(runtime& rt, const pid& sup, child_spec spec) {
  auto r = rt.call<canopy::result<pid>>(sup, start_child_request{std::move(spec)}, infinity);
  if (!r) return r.error();
  return std::move(*r);
}

canopy::result<void> dynamic_supervisor::terminate_child(runtime& rt, const pid& sup, const pid& child) {
  auto r = rt.call<canopy::result<void>>(sup, dynamic_terminate_request{child}, infinity);
  if (!r) return r.error();
  return std::move(*r);
}

canopy::result<std::vector<child_info>> dynamic_supervisor::which_children(runtime& rt, const pid& sup) {
  return rt.call<std::vector<child_info>>(sup, which_children_request{}, default_call_timeout);
}

canopy::result<child_counts> dynamic_supervisor::count_children(runtime& rt, const pid& sup) {
  return rt.call<child_counts>(sup, count_children_request{}, default_call_timeout);
}

}  // namespace canopy
