#pragma once
// app::run: an app as a program — the whole of a thin main():
//
//   int main(int argc, char** argv) {
//     canopy::registry_app::app app;
//     return canopy::app::run(argc, argv, app);
//   }
//
// It parses the flags of docs/protocol.md "Running an app" (--config, --endpoint, --events,
// --registry, --data-dir, --log-level, --threads, --help, --version), reads the config file
// (the flag's, else config/<id>.toml when present) with every key checked (settings in
// application.hpp; the app's own under [<id>]), flags overriding the file; sets up logging
// on stderr; starts an app::instance; waits for SIGINT or SIGTERM and stops it in order.
// Exit status: 0 after a clean stop (and for --help / --version); 1 when the app cannot
// start or did not stop within shutdown_timeout_ms; 2 for bad flags or config — each with
// one line on stderr saying why.

#include "canopy/app/application.hpp"

namespace canopy::app {

int run(int argc, char** argv, application& app);

// The common keys from `c` (their defaults from `app`), for run() and for tests.
settings read_settings(config& c, const application& app);

}  // namespace canopy::app
