#pragma once
// process_name: how a process is named when it starts — not at all, under a local name
// (runtime::register_name), or through a name service such as a Registry (OTP's
// {via, Module, Name}). Thread-safety: a value; copy it anywhere.
//
//   gen_server::start_link<worker>({.name = "cache"});                     // local
//   gen_server::start_link<worker>({.name = canopy::via(registry, "w1")});  // a Registry key

#include <memory>
#include <string>
#include <utility>

#include "canopy/core/pid.hpp"
#include "canopy/core/result.hpp"

namespace canopy {

namespace detail {
class process_cell;
class runtime_core;
}  // namespace detail

// A name service's side of a via name. register_process runs on the starting thread,
// before the new process's init and before it is scheduled: it registers that process (not
// the caller) and answers errc::already_registered (with the holder) if the name is taken.
class name_binding {
 public:
  virtual ~name_binding() = default;
  virtual result<void> register_process(detail::runtime_core& rt, detail::process_cell* process) const = 0;
  [[nodiscard]] virtual pid whereis(detail::runtime_core& rt) const = 0;
  [[nodiscard]] virtual std::string to_string() const = 0;
};

class process_name {
 public:
  process_name() = default;
  process_name(std::string local) : local_(std::move(local)) {}  // NOLINT: implicit, as a name is written
  process_name(const char* local) : local_(local) {}            // NOLINT
  explicit process_name(std::shared_ptr<const name_binding> via) : via_(std::move(via)) {}

  [[nodiscard]] bool empty() const noexcept { return local_.empty() && !via_; }
  [[nodiscard]] bool is_local() const noexcept { return !local_.empty(); }
  [[nodiscard]] const std::string& local() const noexcept { return local_; }
  [[nodiscard]] const name_binding* via() const noexcept { return via_.get(); }
  [[nodiscard]] std::string to_string() const { return via_ ? via_->to_string() : local_; }

 private:
  std::string local_;
  std::shared_ptr<const name_binding> via_;
};

}  // namespace canopy
