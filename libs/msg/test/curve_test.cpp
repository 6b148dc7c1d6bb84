// CURVE: keys and key files; a server with an allow-list serves an allowed client and its
// event subscriber, while an unknown key and a plain (NULL) client get nothing at all.
#include "canopy/msg/curve.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "canopy/core/runtime.hpp"
#include "canopy/msg/client.hpp"
#include "canopy/msg/server.hpp"
#include "canopy/msg/subscriber.hpp"
#include "canopy/testing/wait.hpp"

namespace canopy::msg {
namespace {

using namespace std::chrono_literals;

curve_keypair fresh_keys() {
  auto k = generate_curve_keypair();
  EXPECT_TRUE(k) << k.error().to_string();
  return k ? *k : curve_keypair{};
}

TEST(CurveKeys, AGeneratedPairIsWellFormedAndConsistent) {
  const curve_keypair k = fresh_keys();
  EXPECT_EQ(k.public_key.size(), 40u);
  EXPECT_TRUE(check_curve_key(k.public_key, "public"));
  EXPECT_TRUE(check_curve_key(k.secret_key, "secret"));
  auto derived = curve_public_key(k.secret_key);
  ASSERT_TRUE(derived);
  EXPECT_EQ(*derived, k.public_key);
  EXPECT_NE(fresh_keys().secret_key, k.secret_key);
}

TEST(CurveKeys, MalformedKeysAreClearErrors) {
  auto short_key = check_curve_key("abc", "the server key");
  ASSERT_FALSE(short_key);
  EXPECT_EQ(short_key.code(), errc::invalid_argument);
  EXPECT_NE(short_key.error().to_string().find("the server key"), std::string::npos);
  EXPECT_FALSE(check_curve_key(std::string(40, '"'), "bad z85"));  // '"' is not a Z85 character
  const curve_keypair a = fresh_keys(), b = fresh_keys();
  auto mismatched = check(curve_client_keys{a.public_key, a.public_key, b.secret_key});
  ASSERT_FALSE(mismatched);
  EXPECT_NE(mismatched.error().to_string().find("does not belong"), std::string::npos);
  EXPECT_FALSE(check(curve_client_keys{"", a.public_key, a.secret_key}));  // no server key
  EXPECT_FALSE(check(curve_server_keys{"", {a.public_key}}));               // an allow-list, no secret
  EXPECT_FALSE(check(curve_server_keys{a.secret_key, {"nope"}}));
  EXPECT_TRUE(check(curve_server_keys{}));
  EXPECT_TRUE(check(curve_client_keys{}));
}

class KeyFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() / ("canopy_keys_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
};

TEST_F(KeyFiles, WrittenAndReadBackWithAPrivateSecret) {
  const curve_keypair k = fresh_keys();
  ASSERT_TRUE(write_curve_key_files(k, dir.string(), "cache"));
  auto secret = read_curve_key_file((dir / "cache.key").string());
  auto pub = read_curve_key_file((dir / "cache.pub").string());
  ASSERT_TRUE(secret) << secret.error().to_string();
  ASSERT_TRUE(pub) << pub.error().to_string();
  EXPECT_EQ(*secret, k.secret_key);
  EXPECT_EQ(*pub, k.public_key);
  struct stat st {};
  ASSERT_EQ(::stat((dir / "cache.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Never overwritten.
  auto again = write_curve_key_files(fresh_keys(), dir.string(), "cache");
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().to_string().find("cache.key"), std::string::npos);
  EXPECT_EQ(*read_curve_key_file((dir / "cache.key").string()), k.secret_key);
}

TEST_F(KeyFiles, BadFilesAreClearErrors) {
  EXPECT_FALSE(read_curve_key_file((dir / "missing.key").string()));
  {
    std::ofstream(dir / "two.key") << fresh_keys().secret_key << "\n" << fresh_keys().secret_key << "\n";
    std::ofstream(dir / "empty.key") << "# nothing here\n\n";
    std::ofstream(dir / "junk.key") << "not a key\n";
  }
  for (const char* name : {"two.key", "empty.key", "junk.key"}) {
    auto r = read_curve_key_file((dir / name).string());
    ASSERT_FALSE(r) << name;
    EXPECT_NE(r.error().to_string().find(name), std::string::npos) << r.error().to_string();
  }
  EXPECT_FALSE(write_curve_key_files(fresh_keys(), dir.string(), "../escape"));
}

// Each test twice: the server on its own thread, and polled from a runtime's scheduler
// threads (the ZAP handshake then runs on whichever thread polls).
class Curve : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    server_keys = fresh_keys();
    allowed = fresh_keys();
    server_options o;
    if (GetParam()) o.runtime = &rt;
    o.events_endpoint = "tcp://127.0.0.1:0";
    o.curve = {server_keys.secret_key, {allowed.public_key}};
    auto s = server::start(std::move(o), [](incoming r) { r.reply_ok([](wire::packer& p) { p.pack("pong"); }); });
    ASSERT_TRUE(s) << s.error().to_string();
    srv = std::move(*s);
  }
  client_options with(const curve_keypair& mine) {
    return {.send_timeout = 300ms, .curve = {server_keys.public_key, mine.public_key, mine.secret_key}};
  }

  curve_keypair server_keys, allowed;
  runtime rt{{.threads = 2}};
  std::unique_ptr<server> srv;
};

INSTANTIATE_TEST_SUITE_P(OwnThreadAndScheduler, Curve, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "Scheduler" : "OwnThread"; });

TEST_P(Curve, AnAllowedClientIsServedAndHearsEvents) {
  client_options o = with(allowed);
  o.send_timeout = 10s;
  auto c = client::connect(srv->endpoint(), o);
  ASSERT_TRUE(c) << c.error().to_string();
  auto r = (*c)->call("ping", 10s);
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_TRUE(r->ok);
  EXPECT_EQ(r->result->as<std::string>(), "pong");

  auto sub = subscriber::connect(srv->events_endpoint(), {"x."}, {}, o.curve);
  ASSERT_TRUE(sub) << sub.error().to_string();
  ASSERT_TRUE(testing::wait_until([&] {
    msgpack::sbuffer ev;
    wire::encode_event(ev, 1, 0, [](wire::packer&) {});
    srv->publish("x.happened", std::move(ev));
    return (*sub)->receive(20ms).has_value();
  }));
  EXPECT_EQ(srv->stats().unauthorized, 0u);
}

TEST_P(Curve, AnUnknownKeyGetsNothing) {
  auto c = client::connect(srv->endpoint(), with(fresh_keys()));
  ASSERT_TRUE(c) << c.error().to_string();
  auto r = (*c)->call("ping", 300ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::unavailable) << r.error().to_string();
  ASSERT_TRUE(testing::wait_until([&] { return srv->stats().unauthorized > 0; }));
  EXPECT_EQ(srv->stats().received, 0u);
}

TEST_P(Curve, APlainClientGetsNothing) {
  auto c = client::connect(srv->endpoint(), {.send_timeout = 300ms});
  ASSERT_TRUE(c);
  auto r = (*c)->call("ping", 300ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::unavailable) << r.error().to_string();
  EXPECT_EQ(srv->stats().received, 0u);
}

TEST_P(Curve, APlainSubscriberHearsNothing) {
  auto sub = subscriber::connect(srv->events_endpoint(), {""});
  ASSERT_TRUE(sub);
  for (int i = 0; i < 10; ++i) {
    msgpack::sbuffer ev;
    wire::encode_event(ev, 1, 0, [](wire::packer&) {});
    srv->publish("x.happened", std::move(ev));
    EXPECT_FALSE((*sub)->receive(20ms).has_value());
  }
}

TEST(CurveServer, AMalformedSecretKeyStopsTheStart) {
  server_options o;
  o.curve.secret_key = "too short";
  auto s = server::start(std::move(o), [](incoming) {});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.code(), errc::invalid_argument);
  EXPECT_NE(s.error().to_string().find("secret key"), std::string::npos);
}

}  // namespace
}  // namespace canopy::msg
