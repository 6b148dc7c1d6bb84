#pragma once
// canopy-launch: the umbrella's apps as OS processes under an OTP supervisor (libs/otp).
// Thread-safety: one launcher per program; run() from the main thread.
//
// config/canopy.toml says which apps run, in which order, where, and how hard to try:
//   apps = ["registry", "cache", "session_manager", "task_runner"]
//   [registry] endpoint = "tcp://127.0.0.1:7400"  events = "tcp://127.0.0.1:7401"
// The tree is one supervisor, rest_for_one (everything depends on what started before it,
// first of all the registry), with max_restarts in restart_period_ms. Each app is a worker
// process that starts the app's binary (its stdout and stderr to <log_dir>/<app>.log, or
// the launcher's stderr), and counts as started once the app answers `ping`. When the OS
// process exits, its worker exits and the supervisor restarts it (and those after it).
// Past the intensity the supervisor stops everything and the launcher exits 1, saying
// which app kept failing. SIGINT / SIGTERM stop the apps in reverse order — SIGTERM, then
// SIGKILL after shutdown_timeout_ms — and the launcher exits 0.

#include <chrono>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "canopy/core/result.hpp"

namespace canopy::launch {

struct app_entry {
  std::string id;        // registry, cache, session_manager, task_runner
  std::string binary;    // the program
  std::string config;    // --config, if that file exists
  std::string endpoint;  // --endpoint
  std::string events;    // --events
};

struct launch_config {
  std::vector<app_entry> apps;  // in start order
  std::string data_dir = "data";
  std::string log_dir = "logs";  // empty: the apps write to the launcher's stderr
  unsigned max_restarts = 3;
  std::chrono::milliseconds restart_period{30000};
  std::chrono::milliseconds start_timeout{15000};
  std::chrono::milliseconds shutdown_timeout{5000};
  std::string pid_file = "data/canopy-launch.pid";
};

// Reads config/canopy.toml (or `path`); relative paths in it are taken from `root` (the
// checkout). Every key is checked: errc::invalid_argument listing every problem.
canopy::result<launch_config> load_config(const std::string& path, const std::string& root,
                                          const std::vector<std::string>& only = {});

// Runs until a signal (0) or until an app keeps failing past the intensity (1). Prints the
// status table to `out` as apps come up, go down and come back.
int run(const launch_config& c, std::ostream& out, std::ostream& err);

}  // namespace canopy::launch
