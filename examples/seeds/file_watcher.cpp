// Seed: FileWatcher — a resource opened in init and closed in terminate; a periodic check
// scheduled with send_after.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "canopy/otp/gen_server.hpp"
#include "canopy/testing/virtual_clock.hpp"
#include "check.hpp"

using namespace std::chrono_literals;

struct check_now {};
struct changes {};

class file_watcher final : public canopy::gen_server {
 public:
  file_watcher(std::filesystem::path path, bool* closed) : path_(std::move(path)), closed_(closed) {}

 protected:
  result init() override {
    process_flag(canopy::trap_exit::on);  // so a shutdown from a supervisor runs terminate
    file_ = std::fopen(path_.c_str(), "r");
    if (file_ == nullptr) return stop(canopy::exit_reason::other("enoent", path_.string()));
    last_size_ = std::filesystem::file_size(path_);
    send_after(1s, self(), check_now{});
    return ok();
  }
  result handle_info(canopy::message& m) override {
    if (m.get<check_now>()) {
      const auto size = std::filesystem::file_size(path_);
      if (size != last_size_) ++seen_changes_;
      last_size_ = size;
      send_after(1s, self(), check_now{});  // periodic
    }
    return noreply();
  }
  result handle_call(canopy::message& m, const canopy::reply_address& from) override {
    if (m.get<changes>()) return reply(seen_changes_);
    return gen_server::handle_call(m, from);
  }
  void terminate(const canopy::exit_reason&) override {
    if (file_ != nullptr) std::fclose(file_);
    *closed_ = true;
  }

 private:
  std::filesystem::path path_;
  bool* closed_;
  std::FILE* file_ = nullptr;
  std::uintmax_t last_size_ = 0;
  int seen_changes_ = 0;
};

int main() {
  const auto path = std::filesystem::temp_directory_path() / ("canopy-watch-" + std::to_string(::getpid()));
  std::ofstream(path) << "hello";
  auto clk = std::make_shared<canopy::testing::virtual_clock>();
  canopy::runtime rt({.mode = canopy::scheduling::manual, .clock = clk});
  bool closed = false;
  auto w = canopy::gen_server::start<file_watcher>(rt, {}, path, &closed);
  check(w.has_value(), "FileWatcher opened the file in init");
  clk->advance(1s);
  rt.run_until_idle();
  std::ofstream(path, std::ios::app) << " world";
  clk->advance(1s);  // the next periodic check sees the file grow
  rt.run_until_idle();
  check(rt.call<int>(*w, changes{}).value_or(-1) == 1, "a periodic check (send_after) noticed one change");
  check(canopy::gen_server::stop(rt, *w).has_value() && closed, "terminate closed the file");
  auto missing = canopy::gen_server::start<file_watcher>(rt, {}, path.string() + ".nope", &closed);
  check(!missing && missing.error().reason().name() == "enoent", "a missing file fails the start");
  std::filesystem::remove(path);
  return 0;
}
