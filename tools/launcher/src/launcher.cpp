#include "canopy/launch/launcher.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "canopy/app/config.hpp"
#include "canopy/core/runtime.hpp"
#include "canopy/msg/remote.hpp"
#include "canopy/otp/gen_server.hpp"
#include "canopy/otp/supervisor.hpp"

extern char** environ;

namespace canopy::launch {

namespace {

using namespace std::chrono_literals;

const std::map<std::string, std::pair<std::string, std::string>>& known_apps() {
  // id -> (binary under <bin_dir>, default endpoint base port)
  static const std::map<std::string, std::pair<std::string, std::string>> apps = {
      {"registry", {"apps/registry/canopy-registry", "7400"}},
      {"cache", {"apps/cache/canopy-cache", "7410"}},
      {"session_manager", {"apps/session_manager/canopy-session-manager", "7420"}},
      {"task_runner", {"apps/task_runner/canopy-task-runner", "7430"}},
  };
  return apps;
}

std::string absolute(const std::string& path, const std::string& root) {
  if (path.empty() || path[0] == '/') return path;
  return (std::filesystem::path(root) / path).lexically_normal().string();
}

// ---- the reaper: the one waitpid of the launcher ------------------------------------------------

struct os_exited {
  pid_t os_pid;
  int status;  // the exit status, or 128 + the signal
};

class reaper {
 public:
  explicit reaper(runtime& rt) : rt_(rt), thread_([this] { run(); }) {}
  ~reaper() {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // A child was spawned: its exit goes to `owner` (and to wait_for).
  void watch(pid_t os_pid, pid owner) {
    std::lock_guard lk(mu_);
    ++children_;
    if (auto it = exited_.find(os_pid); it != exited_.end()) {
      rt_.send(owner, os_exited{os_pid, it->second});  // it was quicker than us
      return;
    }
    owners_[os_pid] = std::move(owner);
    cv_.notify_all();
  }

  // The child's status once it exits within `timeout`.
  std::optional<int> wait_for(pid_t os_pid, std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    if (!cv_.wait_for(lk, timeout, [&] { return exited_.count(os_pid) > 0; })) return std::nullopt;
    return exited_[os_pid];
  }

 private:
  void run() {
    for (;;) {
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stopping_ || children_ > reaped_; });
        if (stopping_ && children_ <= reaped_) return;
      }
      int status = 0;
      const pid_t p = ::waitpid(-1, &status, 0);
      if (p < 0) {
        if (errno == ECHILD) {
          std::this_thread::sleep_for(10ms);  // a spawn counted but not made yet
          continue;
        }
        continue;  // EINTR
      }
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
      std::lock_guard lk(mu_);
      ++reaped_;
      exited_[p] = code;
      if (auto it = owners_.find(p); it != owners_.end()) {
        rt_.send(it->second, os_exited{p, code});
        owners_.erase(it);
      }
      cv_.notify_all();
    }
  }

  runtime& rt_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<pid_t, pid> owners_;
  std::map<pid_t, int> exited_;
  std::size_t children_ = 0, reaped_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

// ---- the status table ---------------------------------------------------------------------------

class board {
 public:
  explicit board(std::ostream& out) : out_(out) {}
  void header() {
    std::lock_guard lk(mu_);
    out_ << std::left << std::setw(17) << "APP" << std::setw(9) << "OS PID" << std::setw(28) << "ENDPOINT" << "STATE\n";
    out_.flush();
  }
  void row(const app_entry& a, pid_t os_pid, const std::string& state) {
    std::lock_guard lk(mu_);
    out_ << std::left << std::setw(17) << a.id << std::setw(9) << (os_pid > 0 ? std::to_string(os_pid) : "-")
         << std::setw(28) << a.endpoint << state << "\n";
    out_.flush();
  }
  void line(const std::string& text) {
    std::lock_guard lk(mu_);
    out_ << text << "\n";
    out_.flush();
  }
  void failed(const std::string& id) {
    std::lock_guard lk(mu_);
    last_failed_ = id;
  }
  std::string last_failed() {
    std::lock_guard lk(mu_);
    return last_failed_;
  }

 private:
  std::mutex mu_;
  std::ostream& out_;
  std::string last_failed_;
};

struct shared_state {
  const launch_config* config;
  std::string registry_endpoint;
  reaper* reap;
  board* status;
};

// ---- one app as a process of the launcher ------------------------------------------------------

struct probe_tick {};

class app_process final : public gen_server {
 public:
  app_process(const shared_state* s, app_entry a) : s_(s), app_(std::move(a)) {}

 protected:
  result init() override {
    process_flag(trap_exit::on);  // the supervisor's shutdown runs terminate: SIGTERM, then SIGKILL
    auto spawned = spawn();
    if (!spawned) return stop(exit_reason::other("spawn", spawned.error().to_string()));
    os_pid_ = *spawned;
    s_->reap->watch(os_pid_, self());
    auto r = msg::remote::start(system(), app_.endpoint, {.send_timeout = 200ms});
    if (!r) return stop(exit_reason::other("endpoint", r.error().to_string()));
    remote_ = std::move(*r);
    deadline_ = system().clock().now() + s_->config->start_timeout;
    s_->status->row(app_, os_pid_, "starting");
    return ok();
  }

  // The supervisor waits for this answer: the app has started once it answers ping.
  result handle_call(message& m, const reply_address& from) override {
    if (m.get<start_children_request>()) {
      ack_ = from;
      waiting_ = true;
      probe();
      return noreply();
    }
    return gen_server::handle_call(m, from);
  }

  result handle_info(message& m) override {
    if (m.get<probe_tick>()) probe();
    if (auto* e = m.get<os_exited>(); e != nullptr && e->os_pid == os_pid_) {
      exited_ = true;
      const std::string why = "exited with status " + std::to_string(e->status);
      s_->status->row(app_, os_pid_, why);
      s_->status->failed(app_.id);
      if (waiting_) {
        waiting_ = false;
        reply(ack_, start_children_reply(error(errc::start_failed, app_.id + " " + why + " before answering ping" +
                                                                      log_hint())));
      }
      return stop(exit_reason::other("app_exited", app_.id + " " + why));
    }
    return noreply();
  }

  void terminate(const exit_reason&) override {
    if (!exited_ && os_pid_ > 0) {
      ::kill(os_pid_, SIGTERM);
      if (!s_->reap->wait_for(os_pid_, s_->config->shutdown_timeout)) {
        s_->status->row(app_, os_pid_, "did not stop within " + std::to_string(s_->config->shutdown_timeout.count()) +
                                           " ms: killed");
        ::kill(os_pid_, SIGKILL);
        (void)s_->reap->wait_for(os_pid_, 5s);
      } else {
        s_->status->row(app_, os_pid_, "stopped");
      }
    }
    if (remote_) remote_->stop();
  }

 private:
  std::string log_hint() const {
    return s_->config->log_dir.empty() ? std::string() : " (see " + log_path() + ")";
  }
  std::string log_path() const { return (std::filesystem::path(s_->config->log_dir) / (app_.id + ".log")).string(); }

  async probe() {
    if (!waiting_) co_return;
    msg::reply pong = co_await remote_->call("ping", {.timeout = 300ms});
    if (!waiting_) co_return;
    if (pong.ok) {
      waiting_ = false;
      s_->status->row(app_, os_pid_, "running");
      reply(ack_, start_children_reply());
      co_return;
    }
    if (system().clock().now() >= deadline_) {
      waiting_ = false;
      reply(ack_, start_children_reply(error(errc::start_failed, app_.id + " did not answer ping within " +
                                                                    std::to_string(s_->config->start_timeout.count()) +
                                                                    " ms" + log_hint())));
      co_return;
    }
    send_after(100ms, self(), probe_tick{});
  }

  canopy::result<pid_t> spawn() {
    std::vector<std::string> argv = {app_.binary};
    if (!app_.config.empty()) argv.insert(argv.end(), {"--config", app_.config});
    argv.insert(argv.end(), {"--endpoint", app_.endpoint, "--events", app_.events, "--data-dir",
                             (std::filesystem::path(s_->config->data_dir) / app_.id).string()});
    if (app_.id != "registry") argv.insert(argv.end(), {"--registry", s_->registry_endpoint});
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    std::string log;
    if (!s_->config->log_dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(s_->config->log_dir, ec);
      log = log_path();
      posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    // Its own process group (a Ctrl-C in the terminal is the launcher's to handle), and
    // the default signal handling the launcher itself does not have.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, handled;
    sigemptyset(&none);
    sigemptyset(&handled);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGTERM);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &handled);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t p = 0;
    const int rc = ::posix_spawn(&p, app_.binary.c_str(), &fa, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) return error(errc::start_failed, "cannot run " + app_.binary + ": " + std::strerror(rc));
    return p;
  }

  const shared_state* s_;
  app_entry app_;
  pid_t os_pid_ = -1;
  std::unique_ptr<msg::remote> remote_;
  time_point deadline_{};
  reply_address ack_;
  bool waiting_ = false;
  bool exited_ = false;
};

child_spec app_spec(const shared_state* s, const app_entry& a) {
  child_spec spec(a.id, [s, a]() {
    auto started = gen_server::start_link<app_process>({.name = "launch." + a.id}, s, a);
    if (!started) return child_start::ready(started.error());
    return child_start::await_ack(*started);  // the supervisor waits for its ping
  });
  // Time for terminate's SIGTERM-then-SIGKILL before the supervisor gives up on it.
  spec.shutdown(shutdown_policy::timeout(s->config->shutdown_timeout + 6s));
  return spec;
}

}  // namespace

canopy::result<launch_config> load_config(const std::string& path, const std::string& root,
                                          const std::vector<std::string>& only) {
  auto loaded = canopy::app::config::load(path);
  if (!loaded) return loaded.error();
  canopy::app::config& c = *loaded;
  using ms = std::chrono::milliseconds;
  launch_config out;
  const std::vector<std::string> order =
      c.strings("apps", {"registry", "cache", "session_manager", "task_runner"});
  const std::string bin_dir = absolute(c.string("bin_dir", "build/release"), root);
  const std::string config_dir = absolute(c.string("config_dir", "config"), root);
  out.data_dir = absolute(c.string("data_dir", "data"), root);
  const std::string log_dir = c.string("log_dir", "logs");
  out.log_dir = log_dir.empty() ? std::string() : absolute(log_dir, root);
  out.max_restarts = static_cast<unsigned>(c.integer("max_restarts", 3, 0, 1000));
  out.restart_period = c.milliseconds("restart_period_ms", out.restart_period, ms(1), ms(86400000));
  out.start_timeout = c.milliseconds("start_timeout_ms", out.start_timeout, ms(100), ms(600000));
  out.shutdown_timeout = c.milliseconds("shutdown_timeout_ms", out.shutdown_timeout, ms(100), ms(600000));
  out.pid_file = absolute(c.string("pid_file", "data/canopy-launch.pid"), root);
  for (const std::string& id : order) {
    auto known = known_apps().find(id);
    if (known == known_apps().end()) {
      c.fail("apps", "no app '" + id + "' (registry, cache, session_manager, task_runner)");
      continue;
    }
    const int port = std::stoi(known->second.second);
    app_entry a;
    a.id = id;
    a.binary = absolute(c.string(id + ".binary", (std::filesystem::path(bin_dir) / known->second.first).string()), root);
    a.endpoint = c.string(id + ".endpoint", "tcp://127.0.0.1:" + std::to_string(port));
    a.events = c.string(id + ".events", "tcp://127.0.0.1:" + std::to_string(port + 1));
    const std::string own = (std::filesystem::path(config_dir) / (id + ".toml")).string();
    a.config = absolute(c.string(id + ".config", std::filesystem::exists(own) ? own : std::string()), root);
    out.apps.push_back(std::move(a));
  }
  for (const std::string& id : only)
    if (std::none_of(out.apps.begin(), out.apps.end(), [&](const app_entry& a) { return a.id == id; }))
      c.fail("--only", "'" + id + "' is not among the apps of " + path);
  if (auto ok = c.finish(); !ok) return ok.error();
  if (!only.empty())
    std::erase_if(out.apps, [&](const app_entry& a) { return std::find(only.begin(), only.end(), a.id) == only.end(); });
  if (out.apps.empty()) return error(errc::invalid_argument, path + ": no app to launch");
  return out;
}

int run(const launch_config& c, std::ostream& out, std::ostream& err) {
  // SIGINT / SIGTERM are taken with sigtimedwait below: blocked before any thread starts,
  // so every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  for (const app_entry& a : c.apps)
    if (::access(a.binary.c_str(), X_OK) != 0) {
      err << "canopy-launch: " << a.id << ": no program at " << a.binary << " (build it: cmake --build --preset release)\n";
      return 1;
    }
  std::error_code ec;
  std::filesystem::create_directories(c.data_dir, ec);

  board status(out);
  runtime rt({.threads = 2, .shutdown_timeout = c.shutdown_timeout + 7s});
  reaper reap(rt);
  shared_state shared{&c, "", &reap, &status};
  for (const app_entry& a : c.apps)
    if (a.id == "registry") shared.registry_endpoint = a.endpoint;
  if (shared.registry_endpoint.empty()) shared.registry_endpoint = "tcp://127.0.0.1:7400";  // run elsewhere

  std::vector<child_spec> children;
  for (const app_entry& a : c.apps) children.push_back(app_spec(&shared, a));
  status.header();
  const supervisor_flags flags{.strategy = strategy::rest_for_one, .max_restarts = c.max_restarts,
                               .max_seconds = c.restart_period};
  auto top = supervisor::start(rt, flags, std::move(children), "canopy.launch");
  if (!top) {
    err << "canopy-launch: cannot start: " << top.error().to_string() << "\n";
    rt.shutdown();
    return 1;
  }
  if (!c.pid_file.empty()) {
    std::filesystem::create_directories(std::filesystem::path(c.pid_file).parent_path(), ec);
    std::ofstream(c.pid_file) << ::getpid() << "\n";
  }
  status.line("canopy-launch: " + std::to_string(c.apps.size()) + " apps running" +
              (c.log_dir.empty() ? std::string() : "; logs in " + c.log_dir) + "; Ctrl-C stops them");

  auto watch = rt.watch(*top);
  int code = 0;
  for (;;) {
    timespec tick{0, 200 * 1000 * 1000};
    const int sig = ::sigtimedwait(&stop_signals, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      status.line(std::string("canopy-launch: stopping on ") + (sig == SIGINT ? "SIGINT" : "SIGTERM"));
      rt.exit(*top, exit_reason::shutdown());
      (void)watch.wait(c.shutdown_timeout * static_cast<int>(c.apps.size() + 1) + 10s);
      break;
    }
    if (!rt.is_alive(*top)) {
      const std::string who = status.last_failed();
      err << "canopy-launch: " << (who.empty() ? std::string("an app") : who)
          << " kept failing: the restart intensity (" << c.max_restarts << " restarts in " << c.restart_period.count()
          << " ms) was reached; every app is stopped\n";
      code = 1;
      break;
    }
  }
  rt.shutdown();
  if (!c.pid_file.empty()) std::filesystem::remove(c.pid_file, ec);
  status.line("canopy-launch: stopped");
  return code;
}

}  // namespace canopy::launch
