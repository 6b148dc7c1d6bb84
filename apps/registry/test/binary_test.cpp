// canopy-registry as a program: --version, a bad config refused with a clear line, serving
// on a port it picked, SIGTERM stopping it cleanly (exit 0), an endpoint in use (exit 1).
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "canopy/registry_client/client.hpp"
#include "canopy/testing/subprocess.hpp"

namespace canopy::registry_app {
namespace {

using canopy::testing::subprocess;
using namespace std::chrono_literals;

TEST(RegistryBinary, VersionAndHelpExitZero) {
  subprocess v({CANOPY_REGISTRY_BINARY, "--version"});
  EXPECT_EQ(v.wait_exit(), 0);
  subprocess h({CANOPY_REGISTRY_BINARY, "--help"});
  EXPECT_EQ(h.wait_exit(), 0);
}

TEST(RegistryBinary, ABadConfigIsRefusedWithOneClearLine) {
  const auto path = std::filesystem::temp_directory_path() / ("canopy_registry_" + std::to_string(::getpid()) + ".toml");
  std::ofstream(path) << "endpoint = \"tcp://127.0.0.1:0\"\n[registry]\ndefault_ttl = 5\n";
  subprocess p({CANOPY_REGISTRY_BINARY, "--config", path.string()});
  EXPECT_EQ(p.wait_exit(), 2);
  EXPECT_NE(p.output().find("registry.default_ttl: unknown key"), std::string::npos) << p.output();
  std::filesystem::remove(path);
  subprocess flag({CANOPY_REGISTRY_BINARY, "--log-level", "loud"});
  EXPECT_EQ(flag.wait_exit(), 2);
}

TEST(RegistryBinary, ServesThenStopsCleanlyOnSigterm) {
  subprocess p({CANOPY_REGISTRY_BINARY, "--endpoint", "tcp://127.0.0.1:0", "--events", "tcp://127.0.0.1:0"});
  auto line = p.wait_for_line("serving on");
  ASSERT_TRUE(line) << p.output();
  auto reg = registry_client::client::connect(testing::serving_endpoint(*line));
  ASSERT_TRUE(reg);
  ASSERT_TRUE((*reg)->register_name("a", "tcp://a:1"));
  EXPECT_EQ((*reg)->lookup("a")->endpoint, "tcp://a:1");
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait_exit(), 0) << p.output();
  EXPECT_NE(p.output().find("stopping on SIGTERM"), std::string::npos) << p.output();

  // Its port is free again, and a second one on a port in use exits 1.
  subprocess first({CANOPY_REGISTRY_BINARY, "--endpoint", "tcp://127.0.0.1:0", "--events", "tcp://127.0.0.1:0"});
  auto first_line = first.wait_for_line("serving on");
  ASSERT_TRUE(first_line) << first.output();
  subprocess second({CANOPY_REGISTRY_BINARY, "--endpoint", testing::serving_endpoint(*first_line), "--events", "tcp://127.0.0.1:0"});
  EXPECT_EQ(second.wait_exit(), 1);
  EXPECT_NE(second.output().find("cannot start"), std::string::npos) << second.output();
  first.signal(SIGINT);
  EXPECT_EQ(first.wait_exit(), 0) << first.output();
}

}  // namespace
}  // namespace canopy::registry_app
