#pragma once
// Durable files for apps that persist (the cache's snapshot, the task runner's journal):
// a CRC-32, whole writes that survive EINTR and short writes, and the temp-fsync-rename-
// fsync(directory) sequence that replaces a file atomically.
// Thread-safety: free functions and a value type; no shared state.
//
//   canopy::app::crc32 crc;
//   crc.add(bytes.data(), bytes.size());
//   if (auto ok = canopy::app::write_all(fd, bytes); !ok) ...
//   auto replaced = canopy::app::replace_file(path, [&](int fd) { return canopy::app::write_all(fd, all); });

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "canopy/core/result.hpp"

namespace canopy::app {

// CRC-32 (IEEE 802.3, reflected, as zlib's).
class crc32 {
 public:
  void add(const void* data, std::size_t n) noexcept;
  [[nodiscard]] std::uint32_t value() const noexcept { return crc_ ^ 0xFFFFFFFFu; }
  [[nodiscard]] static std::uint32_t of(std::string_view bytes) noexcept {
    crc32 c;
    c.add(bytes.data(), bytes.size());
    return c.value();
  }

 private:
  std::uint32_t crc_ = 0xFFFFFFFFu;
};

// "<what> <path>: <strerror(errno)>".
[[nodiscard]] std::string system_error(std::string_view what, std::string_view path);

// Writes all of `bytes` (retrying EINTR and short writes). errc::io with strerror.
canopy::result<void> write_all(int fd, std::string_view bytes);

// fsyncs the directory holding `path`, so a rename or create in it is durable.
void fsync_parent(const std::string& path);

// Replaces `path` atomically with what `fill` writes: `<path>.tmp` is created (mode 0600),
// filled, fsynced and renamed over `path`, then the directory is fsynced. On any failure
// the temp file is removed and `path` is untouched. errc::io naming the step.
canopy::result<void> replace_file(const std::string& path, const std::function<canopy::result<void>(int fd)>& fill);

}  // namespace canopy::app
