// canopy-session-manager as a program: --version, a bad config refused with a clear line,
// serving on a port it picked (standalone), SIGTERM stopping it cleanly (exit 0).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "canopy/msg/client.hpp"
#include "canopy/testing/subprocess.hpp"

namespace canopy::session_app {
namespace {

using canopy::testing::subprocess;
using namespace std::chrono_literals;

TEST(SessionManagerBinary, VersionAndHelpExitZero) {
  subprocess v({CANOPY_SESSION_BINARY, "--version"});
  EXPECT_EQ(v.wait_exit(), 0);
  subprocess h({CANOPY_SESSION_BINARY, "--help"});
  EXPECT_EQ(h.wait_exit(), 0);
}

TEST(SessionManagerBinary, ABadConfigIsRefusedWithOneClearLine) {
  const auto path =
      std::filesystem::temp_directory_path() / ("canopy_session_" + std::to_string(::getpid()) + ".toml");
  std::ofstream(path) << "[session_manager]\nmax_messages = 100000\nmax_message_value_bytes = 65536\nidle = 5\n";
  subprocess p({CANOPY_SESSION_BINARY, "--config", path.string()});
  EXPECT_EQ(p.wait_exit(), 2);
  EXPECT_NE(p.output().find("session_manager.idle: unknown key"), std::string::npos) << p.output();
  EXPECT_NE(p.output().find("more than the cache takes"), std::string::npos) << p.output();
  std::filesystem::remove(path);
}

TEST(SessionManagerBinary, ServesThenStopsCleanlyOnSigterm) {
  // The shipped config, as it is (every key at its default), with the addresses overridden.
  subprocess p({CANOPY_SESSION_BINARY, "--config", CANOPY_SESSION_CONFIG, "--endpoint", "tcp://127.0.0.1:0",
                "--events", "tcp://127.0.0.1:0", "--registry", "none"});
  auto line = p.wait_for_line("serving on");
  ASSERT_TRUE(line) << p.output();
  auto c = msg::client::connect(testing::serving_endpoint(*line));
  ASSERT_TRUE(c);
  auto opened = (*c)->call("open", 1, [](wire::packer& w) {
    w.pack("user");
    w.pack("alice");
  }, 10s);
  ASSERT_TRUE(opened && opened->ok) << p.output();
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
}

}  // namespace
}  // namespace canopy::session_app
