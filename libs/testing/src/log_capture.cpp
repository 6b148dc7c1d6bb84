#include "canopy/testing/log_capture.hpp"

#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include <algorithm>
#include <mutex>

namespace canopy::testing {

class log_capture::sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard lk(lines_mu_);
    return lines_;
  }
  void clear() {
    std::lock_guard lk(lines_mu_);
    lines_.clear();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string line(spdlog::level::to_string_view(msg.level).data(),
                     spdlog::level::to_string_view(msg.level).size());
    line += ": ";
    line.append(msg.payload.data(), msg.payload.size());
    std::lock_guard lk(lines_mu_);
    lines_.push_back(std::move(line));
  }
  void flush_() override {}

 private:
  std::mutex lines_mu_;
  std::vector<std::string> lines_;
};

log_capture::log_capture()
    : sink_(std::make_shared<sink>()), logger_(std::make_shared<spdlog::logger>("canopy-test", sink_)) {
  logger_->set_level(spdlog::level::trace);
}

log_capture::~log_capture() = default;

std::shared_ptr<spdlog::logger> log_capture::logger() const { return logger_; }

std::vector<std::string> log_capture::lines() const { return sink_->lines(); }

std::size_t log_capture::count(std::string_view needle) const {
  auto all = sink_->lines();
  return static_cast<std::size_t>(std::count_if(all.begin(), all.end(), [&](const std::string& l) {
    return l.find(needle) != std::string::npos;
  }));
}

void log_capture::clear() { sink_->clear(); }

}  // namespace canopy::testing
