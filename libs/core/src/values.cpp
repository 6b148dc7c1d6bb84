// Small value types: errc names, error, exit_reason, pid printing, type names.
#include <cxxabi.h>

#include <array>
#include <cstdlib>
#include <memory>
#include <ostream>

#include "canopy/core/detail/call.hpp"
#include "canopy/core/error.hpp"
#include "canopy/core/exit_reason.hpp"
#include "canopy/core/message.hpp"
#include "canopy/core/pid.hpp"

namespace canopy {

namespace {
struct errc_name {
  errc code;
  std::string_view name;
};
constexpr std::array<errc_name, 19> errc_names{{
    {errc::noproc, "noproc"},
    {errc::timeout, "timeout"},
    {errc::exited, "exited"},
    {errc::calling_self, "calling_self"},
    {errc::bad_reply, "bad_reply"},
    {errc::already_registered, "already_registered"},
    {errc::not_registered, "not_registered"},
    {errc::invalid_argument, "invalid_argument"},
    {errc::shutting_down, "shutting_down"},
    {errc::already_started, "already_started"},
    {errc::start_failed, "start_failed"},
    {errc::ignored, "ignored"},
    {errc::not_found, "not_found"},
    {errc::already_present, "already_present"},
    {errc::running, "running"},
    {errc::restarting, "restarting"},
    {errc::max_children, "max_children"},
    {errc::unavailable, "unavailable"},
    {errc::io, "io"},
}};
}  // namespace

std::string_view to_string(errc code) noexcept {
  for (const auto& e : errc_names)
    if (e.code == code) return e.name;
  return "unknown";
}

std::optional<errc> errc_from_string(std::string_view text) noexcept {
  for (const auto& e : errc_names)
    if (e.name == text) return e.code;
  return std::nullopt;
}

error error::from_exit(exit_reason reason, std::string context) {
  return with_reason(errc::exited, std::move(reason), std::move(context));
}

error error::with_reason(errc code, exit_reason reason, std::string context) {
  error e(code, std::move(context));
  e.reason_ = std::move(reason);
  return e;
}

std::string error::to_string() const {
  std::string out(canopy::to_string(code_));
  if (code_ == errc::exited || code_ == errc::start_failed) out += ": " + reason_.to_string();
  if (!context_.empty()) out += " (" + context_ + ")";
  return out;
}

exit_reason::exit_reason(kind k, std::string name, std::string detail)
    : kind_(k), text_(std::make_shared<const text>(text{std::move(name), std::move(detail)})) {}

exit_reason exit_reason::shutdown(std::string detail) {
  return exit_reason(kind::shutdown, {}, std::move(detail));
}
exit_reason exit_reason::error(std::string type, std::string what) {
  return exit_reason(kind::error, std::move(type), std::move(what));
}
exit_reason exit_reason::other(std::string name, std::string detail) {
  return exit_reason(kind::other, std::move(name), std::move(detail));
}

const std::string& exit_reason::name() const noexcept {
  static const std::string empty;
  return text_ ? text_->name : empty;
}
const std::string& exit_reason::detail() const noexcept {
  static const std::string empty;
  return text_ ? text_->detail : empty;
}

std::string exit_reason::to_string() const {
  switch (kind_) {
    case kind::normal: return "normal";
    case kind::shutdown: return detail().empty() ? "shutdown" : "{shutdown," + detail() + "}";
    case kind::kill: return "kill";
    case kind::killed: return "killed";
    case kind::noproc: return "noproc";
    case kind::timeout: return "timeout";
    case kind::error: return "{error," + name() + "," + detail() + "}";
    case kind::other: return detail().empty() ? name() : "{" + name() + "," + detail() + "}";
  }
  return "unknown";
}

bool operator==(const exit_reason& a, const exit_reason& b) noexcept {
  return a.kind_ == b.kind_ && a.name() == b.name() && a.detail() == b.detail();
}

std::string pid::to_string() const {
  if (!cell_) return "<null>";
  return "<0." + std::to_string(cell_->id()) + ".0>";
}

std::ostream& operator<<(std::ostream& os, const pid& p) { return os << p.to_string(); }

namespace detail {

std::string type_name(const std::type_info& info) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(
      abi::__cxa_demangle(info.name(), nullptr, nullptr, &status), std::free);
  return status == 0 && demangled ? std::string(demangled.get()) : std::string(info.name());
}

error bad_reply_error(const std::type_info& expected, const std::type_info& got) {
  return error(errc::bad_reply, "expected " + type_name(expected) + ", got " + type_name(got));
}

}  // namespace detail
}  // namespace canopy
