#include "canopy/cache_app/snapshot.hpp"

#include "canopy/app/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace canopy::cache_app {

namespace {

constexpr char magic[8] = {'C', 'N', 'P', 'Y', 'C', 'S', 'H', '1'};
constexpr char trailer[4] = {'E', 'N', 'D', '!'};
constexpr std::uint32_t version = 1;

using canopy::app::crc32;
using canopy::app::system_error;

// Buffered writes to a file descriptor, with the CRC of everything written.
class writer {
 public:
  explicit writer(int fd) : fd_(fd) { buf_.reserve(1 << 16); }
  void bytes(const void* p, std::size_t n) {
    crc_.add(p, n);
    raw(p, n);
  }
  template <class T>
  void number(T v) {
    unsigned char b[sizeof(T)];
    for (std::size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(v) >> (8 * i));
    bytes(b, sizeof b);
  }
  void raw(const void* p, std::size_t n) {
    buf_.append(static_cast<const char*>(p), n);
    if (buf_.size() >= (1 << 16)) flush();
  }
  bool flush() {
    std::size_t done = 0;
    while (done < buf_.size()) {
      const ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ok_ = false;
        return false;
      }
      done += static_cast<std::size_t>(n);
    }
    buf_.clear();
    return ok_;
  }
  [[nodiscard]] bool ok() const noexcept { return ok_; }
  [[nodiscard]] std::uint32_t crc() const noexcept { return crc_.value(); }

 private:
  int fd_;
  std::string buf_;
  crc32 crc_;
  bool ok_ = true;
};

// Reads from the whole file in memory, with bounds checks.
class reader {
 public:
  explicit reader(std::string data) : data_(std::move(data)) {}
  bool bytes(std::string& out, std::size_t n) {
    if (data_.size() - at_ < n) return false;
    out.assign(data_, at_, n);
    at_ += n;
    return true;
  }
  template <class T>
  bool number(T& v) {
    if (data_.size() - at_ < sizeof(T)) return false;
    std::uint64_t x = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) x |= std::uint64_t{static_cast<unsigned char>(data_[at_ + i])} << (8 * i);
    v = static_cast<T>(x);
    at_ += sizeof(T);
    return true;
  }
  [[nodiscard]] std::size_t at() const noexcept { return at_; }
  [[nodiscard]] const std::string& data() const noexcept { return data_; }

 private:
  std::string data_;
  std::size_t at_ = 0;
};

}  // namespace

canopy::result<std::uint64_t> write_snapshot(const store& s, const std::string& path, clocks now) {
  std::uint64_t count = 0;
  auto replaced = canopy::app::replace_file(path, [&](int fd) -> canopy::result<void> {
    writer w(fd);
    w.bytes(magic, sizeof magic);
    w.number<std::uint32_t>(version);
    s.each_oldest_first([&](const std::string&, const wire::value&, const std::optional<time_point>&) { ++count; });
    w.number<std::uint64_t>(count);
    s.each_oldest_first([&](const std::string& key, const wire::value& value, const std::optional<time_point>& expires) {
      w.number<std::uint32_t>(static_cast<std::uint32_t>(key.size()));
      w.bytes(key.data(), key.size());
      w.number<std::uint32_t>(static_cast<std::uint32_t>(value.bytes().size()));
      w.bytes(value.bytes().data(), value.bytes().size());
      std::int64_t wall = 0;
      if (expires)
        wall = now.wall_ms + std::chrono::duration_cast<std::chrono::milliseconds>(*expires - now.mono).count();
      w.number<std::int64_t>(expires ? std::max<std::int64_t>(wall, 1) : 0);
    });
    const std::uint32_t crc = w.crc();
    unsigned char c[4];
    for (int i = 0; i < 4; ++i) c[i] = static_cast<unsigned char>(crc >> (8 * i));
    w.raw(c, 4);
    w.raw(trailer, 4);
    if (!w.flush()) return error(errc::io, system_error("cannot write", path + ".tmp"));
    return {};
  });
  if (!replaced) return replaced.error();
  return count;
}

canopy::result<loaded> read_snapshot(store& s, const std::string& path, clocks now, const wire::decode_limits& limits) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return error(errc::not_found, "no snapshot at " + path);
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(errc::invalid_argument, system_error("cannot read", path));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto corrupt = [&](const std::string& why) {
    s.clear(now.mono);
    return error(errc::invalid_argument, "the snapshot " + path + " is corrupt: " + why);
  };
  constexpr std::size_t tail = 8;  // CRC + trailer
  if (data.size() < sizeof magic + 4 + 8 + tail) return corrupt("truncated (" + std::to_string(data.size()) + " bytes)");
  if (std::memcmp(data.data(), magic, sizeof magic) != 0) return corrupt("not a Canopy cache snapshot");
  if (std::memcmp(data.data() + data.size() - 4, trailer, 4) != 0) return corrupt("truncated (no trailer)");
  crc32 crc;
  crc.add(data.data(), data.size() - tail);
  std::uint32_t stored = 0;
  for (int i = 0; i < 4; ++i)
    stored |= std::uint32_t{static_cast<unsigned char>(data[data.size() - tail + static_cast<std::size_t>(i)])} << (8 * i);
  if (crc.value() != stored) return corrupt("checksum mismatch");

  reader r(data.substr(0, data.size() - tail));
  std::string skip;
  r.bytes(skip, sizeof magic);
  std::uint32_t v = 0;
  std::uint64_t count = 0;
  r.number(v);
  if (v != version) return corrupt("version " + std::to_string(v) + " (this build reads " + std::to_string(version) + ")");
  r.number(count);
  loaded out;
  std::string key, bytes;
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint32_t klen = 0, vlen = 0;
    std::int64_t wall = 0;
    if (!r.number(klen) || !r.bytes(key, klen) || !r.number(vlen) || !r.bytes(bytes, vlen) || !r.number(wall))
      return corrupt("entry " + std::to_string(i) + " of " + std::to_string(count) + " is cut short");
    wire::decode_failure why;
    auto value = wire::value::from_bytes(std::move(bytes), limits, &why);
    if (!value) return corrupt("entry " + std::to_string(i) + " holds no valid value: " + why.message);
    std::optional<std::chrono::milliseconds> ttl;
    if (wall != 0) {
      if (wall <= now.wall_ms) {
        ++out.expired;
        continue;
      }
      ttl = std::chrono::milliseconds(wall - now.wall_ms);
    }
    s.put(key, std::move(*value), ttl, now.mono);
    ++out.entries;
  }
  if (r.at() != r.data().size()) return corrupt("bytes after the last entry");
  return out;
}

}  // namespace canopy::cache_app
