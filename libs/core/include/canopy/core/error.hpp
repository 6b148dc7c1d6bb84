#pragma once
// Expected failures of runtime APIs: a stable error code plus human context.
// Thread-safety: values; safe to copy between threads.
//
// Why not std::error_code: our codes are a closed, documented set that clients switch on,
// and an `exited` error must carry the callee's exit reason, which error_code cannot.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "canopy/core/exit_reason.hpp"

namespace canopy {

// Values are stable: never renumber, only append.
enum class errc : unsigned char {
  noproc = 1,              // the target process is not alive (or never was)
  timeout = 2,             // no answer within the deadline
  exited = 3,              // the callee exited before replying; error::reason() says why
  calling_self = 4,        // a process called itself
  bad_reply = 5,           // the reply had another type than the caller expected
  already_registered = 6,  // the name is held by a live process
  not_registered = 7,      // no process holds that name
  invalid_argument = 8,    // an argument is out of range or malformed
  shutting_down = 9,       // the runtime is stopping and refuses new work
  already_started = 10,    // a process to be started under a name finds it taken (context: holder)
  start_failed = 11,       // init stopped or crashed; error::reason() says why
  ignored = 12,            // init answered ignore: nothing was started
  not_found = 13,          // no such child (supervisor admin API)
  already_present = 14,    // a stopped child with that id is still specified
  running = 15,            // the child is running (restart_child, delete_child)
  restarting = 16,         // the child is waiting for a restart retry
  max_children = 17,       // a dynamic supervisor is full
  unavailable = 18,        // a remote peer cannot be reached (no connection took the request)
  io = 19,                 // a file operation failed (context: the path and the OS's reason)
};

[[nodiscard]] std::string_view to_string(errc code) noexcept;
[[nodiscard]] std::optional<errc> errc_from_string(std::string_view text) noexcept;

class error {
 public:
  error(errc code, std::string context = {}) : code_(code), context_(std::move(context)) {}  // NOLINT: implicit by design
  // An `exited` error carrying the callee's exit reason.
  static error from_exit(exit_reason reason, std::string context = {});
  // Any code with an exit reason attached (errc::start_failed).
  static error with_reason(errc code, exit_reason reason, std::string context = {});

  [[nodiscard]] errc code() const noexcept { return code_; }
  [[nodiscard]] const std::string& context() const noexcept { return context_; }
  // The exit reason for errc::exited and errc::start_failed; normal() otherwise.
  [[nodiscard]] const exit_reason& reason() const noexcept { return reason_; }
  // "timeout", "noproc: <context>", "exited: {error, boom}" ...
  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const error& a, errc b) noexcept { return a.code_ == b; }

 private:
  errc code_;
  std::string context_;
  exit_reason reason_ = exit_reason::normal();
};

}  // namespace canopy
