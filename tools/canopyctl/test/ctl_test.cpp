// canopyctl against the four apps running in this process, registered with a real
// registry on loopback: each app's ops as a user types them, --json, exit codes that
// follow the error codes, usage errors, the combined tree, watch, call, an app that is
// not running.
#include "canopy/ctl/ctl.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <sstream>
#include <thread>

#include "canopy/app/instance.hpp"
#include "canopy/cache_app/app.hpp"
#include "canopy/msg/server.hpp"
#include "canopy/registry_app/app.hpp"
#include "canopy/session_app/app.hpp"
#include "canopy/task_app/app.hpp"
#include "canopy/testing/log_capture.hpp"
#include "canopy/testing/wait.hpp"

namespace canopy::ctl {
namespace {

using namespace std::chrono_literals;

struct ran {
  int code;
  std::string out, err;
};

class Ctl : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    umbrella = new apps_running();
  }
  static void TearDownTestSuite() {
    delete umbrella;
    umbrella = nullptr;
  }

  struct apps_running {
    apps_running() {
      data = std::filesystem::temp_directory_path() / ("canopy_ctl_" + std::to_string(::getpid()));
      std::filesystem::remove_all(data);
      canopy::app::settings s;
      s.endpoint = "tcp://127.0.0.1:0";
      s.events_endpoint = "tcp://127.0.0.1:0";
      s.registry = "none";
      s.registry_ttl = 2000ms;
      s.data_dir = data.string();
      registry = must(canopy::app::instance::start(registry_app, s, logs.logger()));
      s.registry = registry->endpoint();
      cache = must(canopy::app::instance::start(cache_app, s, logs.logger()));
      sessions = must(canopy::app::instance::start(session_app, s, logs.logger()));
      tasks = must(canopy::app::instance::start(task_app, s, logs.logger()));
    }
    static std::unique_ptr<canopy::app::instance> must(canopy::result<std::unique_ptr<canopy::app::instance>> r) {
      if (!r) throw std::runtime_error("an app did not start: " + r.error().to_string());
      return std::move(*r);
    }
    ~apps_running() {
      tasks->stop();
      sessions->stop();
      cache->stop();
      registry->stop();
      std::filesystem::remove_all(data);
    }
    std::filesystem::path data;
    testing::log_capture logs;
    registry_app::app registry_app;
    cache_app::app cache_app;
    session_app::app session_app;
    task_app::app task_app;
    std::unique_ptr<canopy::app::instance> registry, cache, sessions, tasks;
  };
  static inline apps_running* umbrella = nullptr;

  void SetUp() override {
    // Every app registered (they do so as they start, in the background).
    ASSERT_TRUE(testing::wait_until([&] {
      const ran r = ctl({"registry", "list"});
      return r.out.find("cache") != std::string::npos && r.out.find("session_manager") != std::string::npos &&
             r.out.find("task_runner") != std::string::npos;
    }));
  }

  static ran ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {"--registry", umbrella->registry->endpoint()});
    std::ostringstream out, err;
    const int code = run(args, out, err);
    return {code, out.str(), err.str()};
  }
};

TEST_F(Ctl, CacheOpsAsAUserTypesThem) {
  EXPECT_EQ(ctl({"cache", "put", "greeting", "hello", "--ttl", "1h"}).code, 0);
  ran got = ctl({"cache", "get", "greeting"});
  EXPECT_EQ(got.code, 0);
  EXPECT_NE(got.out.find("value: hello"), std::string::npos) << got.out;
  EXPECT_NE(got.out.find("ttl_ms:"), std::string::npos) << got.out;
  EXPECT_EQ(ctl({"cache", "put", "n", "40"}).code, 0);  // a number stays a number
  EXPECT_EQ(ctl({"--json", "cache", "incr", "n", "2"}).out, "{\"value\":42}\n");
  EXPECT_EQ(ctl({"cache", "mput", "a=1", "b={\"x\": true}"}).code, 0);
  EXPECT_EQ(ctl({"--json", "cache", "mget", "a", "b", "zz"}).out, "{\"items\":{\"a\":1,\"b\":{\"x\":true}}}\n");
  EXPECT_EQ(ctl({"--json", "cache", "get", "nothing"}).out, "{\"found\":false}\n");
  EXPECT_EQ(ctl({"--json", "cache", "keys", "--limit", "1", "--after", "a"}).out, "{\"keys\":[\"b\"]}\n");
}

TEST_F(Ctl, ErrorsBecomeExitCodesAndUsageErrorsAreTwo) {
  ran bad = ctl({"cache", "incr", "greeting-not-int"});
  EXPECT_EQ(bad.code, 0);  // a missing key starts at 0
  ASSERT_EQ(ctl({"cache", "put", "word", "hello"}).code, 0);
  ran not_int = ctl({"cache", "incr", "word"});
  EXPECT_EQ(not_int.code, exit_code_of(wire::error_code::invalid_args));
  EXPECT_NE(not_int.err.find("invalid_args"), std::string::npos) << not_int.err;
  EXPECT_EQ(ctl({"task_runner", "status", "t-99999"}).code, exit_code_of(wire::error_code::not_found));
  ran json_error = ctl({"--json", "task_runner", "status", "t-99999"});
  EXPECT_NE(json_error.out.find("\"code\":\"not_found\""), std::string::npos) << json_error.out;
  EXPECT_EQ(ctl({"cache", "put", "k"}).code, exit_usage);                       // value missing
  EXPECT_EQ(ctl({"cache", "put", "k", "v", "--ttl", "soon"}).code, exit_usage);  // not a duration
  EXPECT_EQ(ctl({"cache", "teleport"}).code, exit_usage);
  EXPECT_EQ(ctl({"session_manager", "open", "x", "--data", "{not json"}).code, exit_usage);
  EXPECT_EQ(ctl({"--help"}).code, 0);
}

TEST_F(Ctl, SessionsAndTasks) {
  EXPECT_EQ(ctl({"session_manager", "open", "alice", "--idle", "30m", "--data", "{\"lang\": \"en\"}"}).code, 0);
  EXPECT_EQ(ctl({"--json", "session_manager", "send", "alice", "hi there"}).out, "{\"seq\":1}\n");
  ran msgs = ctl({"session_manager", "messages", "alice"});
  EXPECT_NE(msgs.out.find("message: hi there"), std::string::npos) << msgs.out;
  ran got = ctl({"session_manager", "get", "alice"});
  EXPECT_NE(got.out.find("lang: en"), std::string::npos) << got.out;
  EXPECT_NE(got.out.find("idle_timeout_ms: 1800000"), std::string::npos) << got.out;

  ran done = ctl({"task_runner", "submit", "echo", "n=5", "word=hi", "--await"});
  EXPECT_EQ(done.code, 0) << done.err;
  EXPECT_NE(done.out.find("state: succeeded"), std::string::npos) << done.out;
  EXPECT_NE(done.out.find("n: 5"), std::string::npos) << done.out;
  ran failed = ctl({"task_runner", "submit", "fail", "message=nope", "--max-attempts", "2", "--await"});
  EXPECT_EQ(failed.code, 0);  // the await answered: the task's own failure is in its status
  EXPECT_NE(failed.out.find("state: failed"), std::string::npos) << failed.out;
  EXPECT_NE(failed.out.find("attempts: 2"), std::string::npos) << failed.out;
  ran listed = ctl({"--json", "task_runner", "list", "--state", "failed"});
  EXPECT_NE(listed.out.find("\"state\":\"failed\""), std::string::npos) << listed.out;
}

TEST_F(Ctl, TheTreeOfEveryAppAsOne) {
  ran t = ctl({"tree"});
  EXPECT_EQ(t.code, 0) << t.err;
  for (const char* node : {"registry.sup", "cache.sup", "cache.server", "session_manager.sup", "session_manager.sessions",
                           "task_runner.sup", "task_runner.workers", "app.registration"})
    EXPECT_NE(t.out.find(node), std::string::npos) << node << "\n" << t.out;
  EXPECT_EQ(t.out.rfind("canopy\n", 0), 0u);
  ran j = ctl({"--json", "tree"});
  EXPECT_NE(j.out.find("\"task_runner\":{"), std::string::npos) << j.out;
}

TEST_F(Ctl, WatchStreamsEventsByPrefix) {
  // Another thread clears the cache until the watcher, subscribing meanwhile, saw one.
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  std::thread clearer([&] {
    std::unique_lock lk(mu);
    do {
      lk.unlock();
      (void)ctl({"cache", "clear"});
      lk.lock();
    } while (!cv.wait_for(lk, 20ms, [&] { return stop; }));  // a clear every 20 ms until told
  });
  std::ostringstream out, err;
  const int code =
      run({"--registry", umbrella->registry->endpoint(), "watch", "cache.cleared", "--count", "1", "--for", "20s"}, out, err);
  {
    std::lock_guard lk(mu);
    stop = true;
  }
  cv.notify_all();
  clearer.join();
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out.str().rfind("cache.cleared {", 0), 0u) << out.str() << err.str();
}

TEST_F(Ctl, CallReachesAnyOpByName) {
  ran r = ctl({"--json", "call", "cache", "stats"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("\"max_bytes\":"), std::string::npos);
  EXPECT_EQ(ctl({"call", "cache", "nonsense"}).code, exit_code_of(wire::error_code::unknown_op));
  ran ping = ctl({"--json", "task_runner", "ping"});
  EXPECT_NE(ping.out.find("\"app\":\"task_runner\""), std::string::npos) << ping.out;
}

TEST_F(Ctl, AnAppThatIsNotThereIsExitThree) {
  std::string nobody;
  {
    auto s = msg::server::start({}, [](msg::incoming) {});
    nobody = (*s)->endpoint();
  }
  std::ostringstream out, err;
  EXPECT_EQ(run({"--endpoint", nobody, "--timeout", "300ms", "cache", "stats"}, out, err), exit_unreachable);
  EXPECT_FALSE(err.str().empty());
}

}  // namespace
}  // namespace canopy::ctl
