#include "canopy/app/main.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "canopy/app/instance.hpp"

namespace canopy::app {

namespace {

const std::vector<std::string> log_levels = {"trace", "debug", "info", "warn", "error"};

std::string key_file(config& c, std::string_view key) {
  const std::string path = c.string(key, "");
  if (path.empty()) return {};
  auto k = msg::read_curve_key_file(path);
  if (!k) {
    c.fail(key, k.error().to_string());
    return {};
  }
  return *k;
}

}  // namespace

settings read_settings(config& c, const application& app) {
  settings s;
  s.endpoint = c.string("endpoint", app.default_endpoint());
  s.events_endpoint = c.string("events", app.default_events_endpoint());
  s.registry = c.string("registry_endpoint", s.registry);
  s.data_dir = c.string("data_dir", s.data_dir);
  s.log_level = c.choice("log_level", s.log_level, log_levels);
  s.threads = static_cast<unsigned>(c.integer("threads", 0, 0, 1024));
  s.scheduler_polls = c.boolean("scheduler_polls", true);
  s.max_message_bytes = static_cast<std::size_t>(c.integer("max_message_bytes", 1 << 20, 1024, 64 << 20));
  s.max_in_flight = static_cast<std::size_t>(c.integer("max_in_flight", 10000, 1, 10000000));
  s.events_hwm = static_cast<int>(c.integer("events_hwm", 10000, 1, 10000000));
  s.shutdown_timeout = c.milliseconds("shutdown_timeout_ms", s.shutdown_timeout, std::chrono::milliseconds(100),
                                      std::chrono::milliseconds(600000));
  s.registry_ttl = c.milliseconds("registry_ttl_ms", s.registry_ttl, std::chrono::milliseconds(1000),
                                  std::chrono::milliseconds(3600000));
  s.fault_injection = c.boolean("fault_injection", false);

  // CURVE: this app's own pair serves its sockets and identifies it to the registry.
  s.curve.secret_key = key_file(c, "curve.secret_key_file");
  s.curve.allowed_clients = c.strings("curve.allowed_clients", {});
  const std::string registry_key = c.string("curve.registry_server_key", "");
  if (!registry_key.empty()) {
    if (s.curve.secret_key.empty()) {
      c.fail("curve.registry_server_key", "needs curve.secret_key_file (this app's own key pair)");
    } else if (auto pub = msg::curve_public_key(s.curve.secret_key)) {
      s.registry_curve = {registry_key, *pub, s.curve.secret_key};
    }
  }
  if (auto ok = msg::check(s.curve); !ok) c.fail("curve", ok.error().to_string());
  if (auto ok = msg::check(s.registry_curve); !ok) c.fail("curve", ok.error().to_string());
  return s;
}

int run(int argc, char** argv, application& app) {
  const std::string binary = "canopy-" + std::string(app.id());
  CLI::App cli{binary + ": the Canopy " + std::string(app.id()) + " app (docs/protocol.md)", binary};
  std::string config_path, endpoint, events, registry, data_dir, log_level;
  int threads = -1;
  cli.add_option("--config", config_path, "the app's TOML config (default config/" + std::string(app.id()) + ".toml when present)");
  cli.add_option("--endpoint", endpoint, "where the ROUTER binds (default " + app.default_endpoint() + ")");
  cli.add_option("--events", events, "where the PUB binds (default " + app.default_events_endpoint() + ")");
  cli.add_option("--registry", registry, "the registry app's request endpoint, or none to run standalone");
  cli.add_option("--data-dir", data_dir, "where the app keeps its files");
  cli.add_option("--log-level", log_level, "trace, debug, info, warn, error")->check(CLI::IsMember(log_levels));
  cli.add_option("--threads", threads, "scheduler threads (0: one per core)")->check(CLI::Range(0, 1024));
  cli.set_version_flag("--version", binary + " " + std::string(app.version()));
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // 0 for --help / --version; else CLI11 prints the reason and we exit 2 (a usage error).
    return cli.exit(e) == 0 ? 0 : 2;
  }

  const std::string default_path = "config/" + std::string(app.id()) + ".toml";
  if (config_path.empty() && std::filesystem::exists(default_path)) config_path = default_path;
  auto loaded = config_path.empty() ? canopy::result<config>(config::empty()) : config::load(config_path);
  if (!loaded) {
    std::cerr << binary << ": config: " << loaded.error().to_string() << "\n";
    return 2;
  }
  config& cfg = *loaded;
  settings s = read_settings(cfg, app);
  app.configure(cfg);
  if (auto ok = cfg.finish(); !ok) {
    std::cerr << binary << ": config: " << ok.error().to_string() << "\n";
    return 2;
  }
  if (!endpoint.empty()) s.endpoint = endpoint;
  if (!events.empty()) s.events_endpoint = events;
  if (!registry.empty()) s.registry = registry;
  if (!data_dir.empty()) s.data_dir = data_dir;
  if (!log_level.empty()) s.log_level = log_level;
  if (threads >= 0) s.threads = static_cast<unsigned>(threads);

  auto log = std::make_shared<spdlog::logger>(binary, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  log->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %n: %v");
  log->set_level(spdlog::level::from_str(s.log_level));
  log->flush_on(spdlog::level::warn);

  // SIGINT and SIGTERM are taken by sigwait below: block them before any thread starts, so
  // every thread inherits the mask and none is interrupted by them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto started = instance::start(app, s, log);
  if (!started) {
    std::cerr << binary << ": cannot start: " << started.error().to_string() << "\n";
    return 1;
  }
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  log->info("{}: stopping on {}", binary, signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  const bool in_time = (*started)->stop();
  started->reset();
  log->info("{}: stopped", binary);
  log->flush();
  if (!in_time) {
    std::cerr << binary << ": did not stop within " << s.shutdown_timeout.count() << " ms\n";
    return 1;
  }
  return 0;
}

}  // namespace canopy::app
