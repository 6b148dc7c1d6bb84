#include "canopy/otp/gen_server.hpp"

#include <spdlog/logger.h>

#include <exception>
#include <stdexcept>

namespace canopy {

namespace {

// System messages of the gen_server protocol (sys:terminate, sys:get_status, the idle
// timer, the marker that runs init's continue).
struct sys_stop {
  exit_reason reason;
};
struct sys_get_status {};
struct idle_tick {
  std::uint64_t generation;
};
struct init_continue {};

exit_reason reason_of_current_exception() {
  try {
    throw;
  } catch (const process_exit& e) {
    return e.reason();
  } catch (const std::exception& e) {
    return exit_reason::error(detail::type_name(typeid(e)), e.what());
  } catch (...) {
    return exit_reason::error("unknown", "an exception not derived from std::exception");
  }
}

}  // namespace

// ---- client API ------------------------------------------------------------------------------

canopy::result<pid> gen_server::finish_start(detail::runtime_core& rt, const detail::spawn_args& spawn,
                                             const process_name& name, detail::process_cell* parent) {
  bool ignored = false;
  pid parent_pid = detail::pid_of(parent);
  auto after_init = [&](process& p) {
    auto& server = static_cast<gen_server&>(p);
    ignored = server.init_ignored_;
    server.parent_ = parent_pid;
  };
  auto started = detail::start_process(rt, spawn, name, after_init);
  if (!started && ignored) return error(errc::ignored);
  return started;
}

void gen_server::throw_no_parent() {
  throw std::logic_error("gen_server::start_link must be called from inside a process (use start)");
}

canopy::result<void> gen_server::stop(runtime& rt, const pid& server, exit_reason reason, duration timeout) {
  if (!rt.is_alive(server)) return error(errc::noproc, server.to_string());
  exit_watch watch = rt.watch(server);
  rt.cast(server, sys_stop{std::move(reason)});
  auto exited = watch.wait(timeout);
  if (!exited) return exited.error();
  if (exited->what() == exit_reason::kind::noproc) return error(errc::noproc, server.to_string());
  return {};
}

canopy::result<std::string> gen_server::state_summary(runtime& rt, const pid& server, duration timeout) {
  return rt.call<std::string>(server, sys_get_status{}, timeout);
}

// ---- default callbacks --------------------------------------------------------------------------

gen_server::result gen_server::handle_call(message& request, const reply_address& /*from*/) {
  throw std::logic_error(format_status() + " has no handle_call for " + request.type_name());
}

gen_server::result gen_server::handle_cast(message& request) {
  throw std::logic_error(format_status() + " has no handle_cast for " + request.type_name());
}

gen_server::result gen_server::handle_info(message& msg) {
  system().logger().warn("{} {} received an unexpected message: {}", format_status(), self().to_string(),
                         msg.type_name());
  return noreply();
}

gen_server::result gen_server::handle_continue(message& cont) {
  throw std::logic_error(format_status() + " has no handle_continue for " + cont.type_name());
}

void gen_server::terminate(const exit_reason& /*reason*/) {}

std::string gen_server::format_status() const { return detail::type_name(typeid(*this)); }

// ---- the loop ------------------------------------------------------------------------------------

void gen_server::on_start() {
  result r = init();  // an exception here fails the start; terminate is not called (SEMANTICS 32)
  switch (r.kind_) {
    case result::kind::ok:
      if (r.continue_) {
        // Runs in the server before anything queued, once start has returned.
        pending_continue_ = std::move(r.continue_);
        send(self(), init_continue{});
      } else {
        arm_idle_timer(r.timeout_);
      }
      return;
    case result::kind::ignore:
      init_ignored_ = true;
      stopping_ = true;
      exit(exit_reason::normal());
      return;
    case result::kind::stop:
      stopping_ = true;
      exit(r.reason_);
      return;
    default:
      stopping_ = true;
      exit(exit_reason::other("bad_return_value", "init must answer ok, ignore or stop"));
      return;
  }
}

void gen_server::receive(message& m) {
  if (stopping_) return;
  if (idle_timer_) {  // any message cancels the idle timeout (SEMANTICS 33)
    cancel_timer(idle_timer_);
    idle_timer_ = {};
  }
  if (auto* tick = m.get<idle_tick>()) {
    if (tick->generation != idle_generation_) return;  // cancelled too late: stale
    ++idle_generation_;
    detail::node_ptr timeout(detail::make_node<timeout_message>(detail::node_kind::user));
    message tm(timeout.get());
    guarded_apply([&] { return handle_info(tm); }, origin::info, nullptr);
    return;
  }
  ++idle_generation_;
  if (pending_continue_) {  // init's continue runs before any queued message (SEMANTICS 34)
    run_continue(std::move(pending_continue_));
    if (stopping_) return;
  }
  if (m.get<init_continue>()) return;

  if (m.is_call()) {
    if (m.get<sys_get_status>()) {
      reply(m.reply_to(), format_status());
      return;
    }
    const reply_address from = m.reply_to();
    guarded_apply([&] { return handle_call(m, from); }, origin::call, &from);
    return;
  }
  if (m.is_cast()) {
    if (auto* s = m.get<sys_stop>()) {
      stop_now(s->reason);
      return;
    }
    guarded_apply([&] { return handle_cast(m); }, origin::cast, nullptr);
    return;
  }
  if (auto* e = m.get<exit_message>(); e != nullptr && parent_ && e->from == parent_) {
    stop_now(e->reason);  // the parent is going: terminate, then exit with its reason
    return;
  }
  guarded_apply([&] { return handle_info(m); }, origin::info, nullptr);
}

template <class F>
void gen_server::guarded_apply(F&& callback, origin where, const reply_address* from) {
  result r;
  try {
    r = callback();
  } catch (...) {
    // A crash: terminate runs (SEMANTICS 36), then the runtime records the crash.
    stopping_ = true;
    exit_reason reason = reason_of_current_exception();
    try {
      terminate(reason);
    } catch (...) {  // the original crash is what gets reported
    }
    throw;
  }
  apply(std::move(r), where, from);
}

void gen_server::apply(result r, origin where, const reply_address* from) {
  auto bad_return = [&](const char* why) { stop_now(exit_reason::other("bad_return_value", why)); };
  switch (r.kind_) {
    case result::kind::invalid:
      return bad_return("a default-constructed result");
    case result::kind::ok:
    case result::kind::ignore:
      return bad_return("ok and ignore are for init only");
    case result::kind::reply:
      if (where != origin::call) return bad_return("reply outside handle_call");
      reply_message(*from, std::move(r.reply_));
      break;
    case result::kind::noreply:
      break;
    case result::kind::stop:
      if (r.reply_) {
        if (where != origin::call) return bad_return("a stop with a reply outside handle_call");
        reply_message(*from, std::move(r.reply_));
      }
      return stop_now(r.reason_);
  }
  if (r.continue_) {
    run_continue(std::move(r.continue_));
  } else {
    arm_idle_timer(r.timeout_);
  }
}

void gen_server::run_continue(detail::node_ptr cont) {
  message cm(cont.get());
  guarded_apply([&] { return handle_continue(cm); }, origin::cont, nullptr);
}

void gen_server::stop_now(const exit_reason& reason) {
  stopping_ = true;
  terminate(reason);  // an exception here is a crash with that exception's reason
  exit(reason);
}

void gen_server::arm_idle_timer(const std::optional<duration>& timeout) {
  if (!timeout || stopping_) return;
  idle_timer_ = send_after(*timeout, self(), idle_tick{idle_generation_});
}

}  // namespace canopy
