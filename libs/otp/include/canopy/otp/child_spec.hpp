#pragma once
// child_spec: how a supervisor starts, restarts and stops one child — a validated value
// (SEMANTICS.md 1-2). Thread-safety: a value; build it anywhere.
//
//   auto cache = canopy::child_spec::worker<cache_server>("cache", capacity)
//                    .restart(canopy::restart_type::transient)
//                    .shutdown(canopy::shutdown_policy::timeout(2s));
//
// Defaults: restart permanent, type worker, shutdown 5000 ms for a worker and infinity for a
// supervisor. The start function runs inside the supervisor and must link the child to it
// (gen_server::start_link, supervisor::start_link); it answers a child_start.

#include <chrono>
#include <coroutine>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "canopy/core/clock.hpp"
#include "canopy/core/detail/call.hpp"
#include "canopy/core/pid.hpp"
#include "canopy/core/process.hpp"
#include "canopy/core/result.hpp"
#include "canopy/otp/gen_server.hpp"

namespace canopy {

enum class restart_type : std::uint8_t {
  permanent,  // always restarted (SEMANTICS 13)
  transient,  // restarted unless it exits normal, shutdown or shutdown(detail) (14)
  temporary,  // never restarted; forgotten when it exits (15)
};

enum class child_type : std::uint8_t { worker, supervisor };

class shutdown_policy {
 public:
  enum class kind : std::uint8_t {
    brutal_kill,  // killed at once (SEMANTICS 8)
    timeout,      // exit(shutdown), then killed after the timeout (9)
    infinite,     // exit(shutdown), wait forever: for child supervisors (10)
  };
  static shutdown_policy brutal_kill() { return shutdown_policy(kind::brutal_kill, duration::zero()); }
  static shutdown_policy timeout(duration d) { return shutdown_policy(kind::timeout, d); }
  static shutdown_policy infinity() { return shutdown_policy(kind::infinite, canopy::infinity); }

  [[nodiscard]] kind what() const noexcept { return kind_; }
  [[nodiscard]] duration time() const noexcept { return time_; }

 private:
  shutdown_policy(kind k, duration d) : kind_(k), time_(d) {}
  kind kind_;
  duration time_;
};

// What a start function answers: an awaitable of result<pid>. A gen_server worker is ready
// at once; a child supervisor parks its parent until its own children started.
class child_start {
 public:
  static child_start ready(canopy::result<pid> r) { return child_start(std::move(r)); }
  // The child answers a start_children call once its children are up (supervisors do).
  static child_start await_ack(pid child) { return child_start(std::move(child)); }

  bool await_ready();
  template <class P>
  void await_suspend(std::coroutine_handle<P> h) {
    detail::park_for_reply(self_, h, h.promise().root_handle());
  }
  canopy::result<pid> await_resume();

 private:
  explicit child_start(canopy::result<pid> r) : ready_(std::move(r)) {}
  explicit child_start(pid child) : child_(std::move(child)) {}

  std::optional<canopy::result<pid>> ready_;
  pid child_;
  detail::process_cell* self_ = nullptr;
};

// The call a parent makes to a child supervisor; the answer is empty on success.
struct start_children_request {};
using start_children_reply = std::optional<error>;

// A child_spec is a handle to immutable shared data: copying one (a supervisor keeps a spec
// per child; a DynamicSupervisor per started child) costs a reference count, not a copy of
// the id and the start function. The setters copy the data first if it is shared.
class child_spec {
 public:
  using start_function = std::function<child_start()>;

  child_spec(std::string id, start_function start)
      : data_(std::make_shared<data>(data{std::move(id), std::move(start)})) {}

  // A gen_server worker started with start_link<S>(args...) (args copied for restarts).
  template <class S, class... A>
  static child_spec worker(std::string id, A... args) {
    return child_spec(std::move(id), [args = std::make_tuple(std::move(args)...)]() {
      return child_start::ready(std::apply(
          [](const auto&... a) { return gen_server::start_link<S>(gen_server_options{}, a...); }, args));
    });
  }

  child_spec& restart(restart_type r) {
    writable().restart = r;
    return *this;
  }
  child_spec& shutdown(shutdown_policy s) {
    data& d = writable();
    d.shutdown = s;
    d.shutdown_set = true;
    return *this;
  }
  child_spec& type(child_type t) {
    data& d = writable();
    d.type = t;
    if (!d.shutdown_set) d.shutdown = default_shutdown(t);
    return *this;
  }

  [[nodiscard]] const std::string& id() const noexcept { return data_->id; }
  [[nodiscard]] const start_function& start() const noexcept { return data_->start; }
  [[nodiscard]] restart_type restart() const noexcept { return data_->restart; }
  [[nodiscard]] shutdown_policy shutdown() const noexcept { return data_->shutdown; }
  [[nodiscard]] child_type type() const noexcept { return data_->type; }

  // errc::invalid_argument naming what is wrong (SEMANTICS 1: an id and a start function).
  [[nodiscard]] canopy::result<void> validate() const;

 private:
  static shutdown_policy default_shutdown(child_type t) {
    return t == child_type::supervisor ? shutdown_policy::infinity()
                                       : shutdown_policy::timeout(std::chrono::milliseconds(5000));
  }

  struct data {
    std::string id;
    start_function start;
    restart_type restart = restart_type::permanent;
    shutdown_policy shutdown = shutdown_policy::timeout(std::chrono::milliseconds(5000));
    child_type type = child_type::worker;
    bool shutdown_set = false;
  };

  data& writable() {
    if (data_.use_count() != 1) data_ = std::make_shared<data>(*data_);
    return const_cast<data&>(*data_);
  }

  std::shared_ptr<const data> data_;
};

}  // namespace canopy
