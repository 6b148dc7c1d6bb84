// journal: records written under each fsync policy read back in order; a torn last record
// (cut short, bad checksum, zero fill) is cut and appending goes on; corruption in the
// middle refuses the file; compaction replaces it; a write that fails (a full disk) is
// reported for its batch and leaves the file as it was.
#include "canopy/task_app/journal.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>

#include "../fuzz/journal_property.hpp"
#include "canopy/testing/wait.hpp"

namespace canopy::task_app {
namespace {

using namespace std::chrono_literals;

class Journal : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("canopy_journal_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    path = (dir / "j").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir); }

  std::vector<std::string> read_all(canopy::result<journal_read>* out = nullptr) {
    std::vector<std::string> got;
    auto r = read_journal(path, [&](std::string_view rec) -> canopy::result<void> {
      got.emplace_back(rec);
      return {};
    });
    if (out) *out = r;
    EXPECT_TRUE(r) << r.error().to_string();
    return got;
  }
  std::string file() {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  void write_file(const std::string& bytes) { std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes; }

  struct durability {
    std::mutex mu;
    std::uint64_t durable = 0;
    std::vector<std::string> failures;
    journal_writer::durable_callback callback() {
      return [this](std::uint64_t seq, bool ok, const std::string& why) {
        std::lock_guard lk(mu);
        if (ok) {
          durable = seq;
        } else {
          failures.push_back(why);
        }
      };
    }
    std::uint64_t seen() {
      std::lock_guard lk(mu);
      return durable;
    }
  };

  std::filesystem::path dir;
  std::string path;
};

TEST_F(Journal, RecordsComeBackInOrderUnderEveryPolicy) {
  for (fsync_policy policy : {fsync_policy::always, fsync_policy::group, fsync_policy::never}) {
    std::filesystem::remove_all(dir);
    durability d;
    auto w = journal_writer::open(path, policy, 2ms, d.callback());
    ASSERT_TRUE(w) << w.error().to_string();
    for (int i = 0; i < 100; ++i) EXPECT_EQ((*w)->append("record " + std::to_string(i)), static_cast<std::uint64_t>(i + 1));
    ASSERT_TRUE(testing::wait_until([&] { return d.seen() == 100; }));
    (*w)->stop();
    const auto got = read_all();
    ASSERT_EQ(got.size(), 100u);
    EXPECT_EQ(got[0], "record 0");
    EXPECT_EQ(got[99], "record 99");
    if (policy != fsync_policy::never) {
      EXPECT_GE((*w)->stats().fsyncs, 1u);
    }
  }
}

TEST_F(Journal, AMissingFileIsAnEmptyJournal) {
  canopy::result<journal_read> r = journal_read{};
  EXPECT_TRUE(read_all(&r).empty());
  EXPECT_EQ(r->records, 0u);
}

TEST_F(Journal, ATornLastRecordIsCutAndAppendingGoesOn) {
  std::filesystem::create_directories(dir);
  const std::string good = frame_record("one") + frame_record("two");
  const std::string third = frame_record("three");
  for (const std::string& tail : {third.substr(0, 3),                        // header cut short
                                  third.substr(0, third.size() - 2),         // payload cut short
                                  third.substr(0, third.size() - 1) + "X",   // checksum fails, nothing after
                                  std::string(7, '\0')}) {                   // a file system's zero fill
    write_file(good + tail);
    canopy::result<journal_read> r = journal_read{};
    EXPECT_EQ(read_all(&r), (std::vector<std::string>{"one", "two"}));
    EXPECT_EQ(r->torn_bytes, tail.size());
    EXPECT_EQ(file(), good);  // truncated to the last good record
  }
  durability d;
  auto w = journal_writer::open(path, fsync_policy::always, 0ms, d.callback());
  (*w)->append("three");
  ASSERT_TRUE(testing::wait_until([&] { return d.seen() == 1; }));
  (*w)->stop();
  EXPECT_EQ(read_all(), (std::vector<std::string>{"one", "two", "three"}));
}

TEST_F(Journal, CorruptionInTheMiddleRefusesTheFile) {
  std::filesystem::create_directories(dir);
  std::string bytes = frame_record("one") + frame_record("two") + frame_record("three");
  bytes[frame_record("one").size() + 10] ^= 0x40;  // inside "two"'s payload
  write_file(bytes);
  auto r = read_journal(path, [](std::string_view) -> canopy::result<void> { return {}; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::io);
  EXPECT_NE(r.error().to_string().find("corrupt at byte"), std::string::npos) << r.error().to_string();
  EXPECT_EQ(file(), bytes);  // left as it was, for a post-mortem

  write_file(frame_record("one") + "garbage, not a record" + frame_record("two"));
  EXPECT_FALSE(read_journal(path, [](std::string_view) -> canopy::result<void> { return {}; }));
}

TEST_F(Journal, ARecordTheReaderRefusesStopsTheRead) {
  std::filesystem::create_directories(dir);
  write_file(frame_record("ok") + frame_record("bad"));
  auto r = read_journal(path, [](std::string_view rec) -> canopy::result<void> {
    if (rec == "bad") return error(errc::invalid_argument, "no");
    return {};
  });
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("cannot be applied"), std::string::npos);
}

TEST_F(Journal, CompactionReplacesTheFileAndLaterRecordsFollowIt) {
  durability d;
  auto w = journal_writer::open(path, fsync_policy::always, 0ms, d.callback());
  for (int i = 0; i < 10; ++i) (*w)->append("old " + std::to_string(i));
  journal_snapshot snapshot;
  snapshot.add("snap A");
  snapshot.add(std::string(2 << 20, 'B'));  // past a chunk: a chunk of its own
  snapshot.add("snap C");
  (*w)->compact(std::move(snapshot));
  (*w)->append("after");
  ASSERT_TRUE(testing::wait_until([&] { return d.seen() == 11; }));
  (*w)->stop();
  EXPECT_EQ(read_all(), (std::vector<std::string>{"snap A", std::string(2 << 20, 'B'), "snap C", "after"}));
  EXPECT_EQ((*w)->stats().compactions, 1u);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST_F(Journal, AWriteThatFailsIsReportedForItsBatch) {
  // /dev/full takes the open and refuses every write with ENOSPC: a full disk.
  durability d;
  auto w = journal_writer::open("/dev/full", fsync_policy::always, 0ms, d.callback());
  ASSERT_TRUE(w) << w.error().to_string();
  (*w)->append("lost");
  ASSERT_TRUE(testing::wait_until([&] {
    std::lock_guard lk(d.mu);
    return !d.failures.empty();
  }));
  (*w)->stop();
  std::lock_guard lk(d.mu);
  EXPECT_EQ(d.durable, 0u);
  EXPECT_NE(d.failures[0].find("No space left"), std::string::npos) << d.failures[0];
  EXPECT_EQ((*w)->stats().write_failures, 1u);
}

// The fuzzer's corpus (seeds and every finding) through the same property on each build.
TEST_F(Journal, TheFuzzCorpusHoldsTheProperty) {
  std::filesystem::create_directories(dir);
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(CANOPY_JOURNAL_CORPUS_DIR)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ++files;
    EXPECT_EQ(fuzz::check_journal_bytes(bytes, path), "") << entry.path();
  }
  EXPECT_GE(files, 5u);
}

}  // namespace
}  // namespace canopy::task_app
