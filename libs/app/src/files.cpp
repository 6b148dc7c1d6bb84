#include "canopy/app/files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace canopy::app {

void crc32::add(const void* data, std::size_t n) noexcept {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) crc_ = table[(crc_ ^ p[i]) & 0xFF] ^ (crc_ >> 8);
}

std::string system_error(std::string_view what, std::string_view path) {
  return std::string(what) + " " + std::string(path) + ": " + std::strerror(errno);
}

canopy::result<void> write_all(int fd, std::string_view bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return error(errc::io, std::string("write: ") + std::strerror(errno));
    if (n == 0) return error(errc::io, "write: no progress");
    done += static_cast<std::size_t>(n);
  }
  return {};
}

void fsync_parent(const std::string& path) {
  const std::filesystem::path p(path);
  const std::string dir = p.has_parent_path() ? p.parent_path().string() : std::string(".");
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

canopy::result<void> replace_file(const std::string& path, const std::function<canopy::result<void>(int fd)>& fill) {
  const std::filesystem::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path(), ec);
  const std::string temp = path + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return error(errc::io, system_error("cannot create", temp));
  canopy::result<void> filled = fill(fd);
  if (filled && ::fsync(fd) != 0) filled = error(errc::io, system_error("cannot fsync", temp));
  ::close(fd);
  if (!filled) {
    ::unlink(temp.c_str());
    return error(errc::io, "writing " + temp + ": " + filled.error().to_string());
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string why = system_error("cannot rename onto", path);
    ::unlink(temp.c_str());
    return error(errc::io, why);
  }
  fsync_parent(path);  // the rename is durable once the directory is
  return {};
}

}  // namespace canopy::app
