#pragma once
// canopy-session-manager: one process per user session (docs/protocol.md "session_manager").
// Thread-safety: an application object is used by one app::instance at a time.
//
// Tree (session_manager.sup, rest_for_one: what comes later depends on what came before):
//   app.control                 ping / info / tree
//   session_manager.registry    Registry (unique keys): user -> the session's process, which
//                               is started under a via name, so a session is found by user
//   session_manager.sessions    DynamicSupervisor of the session processes (restart
//                               `transient` or `temporary`, config); max_sessions children
//   session_manager.store       the cache link: finds the cache (the registry, or a fixed
//                               endpoint), probes it, restores sessions at start, flushes
//                               what changed while the cache was away
//   session_manager.server      takes every op: starts sessions (open), answers list /
//                               count, hands the rest to the session's process
//   app.registration
// A session process holds its record (record.hpp) in a state object its child spec shares,
// so a crashed session restarts with everything it had acknowledged; a crash touches no
// other session. Idle expiry: each session keeps one timer at its deadline (activity only
// moves the deadline; the timer re-arms itself when it finds the deadline moved).
// Write-through: every change is written to the cache (key <cache_prefix><user>, TTL the
// time left before expiry) before it is acknowledged; while the cache cannot be reached
// the sessions go on in memory, info.store says unavailable, and what changed is written
// once the cache answers again. Config: config/session_manager.toml.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "canopy/app/application.hpp"
#include "canopy/otp/child_spec.hpp"
#include "canopy/session_app/record.hpp"

namespace canopy::session_app {

struct manager_env;

struct options {
  std::chrono::milliseconds idle_timeout{1800000};          // open without idle_timeout_ms
  std::chrono::milliseconds max_idle_timeout{604800000};    // a longer idle_timeout_ms: invalid_args
  std::uint64_t max_sessions = 2000000;                     // past it, open answers overloaded
  std::size_t max_user_bytes = 256;                         // a longer user: invalid_args
  record_limits limits;                                     // messages kept, value and data sizes
  restart_type restart = restart_type::transient;           // of a crashed session
  unsigned max_restarts = 100;                              // session restarts allowed in ...
  std::chrono::milliseconds restart_period{5000};           // ... this period, else all restart
  // Write-through: "" finds the cache app through the registry; "none" turns it off;
  // anything else is the cache's request endpoint.
  std::string cache_endpoint;
  // The cache's CURVE public key, when the cache requires CURVE; this app then uses its own
  // key pair ([curve] secret_key_file), whose public key the cache must allow.
  std::string cache_server_key;
  std::string cache_prefix = "session:";
  std::chrono::milliseconds cache_timeout{500};             // per cache request
  std::chrono::milliseconds cache_check{1000};              // probe interval
  std::chrono::milliseconds restore_timeout{30000};         // requests wait this long at start
};

class app final : public canopy::app::application {
 public:
  app();
  ~app() override;

  [[nodiscard]] std::string_view id() const override { return "session_manager"; }
  [[nodiscard]] std::string default_endpoint() const override { return "tcp://127.0.0.1:7420"; }
  [[nodiscard]] std::string default_events_endpoint() const override { return "tcp://127.0.0.1:7421"; }
  void configure(canopy::app::config& c) override;
  [[nodiscard]] supervisor_flags flags() const override;
  std::vector<child_spec> children(canopy::app::context& ctx) override;
  [[nodiscard]] std::string_view route(std::string_view op) const override;
  void stopped(canopy::app::context& ctx) override;

  // For tests: set before start (configure() does it from the file).
  void set_options(const options& o) { options_ = o; }

 private:
  options options_;
  std::shared_ptr<manager_env> env_;  // what the processes share (src/parts.hpp), one per start
};

}  // namespace canopy::session_app
