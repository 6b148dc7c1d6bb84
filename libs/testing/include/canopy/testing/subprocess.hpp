#pragma once
// subprocess: runs a program (an app binary) for a test — its stdout and stderr captured as
// one stream, line by line,
// signals, and a bounded wait for its exit. The destructor kills what is still running.
// Thread-safety: one thread.
//
//   canopy::testing::subprocess app({CANOPY_REGISTRY_BINARY, "--endpoint", "tcp://127.0.0.1:0"});
//   auto line = app.wait_for_line("serving on");       // within a deadline
//   app.signal(SIGTERM);
//   EXPECT_EQ(app.wait_exit(), 0);

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace canopy::testing {

class subprocess {
 public:
  explicit subprocess(std::vector<std::string> argv);
  ~subprocess();
  subprocess(const subprocess&) = delete;
  subprocess& operator=(const subprocess&) = delete;

  // The first stderr line containing `text` (lines before it are kept in output()), or
  // nothing if the process closed stderr or the deadline passed first.
  std::optional<std::string> wait_for_line(const std::string& text,
                                           std::chrono::milliseconds deadline = std::chrono::seconds(20));
  void signal(int sig);
  // The exit status (a signal's number + 128 if killed by one), or nothing within deadline.
  std::optional<int> wait_exit(std::chrono::milliseconds deadline = std::chrono::seconds(20));
  // Everything read from stderr so far.
  [[nodiscard]] const std::string& output() const noexcept { return output_; }
  [[nodiscard]] int pid() const noexcept { return pid_; }

 private:
  bool read_some(std::chrono::milliseconds wait);
  int pid_ = -1;
  int err_fd_ = -1;
  std::string output_;
  std::size_t scanned_ = 0;
  std::optional<int> status_;
};

// The endpoint in an app's start line ("... serving on tcp://127.0.0.1:NNNN (events ...)").
inline std::string serving_endpoint(const std::string& line) {
  const auto at = line.find("serving on ");
  if (at == std::string::npos) return {};
  const auto from = at + 11;
  return line.substr(from, line.find(' ', from) - from);
}

}  // namespace canopy::testing
