// app::config and the common settings: defaults, types and ranges, unknown keys, every
// problem reported at once, parse errors with their line.
#include "canopy/app/config.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "canopy/app/main.hpp"

namespace canopy::app {
namespace {

class toy final : public application {
 public:
  std::string_view id() const override { return "toy"; }
  std::string default_endpoint() const override { return "tcp://127.0.0.1:7999"; }
  std::string default_events_endpoint() const override { return "tcp://127.0.0.1:7998"; }
  void configure(config&) override {}
  std::vector<child_spec> children(context&) override { return {}; }
  std::string_view route(std::string_view) const override { return {}; }
};

config parsed(std::string_view text) {
  auto c = config::parse(text, "toy.toml");
  EXPECT_TRUE(c) << c.error().to_string();
  return c ? std::move(*c) : config::empty();
}

TEST(Config, AbsentKeysTakeTheirDefaults) {
  config c = config::empty();
  toy app;
  settings s = read_settings(c, app);
  EXPECT_EQ(s.endpoint, "tcp://127.0.0.1:7999");
  EXPECT_EQ(s.events_endpoint, "tcp://127.0.0.1:7998");
  EXPECT_EQ(s.registry, "tcp://127.0.0.1:7400");
  EXPECT_EQ(s.log_level, "info");
  EXPECT_EQ(s.max_message_bytes, 1u << 20);
  EXPECT_EQ(s.shutdown_timeout, std::chrono::milliseconds(5000));
  EXPECT_FALSE(s.curve.enabled());
  EXPECT_TRUE(c.finish());
}

TEST(Config, ValuesFromTheFileAreRead) {
  config c = parsed(R"(
endpoint = "tcp://127.0.0.1:9000"
registry_endpoint = "none"
log_level = "debug"
max_message_bytes = 4096
registry_ttl_ms = 3000
[toy]
size = 12
names = ["a", "b"]
)");
  toy app;
  settings s = read_settings(c, app);
  EXPECT_EQ(s.endpoint, "tcp://127.0.0.1:9000");
  EXPECT_EQ(s.registry, "none");
  EXPECT_EQ(s.log_level, "debug");
  EXPECT_EQ(s.max_message_bytes, 4096u);
  EXPECT_EQ(s.registry_ttl, std::chrono::milliseconds(3000));
  EXPECT_EQ(c.integer("toy.size", 1, 1, 100), 12);
  EXPECT_EQ(c.strings("toy.names", {}), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(c.finish()) << c.finish().error().to_string();
}

TEST(Config, EveryProblemIsReportedAtOnce) {
  config c = parsed(R"(
endpoint = 7
log_level = "loud"
max_message_bytes = 10
enpoint = "typo"
[toy]
size = "big"
extra = 1
)");
  toy app;
  settings s = read_settings(c, app);
  EXPECT_EQ(s.endpoint, "tcp://127.0.0.1:7999");  // the default, after the error
  EXPECT_EQ(c.integer("toy.size", 3, 1, 100), 3);
  auto done = c.finish();
  ASSERT_FALSE(done);
  const std::string text = done.error().to_string();
  for (const char* expected : {"toy.toml", "endpoint: expected a string, found an integer", "log_level: 'loud' is not one of",
                               "max_message_bytes: 10 is out of range", "enpoint: unknown key",
                               "toy.size: expected an integer, found a string", "toy.extra: unknown key"})
    EXPECT_NE(text.find(expected), std::string::npos) << expected << " in " << text;
}

TEST(Config, ParseErrorsNameTheLine) {
  auto c = config::parse("a = 1\nb = = 2\n", "broken.toml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().to_string().find("broken.toml:2"), std::string::npos) << c.error().to_string();
  auto missing = config::load("/nonexistent/canopy.toml");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().to_string().find("/nonexistent/canopy.toml"), std::string::npos);
}

TEST(Config, CurveKeysMustBeUsable) {
  config c = parsed(R"(
[curve]
secret_key_file = "/nonexistent/app.key"
registry_server_key = "short"
)");
  toy app;
  (void)read_settings(c, app);
  auto done = c.finish();
  ASSERT_FALSE(done);
  EXPECT_NE(done.error().to_string().find("/nonexistent/app.key"), std::string::npos) << done.error().to_string();
}

}  // namespace
}  // namespace canopy::app

// The config fuzzer's corpus (the shipped configs, broken ones, every finding) on each build:
// a file parses or is refused with a reason; the shipped ones parse.
TEST(ConfigFuzzCorpus, EveryFileParsesOrIsRefusedWithAReason) {
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(CANOPY_CONFIG_CORPUS_DIR)) {
    ++files;
    auto c = canopy::app::config::load(entry.path().string());
    if (!c) {
      EXPECT_FALSE(c.error().to_string().empty()) << entry.path();
      continue;
    }
    (void)c->string("endpoint", "");
    auto done = c->finish();  // unknown keys are fine here: each file is some app's
    (void)done;
  }
  EXPECT_GE(files, 7u);
}
