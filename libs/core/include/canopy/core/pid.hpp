#pragma once
// pid: a process identifier, a small copyable value (one pointer).
// Thread-safety: a value; copy and send it anywhere.
//
// Sending to a dead pid is a silent no-op, as in Erlang. A pid keeps only the process's
// small control block alive (not its state), so holding stale pids is cheap.

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>

#include "canopy/core/detail/cell.hpp"

namespace canopy {

class pid {
 public:
  pid() noexcept = default;

  [[nodiscard]] bool is_null() const noexcept { return !cell_; }
  explicit operator bool() const noexcept { return static_cast<bool>(cell_); }
  // Unique for the runtime's lifetime; 0 for the null pid.
  [[nodiscard]] std::uint64_t id() const noexcept { return cell_ ? cell_->id() : 0; }
  // Erlang-style "<0.42.0>"; "<null>" for the null pid.
  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const pid& a, const pid& b) noexcept { return a.cell_ == b.cell_; }
  friend bool operator<(const pid& a, const pid& b) noexcept { return a.id() < b.id(); }

  // Internal.
  explicit pid(detail::cell_ref cell) noexcept : cell_(std::move(cell)) {}
  [[nodiscard]] const detail::cell_ref& cell() const noexcept { return cell_; }

 private:
  detail::cell_ref cell_;
};

std::ostream& operator<<(std::ostream& os, const pid& p);

}  // namespace canopy

template <>
struct std::hash<canopy::pid> {
  std::size_t operator()(const canopy::pid& p) const noexcept {
    return std::hash<std::uint64_t>{}(p.id());
  }
};
