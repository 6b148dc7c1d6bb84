#pragma once
// Why a process exited, following Erlang's exit reasons (SEMANTICS.md 36-42).
// Thread-safety: immutable value; copies share one immutable detail block.
//
// kill is the untrappable *signal*; a process it hits dies with killed, and its links see
// killed. normal and shutdown(...) are "clean": not logged as crashes and not restarted by a
// transient child spec.

#include <cstdint>
#include <exception>
#include <memory>
#include <string>

namespace canopy {

class exit_reason {
 public:
  enum class kind : std::uint8_t {
    normal,    // finished its work
    shutdown,  // asked to stop (optionally with a detail: shutdown(detail))
    kill,      // the untrappable kill signal (only ever sent, never an exit reason)
    killed,    // died of a kill signal
    noproc,    // the other process did not exist (link/monitor/call on a dead pid)
    timeout,   // gave up waiting
    error,     // an exception escaped a callback: name() is its type, detail() its what()
    other,     // an application-defined reason: name(), optional detail()
  };

  static exit_reason normal() noexcept { return exit_reason(kind::normal); }
  static exit_reason shutdown() noexcept { return exit_reason(kind::shutdown); }
  static exit_reason shutdown(std::string detail);
  static exit_reason kill() noexcept { return exit_reason(kind::kill); }
  static exit_reason killed() noexcept { return exit_reason(kind::killed); }
  static exit_reason noproc() noexcept { return exit_reason(kind::noproc); }
  static exit_reason timeout() noexcept { return exit_reason(kind::timeout); }
  static exit_reason error(std::string type, std::string what);
  static exit_reason other(std::string name, std::string detail = {});

  [[nodiscard]] kind what() const noexcept { return kind_; }
  [[nodiscard]] bool is_normal() const noexcept { return kind_ == kind::normal; }
  [[nodiscard]] bool is_shutdown() const noexcept { return kind_ == kind::shutdown; }
  [[nodiscard]] bool is_kill() const noexcept { return kind_ == kind::kill; }
  // normal, shutdown or shutdown(detail): no crash report, no transient restart.
  [[nodiscard]] bool is_clean() const noexcept { return is_normal() || is_shutdown(); }
  // The type name (error), the reason's name (other); empty otherwise.
  [[nodiscard]] const std::string& name() const noexcept;
  // shutdown's detail, error's what(), other's detail; empty otherwise.
  [[nodiscard]] const std::string& detail() const noexcept;
  // Erlang-like text: normal, shutdown, {shutdown,detail}, killed, {error,Type,What}, ...
  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const exit_reason& a, const exit_reason& b) noexcept;

 private:
  struct text {
    std::string name;
    std::string detail;
  };
  explicit exit_reason(kind k) noexcept : kind_(k) {}
  exit_reason(kind k, std::string name, std::string detail);

  kind kind_;
  std::shared_ptr<const text> text_;
};

// Thrown to make the running process exit with `reason` at once (Erlang's exit/1): the
// process boundary catches it and exits with exactly that reason (an abnormal one is
// logged as a crash). Task's await uses it to fail its caller with `timeout`.
class process_exit : public std::exception {
 public:
  explicit process_exit(exit_reason reason) : reason_(std::move(reason)), text_(reason_.to_string()) {}
  [[nodiscard]] const exit_reason& reason() const noexcept { return reason_; }
  [[nodiscard]] const char* what() const noexcept override { return text_.c_str(); }

 private:
  exit_reason reason_;
  std::string text_;
};

}  // namespace canopy
