#pragma once
// journal: the task runner's append-only file of records (task_book's), so no accepted
// task is lost. Thread-safety: read_journal is a function; a journal_writer is used from
// any thread (append, compact) and runs its own writer thread.
//
// Format: records one after another, each [0xC7][length: u32 LE][CRC-32 of the payload:
// u32 LE][payload: length bytes]. Reading:
//   - a record cut short at the end of the file, or whose checksum fails with nothing
//     after it, is a torn write (the app was killed while writing): it is reported, the
//     file is truncated before it, and everything before it stands;
//   - a bad record with more bytes after it is corruption in the middle: read_journal
//     refuses the file (errc::io naming the offset) and nothing is served from it.
//
// Durability (fsync_policy), for a record whose on_durable has been called:
//   always  fsynced before it is reported durable; records that arrive while an fsync runs
//           share the next one. Nothing reported durable is lost, not even to a power cut.
//   group   the same, but the writer waits up to `group_window` after the first pending
//           record to gather more into one fsync: fewer fsyncs, up to that much latency.
//   never   reported durable once write() returned (in the OS's page cache): survives a
//           kill of the app, not a crash of the machine.
// A write that fails (ENOSPC, EIO) is undone — the file is truncated to its last good size
// — and the records of that batch are reported failed; later appends try again.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "canopy/core/result.hpp"

namespace canopy::task_app {

enum class fsync_policy : std::uint8_t { always, group, never };

struct journal_read {
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;        // the good part of the file
  std::uint64_t torn_bytes = 0;   // cut from the end (a torn last write)
};

// Hands every record's payload to `apply`, in order. A missing file reads as empty. A torn
// tail is truncated away (and counted); corruption in the middle, or `apply` refusing a
// record, is errc::io / the refusal with the offset.
canopy::result<journal_read> read_journal(const std::string& path,
                                          const std::function<canopy::result<void>(std::string_view)>& apply);

// One record as it lies in the file (tests build damaged files with it).
[[nodiscard]] std::string frame_record(std::string_view payload);

// A compaction's new file, built record by record in chunks of about 1 MiB: never one
// allocation the size of the whole file (growing one would copy it, briefly holding it
// twice), and each chunk is freed as soon as it is written.
class journal_snapshot {
 public:
  void add(std::string_view payload);
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }

 private:
  friend class journal_writer;
  static constexpr std::size_t chunk_bytes = std::size_t{1} << 20;
  std::vector<std::string> chunks_;
  std::size_t bytes_ = 0;
};

struct journal_stats {
  std::uint64_t records = 0;      // appended since open
  std::uint64_t bytes = 0;        // the file's size
  std::uint64_t fsyncs = 0;
  std::uint64_t write_failures = 0;
  std::uint64_t compactions = 0;
};

class journal_writer {
 public:
  // Called on the writer thread after each batch: every record up to `seq` is durable
  // (per the policy), or, with `ok` false, the batch (seqs after the previous call up to
  // `seq`) was not written and `why` says why.
  using durable_callback = std::function<void(std::uint64_t seq, bool ok, const std::string& why)>;

  // Opens `path` for appending (creating it and its directory). errc::io.
  static canopy::result<std::unique_ptr<journal_writer>> open(const std::string& path, fsync_policy policy,
                                                              std::chrono::milliseconds group_window,
                                                              durable_callback on_durable);
  ~journal_writer();
  journal_writer(const journal_writer&) = delete;
  journal_writer& operator=(const journal_writer&) = delete;

  // Queues one record; its sequence number (1, 2, ...).
  std::uint64_t append(std::string payload);
  // Queues a replacement of the whole file by `snapshot`: written to a temp file, fsynced
  // and renamed over the journal, after every record appended before it; records
  // appended after it go to the new file.
  void compact(journal_snapshot snapshot);

  [[nodiscard]] journal_stats stats() const;
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  // Writes and fsyncs what is queued, then stops the thread. Idempotent.
  void stop();

 private:
  journal_writer(std::string path, int fd, std::uint64_t size, fsync_policy policy, std::chrono::milliseconds window,
                 durable_callback on_durable);
  void run();
  struct item {
    std::uint64_t seq;  // 0 for a compaction
    std::string bytes;  // a framed record
    journal_snapshot snapshot;  // a compaction's new file
  };

  std::string path_;
  int fd_;
  fsync_policy policy_;
  std::chrono::milliseconds window_;
  durable_callback on_durable_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::vector<item> queue_;
  std::uint64_t next_seq_ = 1;
  bool stopping_ = false;
  journal_stats stats_;
  std::thread thread_;
};

}  // namespace canopy::task_app
