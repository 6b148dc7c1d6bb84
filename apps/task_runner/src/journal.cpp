#include "canopy/task_app/journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "canopy/app/files.hpp"

namespace canopy::task_app {

namespace {

constexpr unsigned char magic = 0xC7;
constexpr std::size_t header_bytes = 9;

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

std::uint32_t get_u32(const std::string& in, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<unsigned char>(in[at + static_cast<std::size_t>(i)])} << (8 * i);
  return v;
}

bool all_zero(const std::string& data, std::size_t from) {
  for (std::size_t i = from; i < data.size(); ++i)
    if (data[i] != 0) return false;
  return true;
}

}  // namespace

namespace {
void append_record(std::string& out, std::string_view payload) {
  out.push_back(static_cast<char>(magic));
  put_u32(out, static_cast<std::uint32_t>(payload.size()));
  put_u32(out, canopy::app::crc32::of(payload));
  out.append(payload);
}
}  // namespace

std::string frame_record(std::string_view payload) {
  std::string out;
  out.reserve(header_bytes + payload.size());
  append_record(out, payload);
  return out;
}

void journal_snapshot::add(std::string_view payload) {
  const std::size_t framed = header_bytes + payload.size();
  if (chunks_.empty() || chunks_.back().size() + framed > chunk_bytes) {
    chunks_.emplace_back();
    chunks_.back().reserve(std::max(chunk_bytes, framed));
  }
  append_record(chunks_.back(), payload);
  bytes_ += framed;
}

canopy::result<journal_read> read_journal(const std::string& path,
                                          const std::function<canopy::result<void>(std::string_view)>& apply) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return journal_read{};
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(errc::io, canopy::app::system_error("cannot read", path));
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  journal_read out;
  std::size_t at = 0;
  auto torn = [&] {
    out.torn_bytes = data.size() - at;
    return true;
  };
  while (at < data.size()) {
    const std::size_t left = data.size() - at;
    if (static_cast<unsigned char>(data[at]) != magic) {
      if (all_zero(data, at) && torn()) break;  // a file system's zero fill after a crash
      return error(errc::io, path + ": corrupt at byte " + std::to_string(at) + " (no record starts there)");
    }
    if (left < header_bytes && torn()) break;
    const std::uint32_t length = get_u32(data, at + 1);
    const std::uint32_t crc = get_u32(data, at + 5);
    if (left - header_bytes < length && torn()) break;  // cut short: the last write was torn
    const std::string_view payload(data.data() + at + header_bytes, length);
    if (canopy::app::crc32::of(payload) != crc) {
      if (at + header_bytes + length == data.size() && torn()) break;  // the last record, half-written
      return error(errc::io, path + ": corrupt at byte " + std::to_string(at) + " (checksum mismatch with " +
                                 std::to_string(data.size() - at - header_bytes - length) + " bytes after it)");
    }
    if (auto applied = apply(payload); !applied)
      return error(errc::io, path + ": the record at byte " + std::to_string(at) + " cannot be applied: " +
                                 applied.error().to_string());
    at += header_bytes + length;
    ++out.records;
  }
  out.bytes = at;
  if (out.torn_bytes > 0) {
    // Cut the torn tail so the next append starts on a record boundary.
    if (::truncate(path.c_str(), static_cast<off_t>(at)) != 0)
      return error(errc::io, canopy::app::system_error("cannot truncate the torn tail of", path));
    if (const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC); fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  }
  return out;
}

// ---- writer ---------------------------------------------------------------------------------

canopy::result<std::unique_ptr<journal_writer>> journal_writer::open(const std::string& path, fsync_policy policy,
                                                                     std::chrono::milliseconds group_window,
                                                                     durable_callback on_durable) {
  const std::filesystem::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return error(errc::io, canopy::app::system_error("cannot open the journal", path));
  struct stat st {};
  ::fstat(fd, &st);
  canopy::app::fsync_parent(path);  // a journal just created is there after a crash
  return std::unique_ptr<journal_writer>(new journal_writer(path, fd, static_cast<std::uint64_t>(st.st_size), policy,
                                                            group_window, std::move(on_durable)));
}

journal_writer::journal_writer(std::string path, int fd, std::uint64_t size, fsync_policy policy,
                               std::chrono::milliseconds window, durable_callback on_durable)
    : path_(std::move(path)), fd_(fd), policy_(policy), window_(window), on_durable_(std::move(on_durable)) {
  stats_.bytes = size;
  thread_ = std::thread([this] { run(); });
}

journal_writer::~journal_writer() { stop(); }

std::uint64_t journal_writer::append(std::string payload) {
  std::string framed = frame_record(payload);
  std::lock_guard lk(mu_);
  const std::uint64_t seq = next_seq_++;
  const bool was_empty = queue_.empty();
  queue_.push_back({seq, std::move(framed), {}});
  if (was_empty) wake_.notify_one();
  return seq;
}

void journal_writer::compact(journal_snapshot snapshot) {
  std::lock_guard lk(mu_);
  queue_.push_back({0, {}, std::move(snapshot)});
  wake_.notify_one();
}

journal_stats journal_writer::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

void journal_writer::stop() {
  {
    std::lock_guard lk(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void journal_writer::run() {
  std::vector<item> batch;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      wake_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      // Group commit: let more records join this batch's one fsync.
      if (policy_ == fsync_policy::group && !stopping_)
        wake_.wait_for(lk, window_, [&] { return stopping_; });
      batch.swap(queue_);
    }
    std::string pending;
    std::uint64_t last_seq = 0;
    auto write_out = [&] {
      if (pending.empty()) return;
      std::uint64_t size;
      {
        std::lock_guard lk(mu_);
        size = stats_.bytes;
      }
      std::string why;
      auto written = canopy::app::write_all(fd_, pending);
      if (!written) {
        why = written.error().to_string();
      } else if (policy_ != fsync_policy::never && ::fdatasync(fd_) != 0) {
        why = canopy::app::system_error("cannot fsync", path_);
      }
      const bool ok = why.empty();
      if (!ok && ::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
        // Undo failed too: the next read finds a torn tail at worst, never a half record
        // followed by good ones — the next batch is only written after a successful undo.
        why += "; and undoing it failed: " + std::string(std::strerror(errno));
      }
      {
        std::lock_guard lk(mu_);
        if (ok) {
          stats_.bytes += pending.size();
          if (policy_ != fsync_policy::never) ++stats_.fsyncs;
        } else {
          ++stats_.write_failures;
        }
      }
      if (on_durable_) on_durable_(last_seq, ok, why);
      pending.clear();
    };
    for (item& it : batch) {
      if (it.seq == 0) {  // a compaction: what came before goes to the old file first
        write_out();
        const std::uint64_t snapshot_bytes = it.snapshot.bytes();
        auto replaced = canopy::app::replace_file(path_, [&](int fd) -> canopy::result<void> {
          for (std::string& chunk : it.snapshot.chunks_) {
            if (auto written = canopy::app::write_all(fd, chunk); !written) return written;
            std::string().swap(chunk);  // written: its memory goes back now
          }
          return {};
        });
        it.snapshot = {};
        if (replaced) {
          const int fresh = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
          if (fresh >= 0) {
            ::close(fd_);
            fd_ = fresh;
            std::lock_guard lk(mu_);
            stats_.bytes = snapshot_bytes;
            ++stats_.compactions;
          }
        }
        continue;
      }
      pending += it.bytes;
      last_seq = it.seq;
      {
        std::lock_guard lk(mu_);
        ++stats_.records;
      }
    }
    write_out();
    batch.clear();
  }
}

}  // namespace canopy::task_app
