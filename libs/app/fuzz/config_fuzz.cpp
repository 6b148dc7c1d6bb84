// libFuzzer target: any bytes as an app's TOML config (config::parse), every kind of
// getter, then finish(). Nothing may crash or throw: bad input is a list of problems.
// Built by the `fuzz` preset; CI runs it briefly from corpus/ (the shipped configs and
// some broken ones).
#include <cstdint>
#include <string_view>

#include "canopy/app/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using ms = std::chrono::milliseconds;
  auto parsed = canopy::app::config::parse(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!parsed) return 0;
  canopy::app::config& c = *parsed;
  (void)c.string("endpoint", "");
  (void)c.integer("threads", 0, 0, 1024);
  (void)c.boolean("fault_injection", false);
  (void)c.milliseconds("shutdown_timeout_ms", ms(5000), ms(1), ms(600000));
  (void)c.strings("apps", {});
  (void)c.choice("log_level", "info", {"trace", "debug", "info", "warn", "error"});
  (void)c.integer("cache.max_bytes", 1, 1, 1ll << 40);
  (void)c.string("session_manager.cache_endpoint", "");
  (void)c.has("task_runner.exec.allow");
  (void)c.strings("task_runner.exec.allow", {});
  c.fail("x", "y");
  (void)c.finish();
  return 0;
}
