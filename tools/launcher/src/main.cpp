// canopy-launch: runs the umbrella (canopy/launch/launcher.hpp). tools/launch builds it and
// runs it from the checkout; `tools/launch stop` / `status` use its pid file.
#include <CLI/CLI.hpp>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <signal.h>

#include <chrono>
#include <optional>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "canopy/launch/launcher.hpp"
#include "canopy/msg/client.hpp"

namespace {

// The launcher's pid from its pid file, if that process is alive.
std::optional<pid_t> running_pid(const canopy::launch::launch_config& c) {
  std::ifstream in(c.pid_file);
  pid_t p = 0;
  if (!(in >> p) || p <= 0 || ::kill(p, 0) != 0) return std::nullopt;
  return p;
}

int stop_running(const canopy::launch::launch_config& c) {
  const auto p = running_pid(c);
  if (!p) {
    std::cout << "canopy-launch: not running (no live pid in " << c.pid_file << ")\n";
    return 0;
  }
  ::kill(*p, SIGTERM);
  const auto until = std::chrono::steady_clock::now() + c.shutdown_timeout * static_cast<int>(c.apps.size() + 1) + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    if (::kill(*p, 0) != 0) {
      std::cout << "canopy-launch: stopped (pid " << *p << ")\n";
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling for its exit
  }
  std::cerr << "canopy-launch: pid " << *p << " did not stop in time\n";
  return 1;
}

int show_status(const canopy::launch::launch_config& c) {
  const auto p = running_pid(c);
  std::cout << "canopy-launch: " << (p ? "running, pid " + std::to_string(*p) : std::string("not running")) << "\n";
  int down = 0;
  for (const auto& a : c.apps) {
    auto cl = canopy::msg::client::connect(a.endpoint, {.send_timeout = std::chrono::milliseconds(300)});
    auto pong = cl ? (*cl)->call("ping", std::chrono::milliseconds(500)) : canopy::result<canopy::msg::reply>(cl.error());
    const bool up = pong && pong->ok;
    if (!up) ++down;
    std::cout << "  " << a.id << " " << a.endpoint << " " << (up ? "answers ping" : "not answering") << "\n";
  }
  return p && down == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config = "config/canopy.toml";
  std::string only;
  bool detach = false;
  bool foreground = false;
  CLI::App cli{"canopy-launch: runs Canopy's apps under one supervisor (config/canopy.toml)", "canopy-launch"};
  cli.add_option("--config", config, "the launcher's config")->capture_default_str();
  cli.add_option("--only", only, "a comma-separated subset of the apps, e.g. registry,cache");
  cli.add_flag("--foreground", foreground, "stay attached to the terminal (the default)");
  cli.add_flag("--detach", detach, "run in the background: logs in <log_dir>/launcher.log, pid in pid_file");
  CLI::App* stop_cmd = cli.add_subcommand("stop", "stop the launcher that runs in the background (its pid file)");
  CLI::App* status_cmd = cli.add_subcommand("status", "whether the launcher runs, and whether each app answers ping");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e) == 0 ? 0 : 2;
  }
  std::vector<std::string> subset;
  std::stringstream words(only);
  for (std::string w; std::getline(words, w, ',');)
    if (!w.empty()) subset.push_back(w);
  const std::string root = std::filesystem::current_path().string();
  auto c = canopy::launch::load_config(config, root, subset);
  if (!c) {
    std::cerr << "canopy-launch: " << c.error().to_string() << "\n";
    return 2;
  }
  if (*stop_cmd) return stop_running(*c);
  if (*status_cmd) return show_status(*c);
  if (!detach || foreground) return canopy::launch::run(*c, std::cout, std::cerr);

  // --detach: a child in its own session runs the apps; this one returns once it wrote its
  // pid file (the apps are up) or died trying.
  std::error_code ec;
  std::filesystem::remove(c->pid_file, ec);
  const pid_t child = ::fork();
  if (child < 0) {
    std::perror("canopy-launch: fork");
    return 1;
  }
  if (child == 0) {
    ::setsid();
    const std::string dir = c->log_dir.empty() ? c->data_dir : c->log_dir;
    std::filesystem::create_directories(dir, ec);
    const std::string log = (std::filesystem::path(dir) / "launcher.log").string();
    std::ofstream out(log, std::ios::app);
    std::freopen("/dev/null", "r", stdin);
    std::freopen(log.c_str(), "a", stdout);
    std::freopen(log.c_str(), "a", stderr);
    return canopy::launch::run(*c, std::cout, std::cerr);
  }
  const auto until = std::chrono::steady_clock::now() + c->start_timeout * static_cast<int>(c->apps.size() + 1);
  while (std::chrono::steady_clock::now() < until) {
    if (std::filesystem::exists(c->pid_file)) {
      std::cout << "canopy-launch: running in the background (pid " << child << "; pid file " << c->pid_file << ")\n";
      return 0;
    }
    int status = 0;
    if (::waitpid(child, &status, WNOHANG) == child) {
      std::cerr << "canopy-launch: the background launcher stopped (status " << WEXITSTATUS(status)
                << "); see its log in " << (c->log_dir.empty() ? c->data_dir : c->log_dir) << "/launcher.log\n";
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling the child's progress
  }
  std::cerr << "canopy-launch: the background launcher did not come up in time\n";
  return 1;
}
