// The whole umbrella as a user runs it: canopy-launch starts the four real binaries on free
// loopback ports, and canopyctl (in-process) talks to them. Every app registers; cache put /
// get; a session written through to the cache survives a kill -9 of the session manager
// (the launcher restarts it); acknowledged tasks survive a kill -9 of the task runner; a
// kill -9 of the registry restarts the apps after it (rest_for_one) and they register
// again; SIGTERM to the launcher stops every app in reverse order and leaves none behind.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "canopy/ctl/ctl.hpp"
#include "canopy/msg/client.hpp"
#include "canopy/testing/ports.hpp"
#include "canopy/testing/subprocess.hpp"
#include "canopy/testing/wait.hpp"

namespace canopy {
namespace {

using namespace std::chrono_literals;
using testing::subprocess;
using testing::wait_until;

bool alive(int os_pid) { return ::kill(os_pid, 0) == 0; }

struct ran {
  int code;
  std::string out, err;
};

class Umbrella : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("canopy_umbrella_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::ofstream cfg(dir / "canopy.toml");
    cfg << "bin_dir = \"" << CANOPY_BUILD_DIR << "\"\n"
        << "config_dir = \"" << (dir / "no-configs").string() << "\"\n"  // each app on its defaults
        << "data_dir = \"" << (dir / "data").string() << "\"\n"
        << "log_dir = \"" << (dir / "logs").string() << "\"\n"
        << "pid_file = \"" << (dir / "launch.pid").string() << "\"\n"
        << "max_restarts = " << max_restarts() << "\n";
    for (const char* app : {"registry", "cache", "session_manager", "task_runner"}) {
      endpoints[app] = "tcp://127.0.0.1:" + std::to_string(canopy::testing::free_tcp_port());
      cfg << "[" << app << "]\nendpoint = \"" << endpoints[app] << "\"\nevents = \"tcp://127.0.0.1:" << canopy::testing::free_tcp_port()
          << "\"\n";
    }
    cfg.close();
    launcher = std::make_unique<subprocess>(
        std::vector<std::string>{CANOPY_LAUNCH_BINARY, "--config", (dir / "canopy.toml").string()});
    ASSERT_TRUE(launcher->wait_for_line("apps running", 60s)) << launcher->output() << logs();
    ASSERT_TRUE(wait_until([&] { return registered().size() == 3; }, 30s)) << logs();
  }
  void TearDown() override {
    if (launcher) {
      launcher->signal(SIGTERM);
      (void)launcher->wait_exit(60s);
    }
    std::filesystem::remove_all(dir);
  }

  std::string logs() {
    std::string all;
    for (const char* app : {"registry", "cache", "session_manager", "task_runner"}) {
      std::ifstream in(dir / "logs" / (std::string(app) + ".log"));
      std::stringstream s;
      s << in.rdbuf();
      all += std::string("\n--- ") + app + "\n" + s.str().substr(s.str().size() > 3000 ? s.str().size() - 3000 : 0);
    }
    return all;
  }

  ran ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {"--registry", endpoints["registry"], "--timeout", "10s"});
    std::ostringstream out, err;
    const int code = ctl::run(args, out, err);
    return {code, out.str(), err.str()};
  }

  // Registered app -> its OS pid (meta.os_pid).
  std::map<std::string, int> registered() {
    std::map<std::string, int> out;
    auto c = msg::client::connect(endpoints["registry"], {.send_timeout = 500ms});
    if (!c) return out;
    auto r = (*c)->call("list", 1s);
    if (!r || !r->ok) return out;
    const msgpack::object* names = wire::find(*r->result, "names");
    for (std::uint32_t i = 0; i < names->via.array.size; ++i) {
      const msgpack::object& n = names->via.array.ptr[i];
      out[wire::find(n, "name")->as<std::string>()] =
          static_cast<int>(wire::find(*wire::find(n, "meta"), "os_pid")->via.i64);
    }
    return out;
  }

  int os_pid_of(const std::string& app) {
    auto c = msg::client::connect(endpoints[app]);
    auto r = (*c)->call("info", 5s);
    return r && r->ok ? static_cast<int>(wire::find(*r->result, "os_pid")->via.i64) : -1;
  }

  virtual int max_restarts() const { return 10; }

  std::filesystem::path dir;
  std::map<std::string, std::string> endpoints;
  std::unique_ptr<subprocess> launcher;
};

class UmbrellaWithLittlePatience : public Umbrella {
 protected:
  int max_restarts() const override { return 1; }
};

TEST_F(UmbrellaWithLittlePatience, AnAppThatKeepsCrashingStopsEverythingWithAClearMessage) {
  std::vector<int> first;
  for (const char* app : {"registry", "cache", "session_manager", "task_runner"}) first.push_back(os_pid_of(app));
  const int cache = os_pid_of("cache");
  ::kill(cache, SIGKILL);  // one restart: allowed
  ASSERT_TRUE(wait_until([&] {
    const int now = os_pid_of("cache");
    return now > 0 && now != cache;
  }, 30s)) << launcher->output();
  ::kill(os_pid_of("cache"), SIGKILL);  // a second within the period: past the intensity
  EXPECT_EQ(launcher->wait_exit(60s), 1) << launcher->output();
  EXPECT_NE(launcher->output().find("cache kept failing"), std::string::npos) << launcher->output();
  for (int p : first) EXPECT_FALSE(alive(p)) << p;
  launcher.reset();
}

TEST(UmbrellaConfig, AMissingProgramOrABadKeyStopsTheLaunchWithTheReason) {
  const auto dir = std::filesystem::temp_directory_path() / ("canopy_umbrella_cfg_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "missing.toml") << "bin_dir = \"/nonexistent\"\napps = [\"registry\"]\n";
  subprocess missing({CANOPY_LAUNCH_BINARY, "--config", (dir / "missing.toml").string()});
  EXPECT_EQ(missing.wait_exit(), 1);
  EXPECT_NE(missing.output().find("no program at /nonexistent"), std::string::npos) << missing.output();
  std::ofstream(dir / "bad.toml") << "apps = [\"registry\", \"mailer\"]\nmax_restart = 3\n";
  subprocess bad({CANOPY_LAUNCH_BINARY, "--config", (dir / "bad.toml").string()});
  EXPECT_EQ(bad.wait_exit(), 2);
  EXPECT_NE(bad.output().find("no app 'mailer'"), std::string::npos) << bad.output();
  EXPECT_NE(bad.output().find("max_restart"), std::string::npos) << bad.output();
  std::filesystem::remove_all(dir);
}

TEST_F(Umbrella, EveryAppRegistersAndTheCacheServesThroughCanopyctl) {
  const auto apps = registered();
  for (const char* app : {"cache", "session_manager", "task_runner"}) EXPECT_TRUE(apps.count(app)) << app;
  EXPECT_EQ(ctl({"cache", "put", "greeting", "hello", "--ttl", "1h"}).code, 0);
  EXPECT_EQ(ctl({"--json", "cache", "get", "greeting"}).out.rfind("{\"found\":true,\"value\":\"hello\"", 0), 0u);
  const ran tree = ctl({"tree"});
  EXPECT_EQ(tree.code, 0) << tree.err;
  EXPECT_NE(tree.out.find("task_runner.workers"), std::string::npos) << tree.out;
}

TEST_F(Umbrella, ASessionSurvivesAKillOfTheSessionManager) {
  ASSERT_EQ(ctl({"session_manager", "open", "alice", "--data", "{\"lang\": \"en\"}"}).code, 0);
  ASSERT_EQ(ctl({"session_manager", "send", "alice", "before the kill"}).code, 0);
  const int before = os_pid_of("session_manager");
  ASSERT_GT(before, 0);
  ::kill(before, SIGKILL);
  // The launcher starts it again; it restores alice from the cache.
  ASSERT_TRUE(wait_until([&] {
    const int now = os_pid_of("session_manager");
    return now > 0 && now != before;
  }, 30s)) << launcher->output();
  const ran got = ctl({"session_manager", "get", "alice"});
  ASSERT_EQ(got.code, 0) << got.err;
  EXPECT_NE(got.out.find("lang: en"), std::string::npos) << got.out;
  EXPECT_NE(ctl({"session_manager", "messages", "alice"}).out.find("message: before the kill"), std::string::npos);
}

TEST_F(Umbrella, AcknowledgedTasksSurviveAKillOfTheTaskRunner) {
  auto c = msg::client::connect(endpoints["task_runner"]);
  ASSERT_TRUE(c);
  constexpr int total = 200;
  for (int i = 0; i < total; ++i)
    (*c)->send("submit", 3, [&](wire::packer& p) {
      p.pack("kind");
      p.pack("sleep");
      p.pack("args");
      p.pack_map(1);
      p.pack("ms");
      p.pack(10);
      p.pack("key");
      p.pack("job-" + std::to_string(i));
    });
  std::vector<std::string> acked;
  while (acked.size() < total / 2) {
    auto r = (*c)->receive(20s);
    ASSERT_TRUE(r && r->ok);
    acked.push_back(wire::find(*r->result, "task_id")->as<std::string>());
  }
  const int before = os_pid_of("task_runner");
  ::kill(before, SIGKILL);
  c->reset();
  ASSERT_TRUE(wait_until([&] {
    const int now = os_pid_of("task_runner");
    return now > 0 && now != before;
  }, 30s)) << launcher->output();
  for (const std::string& id : acked) {
    const ran done = ctl({"--json", "task_runner", "await", id, "--timeout", "30s"});
    ASSERT_EQ(done.code, 0) << id << ": " << done.err;
    EXPECT_NE(done.out.find("\"state\":\"succeeded\""), std::string::npos) << done.out;
  }
}

TEST_F(Umbrella, AKilledRegistryRestartsTheAppsAfterItAndTheyRegisterAgain) {
  const auto before = registered();
  ::kill(os_pid_of("registry"), SIGKILL);
  // rest_for_one: every app after the registry is restarted, and registers with the new one.
  ASSERT_TRUE(wait_until([&] {
    const auto now = registered();
    if (now.size() != 3) return false;
    for (const auto& [app, pid] : now)
      if (before.at(app) == pid) return false;
    return true;
  }, 60s)) << launcher->output();
  for (const auto& [app, pid] : before) EXPECT_FALSE(alive(pid)) << app;
}

TEST_F(Umbrella, SigtermStopsEveryAppInReverseOrderAndLeavesNoneBehind) {
  std::vector<int> pids;
  for (const char* app : {"registry", "cache", "session_manager", "task_runner"}) pids.push_back(os_pid_of(app));
  launcher->signal(SIGTERM);
  EXPECT_EQ(launcher->wait_exit(60s), 0) << launcher->output();
  for (int p : pids) EXPECT_FALSE(alive(p)) << p;
  const std::string& out = launcher->output();
  std::vector<std::size_t> at;
  for (const char* app : {"task_runner", "session_manager", "cache", "registry"}) {
    const auto line = out.find("\n" + std::string(app), out.find("stopping on SIGTERM"));
    ASSERT_NE(line, std::string::npos) << app << "\n" << out;
    at.push_back(line);
  }
  EXPECT_TRUE(std::is_sorted(at.begin(), at.end())) << out;  // reverse of the start order
  launcher.reset();
}

}  // namespace
}  // namespace canopy
