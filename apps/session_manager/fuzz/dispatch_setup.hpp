#pragma once
// The session_manager as its dispatch fuzz target (dispatch_fuzz.cpp) and the corpus replay in its
// tests run it under testing::app_probe: defaults, except where a fuzzer would otherwise
// spend memory or time on something else than the request handling.

#include <memory>

#include "canopy/session_app/app.hpp"

namespace canopy::session_app::fuzz {

inline std::unique_ptr<app> dispatch_app() {
  auto a = std::make_unique<app>();
  options o;
  o.cache_endpoint = "none";  // sessions in memory: the dispatcher, not the cache link
  o.max_sessions = 10000;
  a->set_options(o);
  return a;
}

}  // namespace canopy::session_app::fuzz
