#pragma once
// app::lookup: how an app finds another through the registry app, from inside a process,
// without blocking a scheduler thread.
// Thread-safety: call from inside a process of the app's runtime.
//
//   canopy::async connect_cache() {
//     auto cache = co_await canopy::app::lookup(*ctx_, "cache");
//     if (cache) remote_ = canopy::msg::remote::start(system(), cache->endpoint);
//     else retry later: cache.code() is not_found (not registered) or unavailable
//   }

#include <chrono>
#include <string>

#include "canopy/app/application.hpp"
#include "canopy/core/async.hpp"
#include "canopy/msg/outcome.hpp"

namespace canopy::app {

struct located {
  std::string name;
  std::string endpoint;         // requests
  std::string events_endpoint;  // meta.events, when the app registered one
};

// not_found: nobody holds the name; unavailable: standalone (no registry configured) or
// the registry cannot be reached; timeout.
task<msg::outcome<located>> lookup(context& ctx, std::string name,
                                   std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

}  // namespace canopy::app
