#include "canopy/otp/supervisor.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <limits>
#include <set>
#include <stdexcept>

namespace canopy {

namespace {

constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();

// A failed restart, retried by a message to itself (SEMANTICS 23).
struct retry_restart {
  std::string id;
};

std::string describe(const error& e) {
  return e.code() == errc::start_failed ? e.reason().to_string() : e.to_string();
}

}  // namespace

const char* to_string(strategy s) noexcept {
  switch (s) {
    case strategy::one_for_one: return "one_for_one";
    case strategy::one_for_all: return "one_for_all";
    case strategy::rest_for_one: return "rest_for_one";
  }
  return "unknown";
}

// ---- child_spec and child_start ------------------------------------------------------------

canopy::result<void> child_spec::validate() const {
  if (!data_) return error(errc::invalid_argument, "a moved-from child spec");
  if (data_->id.empty()) return error(errc::invalid_argument, "a child spec needs an id");
  if (!data_->start) return error(errc::invalid_argument, "child '" + data_->id + "' has no start function");
  return {};
}

bool child_start::await_ready() {
  if (ready_) return true;
  self_ = detail::current_process();
  if (self_ == nullptr) throw std::logic_error("a child is started from inside its supervisor");
  auto failed = detail::begin_call(
      self_, child_, detail::make_node<start_children_request>(detail::node_kind::call), infinity);
  if (failed) {
    ready_.emplace(std::move(*failed));
    return true;
  }
  return false;
}

canopy::result<pid> child_start::await_resume() {
  if (ready_) return std::move(*ready_);
  auto ack = detail::unpack_reply<start_children_reply>(detail::take_call_outcome(self_));
  if (!ack) return error::with_reason(errc::start_failed, ack.error().reason(), child_.to_string());
  if (*ack) return **ack;
  return child_;
}

// ---- starting ---------------------------------------------------------------------------------

supervisor::supervisor(supervisor_flags flags, std::vector<child_spec> children) : flags_(flags) {
  children_.reserve(children.size());
  for (auto& spec : children) children_.push_back({std::move(spec), pid(), false});
}

canopy::result<pid> supervisor::finish_start(detail::runtime_core& rt, const detail::spawn_args& args,
                                             const process_name& name, detail::process_cell* parent) {
  pid parent_pid = detail::pid_of(parent);
  return detail::start_process(rt, args, name, [&](process& p) { static_cast<supervisor&>(p).parent_ = parent_pid; });
}

canopy::result<pid> supervisor::start(runtime& rt, supervisor_flags flags, std::vector<child_spec> children,
                                      process_name name) {
  auto construct = [&](void* mem) -> process* { return new (mem) supervisor(flags, std::move(children)); };
  auto started = finish_start(detail::core_of(rt), {sizeof(supervisor), alignof(supervisor), construct}, name, nullptr);
  if (!started) return started;
  auto ack = rt.call<start_children_reply>(*started, start_children_request{}, infinity);
  if (!ack) return error::with_reason(errc::start_failed, ack.error().reason(), started->to_string());
  if (*ack) return **ack;
  return started;
}

child_start supervisor::start_link(supervisor_flags flags, std::vector<child_spec> children, process_name name) {
  detail::process_cell* parent = detail::current_process();
  if (parent == nullptr) throw std::logic_error("supervisor::start_link must be called from inside a process");
  auto construct = [&](void* mem) -> process* { return new (mem) supervisor(flags, std::move(children)); };
  auto started = finish_start(detail::core_of(parent),
                              {sizeof(supervisor), alignof(supervisor), construct, parent, detail::spawn_tie::link},
                              name, parent);
  if (!started) return child_start::ready(std::move(started));
  return child_start::await_ack(*started);
}

child_spec supervisor::spec(std::string id, supervisor_flags flags, std::vector<child_spec> children) {
  child_spec s(std::move(id), [flags, children = std::move(children)]() { return start_link(flags, children); });
  s.type(child_type::supervisor);
  return s;
}

void supervisor::on_start() {
  process_flag(trap_exit::on);
  std::string problem;
  if (flags_.max_seconds <= duration::zero()) problem = "max_seconds must be positive";
  std::set<std::string> ids;
  for (const auto& c : children_) {
    if (auto valid = c.spec.validate(); !valid) problem = valid.error().context();
    if (!ids.insert(c.spec.id()).second) problem = "two children with the id '" + c.spec.id() + "'";  // SEMANTICS 4
  }
  if (!problem.empty()) exit(exit_reason::other("bad_start_spec", problem));
}

async supervisor::start_all(reply_address from) {
  for (std::size_t i = 0; i < children_.size();) {
    auto started = co_await children_[i].spec.start()();
    if (started) {
      children_[i].running = *started;
      ++i;
    } else if (started.code() == errc::ignored) {  // SEMANTICS 17
      if (children_[i].spec.restart() == restart_type::temporary) {
        children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    } else {  // SEMANTICS 6: stop those started, in reverse order, then fail
      const std::string id = children_[i].spec.id();
      co_await stop_range(0, i, npos);
      stopping_ = true;
      reply(from, start_children_reply(error::with_reason(
                      errc::start_failed, exit_reason::other("failed_to_start_child", id + ": " + describe(started.error())))));
      exit(exit_reason::shutdown("failed_to_start_child"));
      co_return;
    }
  }
  reply(from, start_children_reply());
}

// ---- the loop ------------------------------------------------------------------------------------

void supervisor::receive(message& m) {
  if (stopping_) return;
  if (m.is_call()) {
    const reply_address from = m.reply_to();
    if (m.get<start_children_request>()) {
      start_all(from);
    } else if (auto* r = m.get<start_child_request>()) {
      do_start_child(std::move(r->spec), from);
    } else if (auto* t = m.get<terminate_child_request>()) {
      do_terminate_child(t->id, from);
    } else if (auto* rc = m.get<restart_child_request>()) {
      do_restart_child(rc->id, from);
    } else if (auto* d = m.get<delete_child_request>()) {
      const std::size_t i = find(d->id);
      if (i == npos) {
        reply(from, canopy::result<void>(error(errc::not_found, d->id)));
      } else if (children_[i].running) {
        reply(from, canopy::result<void>(error(errc::running, d->id)));
      } else if (children_[i].restarting) {
        reply(from, canopy::result<void>(error(errc::restarting, d->id)));
      } else {
        children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(i));
        reply(from, canopy::result<void>());
      }
    } else if (m.get<which_children_request>()) {
      reply(from, which());
    } else if (m.get<count_children_request>()) {
      reply(from, counts());
    } else if (m.get<tree_request>()) {
      answer_tree(from);
    } else {
      system().logger().warn("supervisor {} got an unknown call: {}", self().to_string(), m.type_name());
    }
    return;
  }
  if (auto* e = m.get<exit_message>()) {
    // From the parent, or from the runtime shutting down: stop the tree, then exit.
    if (!e->from || e->from == parent_) {
      shutdown_and_exit(e->reason);
    } else {
      on_child_exit(e->from, e->reason);
    }
    return;
  }
  if (auto* r = m.get<retry_restart>()) on_retry(r->id);
}

async supervisor::on_child_exit(pid who, exit_reason reason) {
  const std::size_t i = find(who);
  if (i == npos) co_return;  // not (or no longer) ours: it was stopped on purpose
  children_[i].running = pid();
  const restart_type type = children_[i].spec.restart();
  const bool restart = type == restart_type::permanent || (type == restart_type::transient && !reason.is_clean());
  if (!restart) {
    if (type == restart_type::temporary) children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(i));
    co_return;  // SEMANTICS 13-16: the spec stays for permanent / transient
  }
  co_await restart_after_failure(i);
}

async supervisor::on_retry(std::string id) {
  const std::size_t i = find(id);
  if (i == npos || !children_[i].restarting) co_return;
  children_[i].restarting = false;
  co_await restart_after_failure(i);
}

task<> supervisor::restart_after_failure(std::size_t index) {
  if (!add_restart()) {  // SEMANTICS 24
    system().logger().error("supervisor {} reached its restart intensity ({} in {} ms); shutting down",
                            self().to_string(), flags_.max_restarts,
                            std::chrono::duration_cast<std::chrono::milliseconds>(flags_.max_seconds).count());
    stopping_ = true;
    co_await stop_range(0, children_.size(), npos);
    exit(exit_reason::shutdown());
    co_return;
  }
  ++restarts_;
  const std::string id = children_[index].spec.id();
  switch (flags_.strategy) {
    case strategy::one_for_one:  // SEMANTICS 19
      co_await restart_range(index, index + 1);
      break;
    case strategy::one_for_all:  // SEMANTICS 20
      co_await stop_range(0, children_.size(), index);
      co_await restart_range(0, children_.size());
      break;
    case strategy::rest_for_one: {  // SEMANTICS 21
      co_await stop_range(index + 1, children_.size(), npos);
      co_await restart_range(find(id), children_.size());
      break;
    }
  }
}

task<> supervisor::restart_range(std::size_t from, std::size_t to) {
  for (std::size_t i = from; i < to && i < children_.size(); ++i) {
    if (children_[i].running) continue;
    auto started = co_await children_[i].spec.start()();
    if (started) {
      children_[i].running = *started;
      continue;
    }
    if (started.code() == errc::ignored) continue;  // kept with no pid (SEMANTICS 17)
    system().logger().error("supervisor {} failed to restart child '{}': {}; retrying", self().to_string(),
                            children_[i].spec.id(), describe(started.error()));
    children_[i].restarting = true;
    send(self(), retry_restart{children_[i].spec.id()});
    co_return;
  }
}

task<> supervisor::stop_child(std::size_t index) {
  const pid p = children_[index].running;
  if (!p) co_return;
  const shutdown_policy policy = children_[index].spec.shutdown();
  // Watched by a monitor, not the link: a child that unlinked itself cannot hang us (11).
  const bool brutal = policy.what() == shutdown_policy::kind::brutal_kill;
  const monitor_ref ref = monitor_and_exit(p, brutal ? exit_reason::kill() : exit_reason::shutdown());
  switch (policy.what()) {
    case shutdown_policy::kind::brutal_kill:  // SEMANTICS 8
      (void)co_await await_down(ref);
      break;
    case shutdown_policy::kind::timeout:  // SEMANTICS 9
      if (!co_await await_down(ref, policy.time())) {
        exit(p, exit_reason::kill());
        (void)co_await await_down(ref);
      }
      break;
    case shutdown_policy::kind::infinite:  // SEMANTICS 10
      (void)co_await await_down(ref);
      break;
  }
  children_[index].running = pid();
}

task<> supervisor::stop_range(std::size_t from, std::size_t to, std::size_t skip) {
  for (std::size_t i = std::min(to, children_.size()); i-- > from;) {
    if (i == skip) continue;
    co_await stop_child(i);
  }
  forget_stopped_temporaries();  // SEMANTICS 15: temporary bystanders are not restarted
}

async supervisor::shutdown_and_exit(exit_reason reason) {
  stopping_ = true;
  co_await stop_range(0, children_.size(), npos);
  exit(std::move(reason));
}

bool supervisor::add_restart() {
  const time_point now = system().clock().now();
  const time_point horizon = now - flags_.max_seconds;
  std::erase_if(restart_times_, [&](time_point t) { return t <= horizon; });
  restart_times_.push_back(now);
  return restart_times_.size() <= flags_.max_restarts;
}

void supervisor::forget_stopped_temporaries() {
  std::erase_if(children_, [](const child& c) { return c.spec.restart() == restart_type::temporary && !c.running; });
}

std::size_t supervisor::find(const std::string& id) const {
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (children_[i].spec.id() == id) return i;
  return npos;
}

std::size_t supervisor::find(const pid& p) const {
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (children_[i].running == p) return i;
  return npos;
}

// ---- admin API ---------------------------------------------------------------------------------

async supervisor::do_start_child(child_spec spec, reply_address from) {
  if (auto valid = spec.validate(); !valid) {
    reply(from, canopy::result<pid>(valid.error()));
    co_return;
  }
  if (const std::size_t i = find(spec.id()); i != npos) {  // SEMANTICS 16
    reply(from, canopy::result<pid>(children_[i].running ? error(errc::already_started, children_[i].running.to_string())
                                                         : error(errc::already_present, spec.id())));
    co_return;
  }
  auto started = co_await spec.start()();
  if (started) {
    children_.push_back({std::move(spec), *started, false});
  } else if (started.code() == errc::ignored && spec.restart() != restart_type::temporary) {
    children_.push_back({std::move(spec), pid(), false});  // SEMANTICS 17
  }
  reply(from, std::move(started));
}

async supervisor::do_terminate_child(std::string id, reply_address from) {
  const std::size_t i = find(id);
  if (i == npos) {
    reply(from, canopy::result<void>(error(errc::not_found, id)));
    co_return;
  }
  co_await stop_child(i);
  if (children_[i].spec.restart() == restart_type::temporary)  // SEMANTICS 18
    children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(i));
  reply(from, canopy::result<void>());
}

async supervisor::do_restart_child(std::string id, reply_address from) {
  const std::size_t i = find(id);
  if (i == npos) {
    reply(from, canopy::result<pid>(error(errc::not_found, id)));
  } else if (children_[i].running) {
    reply(from, canopy::result<pid>(error(errc::running, id)));
  } else if (children_[i].restarting) {
    reply(from, canopy::result<pid>(error(errc::restarting, id)));
  } else {
    auto started = co_await children_[i].spec.start()();
    if (started) children_[find(id)].running = *started;
    reply(from, std::move(started));
  }
}

std::vector<child_info> supervisor::which() const {
  std::vector<child_info> out;
  out.reserve(children_.size());
  for (const auto& c : children_)
    out.push_back({c.spec.id(), c.running, c.spec.type(), c.spec.restart(), c.restarting});
  return out;
}

child_counts supervisor::counts() const {
  child_counts n;
  n.specs = children_.size();
  for (const auto& c : children_) {
    if (c.running) ++n.active;
    if (c.spec.type() == child_type::supervisor) {
      ++n.supervisors;
    } else {
      ++n.workers;
    }
  }
  return n;
}

async supervisor::answer_tree(reply_address from) {
  supervision_tree node;
  node.self = self();
  node.strategy = flags_.strategy;
  node.restarts = restarts_;
  for (const auto& c : which()) {
    supervision_tree kid;
    kid.id = c.id;
    kid.self = c.child;
    kid.type = c.type;
    kid.restarting = c.restarting;
    if (c.type == child_type::supervisor && c.child) {
      auto sub = co_await call<supervision_tree>(c.child, tree_request{}, std::chrono::seconds(5));
      if (sub) {
        const std::string id = kid.id;
        kid = std::move(*sub);
        kid.id = id;
      }
    }
    node.children.push_back(std::move(kid));
  }
  reply(from, std::move(node));
}

std::string render(const supervision_tree& tree) {
  std::string out;
  auto line = [&](const supervision_tree& n, int depth, auto&& self_ref) -> void {
    out.append(static_cast<std::size_t>(depth) * 2, ' ');
    out += (n.id.empty() ? "(root)" : n.id) + " " + n.self.to_string();
    if (n.type == child_type::supervisor) {
      out += std::string(" supervisor ") + to_string(n.strategy) + " restarts=" + std::to_string(n.restarts);
    } else {
      out += " worker";
    }
    if (n.restarting) out += " (restarting)";
    out += '\n';
    for (const auto& c : n.children) self_ref(c, depth + 1, self_ref);
  };
  line(tree, 0, line);
  return out;
}

// ---- client API ------------------------------------------------------------------------------

namespace {
template <class R, class Req>
canopy::result<R> admin_call(runtime& rt, const pid& sup, Req request) {
  auto r = rt.call<canopy::result<R>>(sup, std::move(request), infinity);
  if (!r) return r.error();
  return std::move(*r);
}
}  // namespace

canopy::result<pid> supervisor::start_child(runtime& rt, const pid& sup, child_spec spec) {
  return admin_call<pid>(rt, sup, start_child_request{std::move(spec)});
}
canopy::result<void> supervisor::terminate_child(runtime& rt, const pid& sup, const std::string& id) {
  return admin_call<void>(rt, sup, terminate_child_request{id});
}
canopy::result<pid> supervisor::restart_child(runtime& rt, const pid& sup, const std::string& id) {
  return admin_call<pid>(rt, sup, restart_child_request{id});
}
canopy::result<void> supervisor::delete_child(runtime& rt, const pid& sup, const std::string& id) {
  return admin_call<void>(rt, sup, delete_child_request{id});
}
canopy::result<std::vector<child_info>> supervisor::which_children(runtime& rt, const pid& sup) {
  return rt.call<std::vector<child_info>>(sup, which_children_request{}, default_call_timeout);
}
canopy::result<child_counts> supervisor::count_children(runtime& rt, const pid& sup) {
  return rt.call<child_counts>(sup, count_children_request{}, default_call_timeout);
}
canopy::result<supervision_tree> supervisor::tree(runtime& rt, const pid& sup) {
  return rt.call<supervision_tree>(sup, tree_request{}, default_call_timeout);
}

}  // namespace canopy
