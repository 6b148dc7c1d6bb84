// exec: a task that runs a program (argv), only when config enables it and only for the
// executables on its allow-list. The child runs outside the runtime: helper threads spawn
// it, read its output (bounded) and wait for it; the worker process is told the outcome.
// A worker that goes (timeout, cancel, the app's stop) kills the child.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "canopy/wire/codec.hpp"
#include "parts.hpp"

extern char** environ;

namespace canopy::task_app {

struct exec_outcome {
  bool started = false;
  std::string error;  // when not started
  int exit_code = 0;  // the exit status, or 128 + the signal
  std::string out, err;
  bool truncated = false;
};

// What the worker and the pool's thread share about one child.
struct exec_child {
  std::mutex mu;
  pid_t pid = 0;
  bool abandoned = false;
  void abandon() {
    std::lock_guard lk(mu);
    abandoned = true;
    if (pid > 0) ::kill(-pid, SIGKILL);  // the child's whole process group: its own children too
  }
};

class exec_pool {
 public:
  explicit exec_pool(const exec_options& o) : max_output_(o.max_output_bytes) {
    for (unsigned i = 0; i < std::max(1u, o.threads); ++i) threads_.emplace_back([this] { work(); });
  }
  ~exec_pool() {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
      for (auto& j : queue_) j.child->abandon();
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void submit(std::vector<std::string> argv, std::shared_ptr<exec_child> child, std::function<void(exec_outcome)> done) {
    {
      std::lock_guard lk(mu_);
      queue_.push_back({std::move(argv), std::move(child), std::move(done)});
    }
    wake_.notify_one();
  }

 private:
  struct job_item {
    std::vector<std::string> argv;
    std::shared_ptr<exec_child> child;
    std::function<void(exec_outcome)> done;
  };

  void work() {
    for (;;) {
      job_item j;
      {
        std::unique_lock lk(mu_);
        wake_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_ && queue_.empty()) return;
        j = std::move(queue_.front());
        queue_.pop_front();
      }
      j.done(run(j.argv, *j.child));
    }
  }

  exec_outcome run(const std::vector<std::string>& argv, exec_child& child) {
    exec_outcome r;
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
      r.error = std::string("pipe: ") + std::strerror(errno);
      return r;
    }
    if (::pipe2(err, O_CLOEXEC) != 0) {
      r.error = std::string("pipe: ") + std::strerror(errno);
      ::close(out[0]);
      ::close(out[1]);
      return r;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    // Its own process group, so a kill reaches what it starts too (a shell's children hold
    // the output pipes open).
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    int spawned;
    {
      std::lock_guard lk(child.mu);
      spawned = child.abandoned ? ECANCELED : ::posix_spawn(&pid, args[0], &fa, &attr, args.data(), environ);
      if (spawned == 0) child.pid = pid;
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    ::close(out[1]);
    ::close(err[1]);
    if (spawned != 0) {
      ::close(out[0]);
      ::close(err[0]);
      r.error = "cannot run " + argv[0] + ": " + std::strerror(spawned);
      return r;
    }
    r.started = true;
    // Both streams until both close; past max_output_ bytes each, the rest is read and dropped.
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    std::string* into[2] = {&r.out, &r.err};
    int open = 2;
    char buf[4096];
    while (open > 0) {
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n <= 0) {
          if (n < 0 && errno == EINTR) continue;
          ::close(fds[i].fd);
          fds[i].fd = -1;
          --open;
          continue;
        }
        const std::size_t room = max_output_ - std::min(max_output_, into[i]->size());
        into[i]->append(buf, std::min(room, static_cast<std::size_t>(n)));
        if (static_cast<std::size_t>(n) > room) r.truncated = true;
      }
    }
    for (auto& f : fds)
      if (f.fd >= 0) ::close(f.fd);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    {
      std::lock_guard lk(child.mu);
      child.pid = 0;
    }
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return r;
  }

  std::size_t max_output_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<job_item> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

exec_pool_ptr make_exec_pool(const exec_options& o) { return exec_pool_ptr(new exec_pool(o)); }
void exec_pool_deleter::operator()(exec_pool* p) const noexcept { delete p; }

namespace {

std::optional<std::vector<std::string>> argv_of(const msgpack::object& args) {
  if (args.type != msgpack::type::MAP) return std::nullopt;
  const msgpack::object* argv = wire::find(args, "argv");
  if (argv == nullptr || argv->type != msgpack::type::ARRAY || argv->via.array.size == 0) return std::nullopt;
  std::vector<std::string> out;
  for (std::uint32_t i = 0; i < argv->via.array.size; ++i) {
    const msgpack::object& a = argv->via.array.ptr[i];
    if (a.type != msgpack::type::STR) return std::nullopt;
    out.emplace_back(a.via.str.ptr, a.via.str.size);
    if (out.back().find('\0') != std::string::npos) return std::nullopt;
  }
  return out;
}

wire::value outcome_value(const exec_outcome& r) {
  msgpack::sbuffer b(128 + r.out.size() + r.err.size());
  wire::packer p(b);
  p.pack_map(4);
  p.pack("exit_code");
  p.pack(r.exit_code);
  p.pack("stdout");
  p.pack(r.out);
  p.pack("stderr");
  p.pack(r.err);
  p.pack("truncated");
  p.pack(r.truncated);
  return wire::value::from_packed(std::string(b.data(), b.size()));
}

}  // namespace

std::optional<std::pair<wire::error_code, std::string>> exec_refusal(const exec_options& o,
                                                                     const msgpack::object& args) {
  if (!o.enabled) return std::pair{wire::error_code::unauthorized, std::string("exec is disabled (task_runner.exec.enabled)")};
  const auto argv = argv_of(args);
  if (!argv) return std::pair{wire::error_code::invalid_args, std::string("exec needs args.argv: an array of strings, the program first")};
  if (std::find(o.allow.begin(), o.allow.end(), (*argv)[0]) == o.allow.end())
    return std::pair{wire::error_code::unauthorized,
                     (*argv)[0] + " is not on the allow-list (task_runner.exec.allow)"};
  return std::nullopt;
}

kind_function exec_kind(exec_pool& pool) {
  return [&pool](job& j) {
    auto argv = argv_of(j.args_object());
    if (!argv) throw std::invalid_argument("exec needs args.argv");
    auto child = std::make_shared<exec_child>();
    j.on_abandon([child] { child->abandon(); });
    job::delivery deliver = j.deliverer();
    pool.submit(std::move(*argv), child, [deliver](exec_outcome r) {
      deliver([r = std::move(r)](job& done) {
        if (!r.started) return done.fail(r.error, "exit");
        if (r.exit_code == 0) return done.succeed(outcome_value(r));
        std::string message = "exit status " + std::to_string(r.exit_code);
        if (!r.err.empty()) message += ": " + r.err.substr(0, 512);
        done.fail(std::move(message), "exit");
      });
    });
  };
}

}  // namespace canopy::task_app
