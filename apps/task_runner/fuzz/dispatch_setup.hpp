#pragma once
// The task_runner as its dispatch fuzz target (dispatch_fuzz.cpp) and the corpus replay in its
// tests run it under testing::app_probe: defaults, except where a fuzzer would otherwise
// spend memory or time on something else than the request handling.

#include <memory>

#include "canopy/task_app/app.hpp"

namespace canopy::task_app::fuzz {

inline std::unique_ptr<app> dispatch_app() {
  auto a = std::make_unique<app>();
  options o;
  o.fsync = fsync_policy::never;  // the journal still writes (into the probe's data_dir)
  o.limits.queue_limit = 1000;
  a->set_options(o);
  return a;
}

}  // namespace canopy::task_app::fuzz
