#pragma once
// app::instance: one running app inside this OS process — its runtime, its msg::server,
// its supervision tree. app::run (main.hpp) builds one from the command line and waits for
// a signal; tests start one directly on free loopback ports.
// Thread-safety: start and stop from one thread; the accessors from any.
//
//   settings s{.endpoint = "tcp://127.0.0.1:0", .events_endpoint = "tcp://127.0.0.1:0",
//              .registry = "none"};
//   auto app = canopy::app::instance::start(my_app, s);
//   client::connect((*app)->endpoint()) ...
//   (*app)->stop();
//
// Start order: the server binds first (an endpoint in use fails fast, before any work),
// answering `unavailable` until the tree is up; then the top supervisor "<id>.sup" starts
// app.control (ping / info / tree), the app's children in order, and app.registration (when
// the app self-registers and a registry is configured). Stop: the tree in reverse order
// (registration withdrawn first, the app's children, then control), then the server
// (replies already queued still go out), then the runtime — within shutdown_timeout.

#include <chrono>
#include <memory>
#include <string>

#include "canopy/app/application.hpp"
#include "canopy/core/clock.hpp"
#include "canopy/core/result.hpp"

namespace canopy::app {

class instance {
 public:
  // errc::invalid_argument (an endpoint cannot be bound, a bad CURVE key) or
  // errc::start_failed (a child of the tree did not start) with the reason. `clock` (tests:
  // a testing::virtual_clock) drives the runtime's timers; null: the steady clock.
  static canopy::result<std::unique_ptr<instance>> start(application& app, settings s,
                                                         std::shared_ptr<spdlog::logger> log = nullptr,
                                                         std::shared_ptr<canopy::clock> clock = nullptr);
  ~instance();
  instance(const instance&) = delete;
  instance& operator=(const instance&) = delete;

  [[nodiscard]] const std::string& endpoint() const noexcept;
  [[nodiscard]] const std::string& events_endpoint() const noexcept;
  [[nodiscard]] runtime& rt() noexcept;
  [[nodiscard]] context& ctx() noexcept;
  // The top supervisor.
  [[nodiscard]] pid top() const;

  // Stops everything in order (see above). True if the tree stopped within
  // shutdown_timeout (else what was left was killed). Idempotent.
  bool stop();

 private:
  struct impl;
  explicit instance(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace canopy::app
