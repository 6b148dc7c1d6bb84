#pragma once
// The registry as its dispatch fuzz target (dispatch_fuzz.cpp) and the corpus replay in its
// tests run it under testing::app_probe: defaults, except where a fuzzer would otherwise
// spend memory or time on something else than the request handling.

#include <memory>

#include "canopy/registry_app/app.hpp"

namespace canopy::registry_app::fuzz {

inline std::unique_ptr<app> dispatch_app() {
  return std::make_unique<app>();  // its limits (max_names, max_members) bound what a fuzzer registers
}

}  // namespace canopy::registry_app::fuzz
