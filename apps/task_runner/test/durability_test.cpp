// canopy-task-runner as a program: --version, a bad config refused, SIGTERM stopping it
// cleanly — and the durability test: tasks submitted, the app killed with SIGKILL mid-way,
// restarted on the same data directory, and every acknowledged task reaches a finished
// state (none lost; a task cut off mid-run ran again, which shows in its attempts).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "canopy/msg/client.hpp"
#include "canopy/testing/subprocess.hpp"

namespace canopy::task_app {
namespace {

using canopy::testing::subprocess;
using namespace std::chrono_literals;

class TaskRunnerBinary : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("canopy_task_bin_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }

  std::unique_ptr<subprocess> launch(const std::string& endpoint = "tcp://127.0.0.1:0") {
    auto p = std::make_unique<subprocess>(std::vector<std::string>{
        CANOPY_TASK_BINARY, "--config", CANOPY_TASK_CONFIG, "--endpoint", endpoint, "--events", "tcp://127.0.0.1:0",
        "--registry", "none", "--data-dir", dir.string()});
    auto line = p->wait_for_line("serving on");
    EXPECT_TRUE(line) << p->output();
    if (line) endpoint_ = testing::serving_endpoint(*line);
    return p;
  }

  std::filesystem::path dir;
  std::string endpoint_;
};

TEST_F(TaskRunnerBinary, VersionHelpAndABadConfig) {
  subprocess v({CANOPY_TASK_BINARY, "--version"});
  EXPECT_EQ(v.wait_exit(), 0);
  const auto path = dir / "bad.toml";
  std::ofstream(path) << "[task_runner]\nfsync = \"sometimes\"\n[task_runner.exec]\nenabled = true\n";
  subprocess bad({CANOPY_TASK_BINARY, "--config", path.string()});
  EXPECT_EQ(bad.wait_exit(), 2);
  EXPECT_NE(bad.output().find("task_runner.fsync"), std::string::npos) << bad.output();
  EXPECT_NE(bad.output().find("nothing is allowed to run"), std::string::npos) << bad.output();
}

TEST_F(TaskRunnerBinary, ACorruptJournalStopsItFromStartingWithTheReason) {
  // One record whose checksum fails, with bytes after it: not a torn tail.
  const char bad[] = {'\xc7', 3, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c', 'X', 'Y', 'Z'};
  std::ofstream(dir / "task_runner.journal", std::ios::binary).write(bad, sizeof bad);
  subprocess p({CANOPY_TASK_BINARY, "--config", CANOPY_TASK_CONFIG, "--endpoint", "tcp://127.0.0.1:0", "--events",
                "tcp://127.0.0.1:0", "--registry", "none", "--data-dir", dir.string()});
  EXPECT_EQ(p.wait_exit(), 1);
  EXPECT_NE(p.output().find("corrupt"), std::string::npos) << p.output();
}

TEST_F(TaskRunnerBinary, EveryAcknowledgedTaskFinishesAfterAKillMidWay) {
  auto app = launch();
  const std::string endpoint = endpoint_;
  auto c = msg::client::connect(endpoint);
  ASSERT_TRUE(c);
  // Many submits in flight; the app is killed once half of them are acknowledged, with
  // tasks still queued, running and being written.
  constexpr int total = 400;
  std::map<std::uint64_t, int> request_of;  // request id -> task n
  for (int i = 0; i < total; ++i) {
    const std::uint64_t id = (*c)->send("submit", 3, [&](wire::packer& p) {
      p.pack("kind");
      p.pack("sleep");
      p.pack("args");
      p.pack_map(1);
      p.pack("ms");
      p.pack(20);
      p.pack("key");
      p.pack("job-" + std::to_string(i));
    });
    request_of[id] = i;
  }
  std::map<int, std::string> acknowledged;  // n -> task id
  while (acknowledged.size() < total / 2) {
    auto r = (*c)->receive(20s);
    ASSERT_TRUE(r) << "no reply";
    ASSERT_TRUE(r->ok) << r->message;
    const msgpack::object* task_id = wire::find(*r->result, "task_id");
    acknowledged[request_of.at(*r->id)] = task_id->as<std::string>();
  }
  app->signal(SIGKILL);
  ASSERT_TRUE(app->wait_exit());
  c->reset();

  app = launch(endpoint);  // the same address: this test's client reconnects
  auto again = msg::client::connect(endpoint_);
  ASSERT_TRUE(again);
  std::set<std::string> ids;
  int ran_again = 0;
  for (const auto& entry : acknowledged) {
    const int n = entry.first;  // named copies: clang 14 lambdas cannot capture structured bindings
    const std::string id = entry.second;
    auto done = (*again)->call("await", 2, [&](wire::packer& p) {
      p.pack("task_id");
      p.pack(id);
      p.pack("timeout_ms");
      p.pack(30000);
    }, 40s);
    ASSERT_TRUE(done) << id;
    ASSERT_TRUE(done->ok) << id << ": " << done->message;
    EXPECT_EQ(wire::find(*done->result, "state")->as<std::string>(), "succeeded") << id;
    const auto attempts = wire::find(*done->result, "attempts")->via.u64;
    EXPECT_GE(attempts, 1u) << id;
    if (attempts > 1) ++ran_again;
    ids.insert(id);
    // Its key still names it: no second task for the same job.
    auto same = (*again)->call("submit", 2, [&](wire::packer& p) {
      p.pack("kind");
      p.pack("sleep");
      p.pack("key");
      p.pack("job-" + std::to_string(n));
    }, 10s);
    ASSERT_TRUE(same && same->ok);
    EXPECT_EQ(wire::find(*same->result, "task_id")->as<std::string>(), id);
    EXPECT_TRUE(wire::find(*same->result, "existing")->via.boolean);
  }
  EXPECT_EQ(ids.size(), acknowledged.size());
  std::cerr << "# " << acknowledged.size() << " acknowledged before the kill, " << ran_again << " of them ran again\n";
  app->signal(SIGTERM);
  EXPECT_EQ(app->wait_exit(), 0) << app->output();
}

}  // namespace
}  // namespace canopy::task_app
