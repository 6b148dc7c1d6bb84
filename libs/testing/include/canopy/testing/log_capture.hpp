#pragma once
// log_capture: a spdlog logger whose lines a test can read, to assert what the runtime
// logged (one crash report per crash, stall warnings, ...).
// Thread-safety: the logger may be used from any thread; lines() returns a copy.
//
//   canopy::testing::log_capture logs;
//   canopy::runtime rt({.logger = logs.logger()});
//   ... EXPECT_EQ(logs.count("crashed"), 1);

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace spdlog {
class logger;
}

namespace canopy::testing {

class log_capture {
 public:
  log_capture();
  ~log_capture();
  log_capture(const log_capture&) = delete;
  log_capture& operator=(const log_capture&) = delete;

  [[nodiscard]] std::shared_ptr<spdlog::logger> logger() const;
  // Every line so far, as "level: message".
  [[nodiscard]] std::vector<std::string> lines() const;
  // How many lines contain `needle`.
  [[nodiscard]] std::size_t count(std::string_view needle) const;
  void clear();

 private:
  class sink;
  std::shared_ptr<sink> sink_;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace canopy::testing
