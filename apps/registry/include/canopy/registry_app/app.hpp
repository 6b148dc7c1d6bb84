#pragma once
// canopy-registry: names under leases and groups of members (docs/protocol.md "registry"),
// the service the other apps find each other through.
// Thread-safety: an application object is used by one app::instance at a time.
//
// Tree (registry.sup, one_for_one):
//   app.control       ping / info / tree
//   registry.server   every registry op; owns nothing but a handle to the lease book,
//                     which the app keeps, so a crash of the server (answered `internal`)
//                     loses no registration; expiry runs from its timers
// Config ([registry] in config/registry.toml): default_ttl_ms, max_ttl_ms, max_names,
// max_members, max_name_bytes (see that file for defaults and meaning).

#include <chrono>
#include <cstddef>
#include <memory>

#include "canopy/app/application.hpp"

namespace canopy::registry_app {

class lease_book;

struct limits {
  std::chrono::milliseconds default_ttl{10000};
  std::chrono::milliseconds max_ttl{3600000};
  std::size_t max_names = 100000;    // live names; past it, register answers overloaded
  std::size_t max_members = 100000;  // members of one group; past it, join answers overloaded
  std::size_t max_name_bytes = 256;  // names, groups, members, endpoints
};

class app final : public canopy::app::application {
 public:
  app();
  ~app() override;

  [[nodiscard]] std::string_view id() const override { return "registry"; }
  [[nodiscard]] std::string default_endpoint() const override { return "tcp://127.0.0.1:7400"; }
  [[nodiscard]] std::string default_events_endpoint() const override { return "tcp://127.0.0.1:7401"; }
  [[nodiscard]] bool self_registers() const override { return false; }
  void configure(canopy::app::config& c) override;
  std::vector<child_spec> children(canopy::app::context& ctx) override;
  [[nodiscard]] std::string_view route(std::string_view op) const override;

  [[nodiscard]] const limits& configured() const noexcept { return limits_; }

 private:
  limits limits_;
  std::shared_ptr<lease_book> book_;
};

}  // namespace canopy::registry_app
