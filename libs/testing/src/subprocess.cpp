#include "canopy/testing/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <thread>

namespace canopy::testing {

subprocess::subprocess(std::vector<std::string> argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(fds[1], STDERR_FILENO);
    ::dup2(fds[1], STDOUT_FILENO);  // one stream: what it prints, in order
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    // The test may have blocked signals in its threads; the child starts clean.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  err_fd_ = fds[0];
}

subprocess::~subprocess() {
  if (!status_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  if (err_fd_ >= 0) ::close(err_fd_);
}

bool subprocess::read_some(std::chrono::milliseconds wait) {
  pollfd p{err_fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return true;
  char buf[4096];
  const ssize_t n = ::read(err_fd_, buf, sizeof buf);
  if (n <= 0) return false;  // closed
  output_.append(buf, static_cast<std::size_t>(n));
  return true;
}

std::optional<std::string> subprocess::wait_for_line(const std::string& text, std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    for (std::size_t end; (end = output_.find('\n', scanned_)) != std::string::npos; scanned_ = end + 1) {
      std::string line = output_.substr(scanned_, end - scanned_);
      if (line.find(text) != std::string::npos) {
        scanned_ = end + 1;
        return line;
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    if (!read_some(std::min(left, std::chrono::milliseconds(100)))) return std::nullopt;
  }
}

void subprocess::signal(int sig) {
  if (!status_) ::kill(pid_, sig);
}

std::optional<int> subprocess::wait_exit(std::chrono::milliseconds deadline) {
  if (status_) return status_;
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    int st = 0;
    const int r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      for (;;) {  // what it wrote before exiting
        pollfd p{err_fd_, POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0) break;
        char buf[4096];
        const ssize_t n = ::read(err_fd_, buf, sizeof buf);
        if (n <= 0) break;
        output_.append(buf, static_cast<std::size_t>(n));
      }
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return status_;
    }
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    read_some(std::chrono::milliseconds(10));  // also keeps its stderr pipe from filling up
  }
}

}  // namespace canopy::testing
