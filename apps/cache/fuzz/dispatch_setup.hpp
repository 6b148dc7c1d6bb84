#pragma once
// The cache as its dispatch fuzz target (dispatch_fuzz.cpp) and the corpus replay in its
// tests run it under testing::app_probe: defaults, except where a fuzzer would otherwise
// spend memory or time on something else than the request handling.

#include <memory>

#include "canopy/cache_app/app.hpp"

namespace canopy::cache_app::fuzz {

inline std::unique_ptr<app> dispatch_app() {
  auto a = std::make_unique<app>();
  options o;
  o.max_bytes = 16u << 20;  // the fuzzer's memory, not the default 256 MiB
  a->set_options(o);
  return a;
}

}  // namespace canopy::cache_app::fuzz
