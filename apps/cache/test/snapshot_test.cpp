// Snapshots: a round trip keeps values byte-exact, TTLs (on the wall clock) and the recency
// order; due entries are skipped; truncated, bit-flipped, foreign or garbage files are
// refused with a reason and leave the store empty. Then across a restart of the live app,
// and a corrupt file at start: the app starts empty, says so, and keeps the file aside.
#include "canopy/cache_app/snapshot.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "canopy/app/instance.hpp"
#include "canopy/cache_app/app.hpp"
#include "canopy/cache_client/client.hpp"

namespace canopy::cache_app {
namespace {

using namespace std::chrono_literals;

wire::value text(const std::string& s) { return wire::value::of_str(s); }

class Snapshot : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() / ("canopy_snap_" + std::to_string(::getpid()) + "_" +
                                                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    path = (dir / "cache.snapshot").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string contents() {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  void overwrite(const std::string& bytes) { std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes; }

  std::filesystem::path dir;
  std::string path;
  clocks then{time_point{}, 1'000'000};
};

TEST_F(Snapshot, ARoundTripKeepsValuesTtlsAndRecency) {
  store a(1 << 20);
  a.put("plain", text("v1"), std::nullopt, then.mono);
  a.put("ttl", wire::value::of_int(7), 10s, then.mono);
  a.put("due", text("x"), 1s, then.mono);
  a.put("bin", *wire::value::from_bytes(std::string("\xc4\x02\x00\xff", 4), {}), std::nullopt, then.mono);
  ASSERT_TRUE(a.get("plain", then.mono));  // the most recently used now
  auto written = write_snapshot(a, path, then);
  ASSERT_TRUE(written) << written.error().to_string();
  EXPECT_EQ(*written, 4u);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  // Loaded 2 s of wall time later, by another process with another monotonic clock.
  const clocks later{time_point{} + 500h, then.wall_ms + 2000};
  store b(1 << 20);
  auto got = read_snapshot(b, path, later, {});
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(got->entries, 3u);
  EXPECT_EQ(got->expired, 1u);
  std::vector<std::string> order;  // least recently used first, as it was written
  b.each_oldest_first([&](const std::string& k, const wire::value&, const auto&) { order.push_back(k); });
  EXPECT_EQ(order, (std::vector<std::string>{"ttl", "bin", "plain"}));
  EXPECT_EQ(b.get("plain", later.mono)->value, text("v1"));
  EXPECT_EQ(b.get("bin", later.mono)->value.bytes(), std::string("\xc4\x02\x00\xff", 4));
  EXPECT_EQ(b.ttl("ttl", later.mono)->value(), 8000ms);
  EXPECT_FALSE(b.get("due", later.mono));
}

TEST_F(Snapshot, BadFilesAreRefusedWithAReason) {
  store a(1 << 20);
  for (int i = 0; i < 100; ++i) a.put("k" + std::to_string(i), text("value" + std::to_string(i)), std::nullopt, then.mono);
  ASSERT_TRUE(write_snapshot(a, path, then));
  const std::string good = contents();
  struct bad {
    std::string bytes;
    const char* says;
  };
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x40;
  const std::vector<bad> cases = {
      {good.substr(0, good.size() / 2), "truncated"},
      {good.substr(0, 10), "truncated"},
      {flipped, "checksum"},
      {"GARBAGE!" + good.substr(8), "not a Canopy cache snapshot"},
      {std::string(64, '\0'), "not a Canopy cache snapshot"},
  };
  for (const bad& c : cases) {
    overwrite(c.bytes);
    store b(1 << 20);
    b.put("leftover", text("x"), std::nullopt, then.mono);
    auto got = read_snapshot(b, path, then, {});
    ASSERT_FALSE(got) << c.says;
    EXPECT_EQ(got.code(), errc::invalid_argument);
    EXPECT_NE(got.error().to_string().find(c.says), std::string::npos) << got.error().to_string();
    EXPECT_EQ(b.stats().items, 0u) << "never serve part of a bad file";
  }
  std::filesystem::remove(path);
  store c(1 << 20);
  EXPECT_EQ(read_snapshot(c, path, then, {}).code(), errc::not_found);
}

canopy::app::settings in_dir(const std::filesystem::path& dir) {
  canopy::app::settings s;
  s.endpoint = "tcp://127.0.0.1:0";
  s.events_endpoint = "tcp://127.0.0.1:0";
  s.registry = "none";
  s.data_dir = dir.string();
  return s;
}

TEST_F(Snapshot, TheLiveAppKeepsItsDataAcrossARestart) {
  options o;
  o.snapshot = true;
  o.snapshot_interval = 0ms;  // only on stop
  {
    app first;
    first.set_options(o);
    auto running = canopy::app::instance::start(first, in_dir(dir));
    ASSERT_TRUE(running) << running.error().to_string();
    auto c = cache_client::client::connect((*running)->endpoint());
    ASSERT_TRUE((*c)->put("kept", text("across a restart")));
    ASSERT_TRUE((*c)->put("ttl", wire::value::of_int(3), 60s));
    (*running)->stop();
  }
  ASSERT_TRUE(std::filesystem::exists(path));
  app second;
  second.set_options(o);
  auto running = canopy::app::instance::start(second, in_dir(dir));
  ASSERT_TRUE(running) << running.error().to_string();
  auto c = cache_client::client::connect((*running)->endpoint());
  auto kept = (*c)->get("kept");
  ASSERT_TRUE(kept && kept->has_value());
  EXPECT_EQ((*kept)->value, text("across a restart"));
  auto ttl = (*c)->get("ttl");
  ASSERT_TRUE(ttl && ttl->has_value());
  EXPECT_LE((*ttl)->ttl_left, 60s);
  EXPECT_GT((*ttl)->ttl_left, 0ms);
}

TEST_F(Snapshot, ACorruptFileAtStartMeansAnEmptyCacheAndTheFileKeptAside) {
  overwrite("CNPYCSH1 but then nonsense that is long enough to be read");
  options o;
  o.snapshot = true;
  app a;
  a.set_options(o);
  auto running = canopy::app::instance::start(a, in_dir(dir));
  ASSERT_TRUE(running) << running.error().to_string();
  EXPECT_TRUE(std::filesystem::exists(path + ".corrupt"));
  EXPECT_EQ((*running)->ctx().stats()["snapshot_corrupt"].load(), 1);
  auto c = cache_client::client::connect((*running)->endpoint());
  EXPECT_EQ((*c)->stats()->items, 0u);
}

}  // namespace
}  // namespace canopy::cache_app
