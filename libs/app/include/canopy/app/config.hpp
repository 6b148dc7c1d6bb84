#pragma once
// app::config: an app's TOML file, read key by key with defaults, checked up front.
// Thread-safety: one thread (an app reads its config once, at start).
//
//   auto cfg = canopy::app::config::load("config/cache.toml");   // or config::empty()
//   auto max_bytes = cfg->integer("cache.max_bytes", 256 << 20, 1, std::int64_t{1} << 40);
//   auto snapshot = cfg->string("cache.snapshot", "");
//   if (auto ok = cfg->finish(); !ok) die(ok.error().to_string());
//
// Every getter records its key as known and answers the default when the key is absent. A
// value of the wrong type or out of range is recorded as an error (and the default is
// answered, so reading goes on and every problem is reported at once). finish() answers
// errc::invalid_argument listing every error and every key in the file that nothing read
// (a misspelt key is an error, not silently ignored). Keys are dotted paths:
// "section.key".

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "canopy/core/result.hpp"

namespace canopy::app {

class config {
 public:
  // Parses `path`; errc::invalid_argument with the file, line and reason when it cannot be
  // read or is not valid TOML.
  static canopy::result<config> load(const std::string& path);
  // Parses TOML text (`origin` names it in messages).
  static canopy::result<config> parse(std::string_view text, std::string origin = "(text)");
  static config empty();

  config(config&&) noexcept;
  config& operator=(config&&) noexcept;
  ~config();

  [[nodiscard]] std::string string(std::string_view key, std::string fallback);
  [[nodiscard]] std::int64_t integer(std::string_view key, std::int64_t fallback, std::int64_t min, std::int64_t max);
  [[nodiscard]] bool boolean(std::string_view key, bool fallback);
  [[nodiscard]] std::chrono::milliseconds milliseconds(std::string_view key, std::chrono::milliseconds fallback,
                                                       std::chrono::milliseconds min, std::chrono::milliseconds max);
  [[nodiscard]] std::vector<std::string> strings(std::string_view key, std::vector<std::string> fallback);
  // One of `allowed` (e.g. a log level).
  [[nodiscard]] std::string choice(std::string_view key, std::string fallback, const std::vector<std::string>& allowed);
  // True if the file sets `key`.
  [[nodiscard]] bool has(std::string_view key) const;

  // Records an error found by the app itself (a value valid alone but not with another).
  void fail(std::string_view key, std::string message);
  // Every error and unknown key, or nothing.
  [[nodiscard]] canopy::result<void> finish() const;
  // Where the values came from ("config/cache.toml", or "(defaults)").
  [[nodiscard]] const std::string& origin() const noexcept;

 private:
  struct impl;
  explicit config(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace canopy::app
