// testing::app_probe against a toy app whose ops misbehave on purpose: it must pass good
// answers, accept a reply that comes late, and name a crash (internal), a wrong id and a
// reply that is not a map.
#include "canopy/testing/app_probe.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>

#include "canopy/msg/server.hpp"
#include "canopy/otp/gen_server.hpp"

namespace {

using namespace canopy;

std::string frame(std::uint64_t id, std::string_view op) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> p(b);
  p.pack_map(2);
  p.pack("id");
  p.pack(id);
  p.pack("op");
  p.pack(op);
  return {b.data(), b.size()};
}

class misbehaving_server final : public gen_server {
 protected:
  result handle_cast(message& m) override {
    auto* req = m.get<msg::incoming>();
    if (req == nullptr) return noreply();
    const std::string_view op = req->op();
    if (op == "explode") throw std::runtime_error("on purpose");
    if (op == "hold") {  // answered when "release" comes
      held_.emplace(std::move(*req));
      return noreply();
    }
    if (op == "release" && held_) {
      held_->reply_ok([](wire::packer& p) { p.pack("released"); });
      held_.reset();
    }
    if (op == "wrong_id") {
      msgpack::sbuffer b;
      wire::encode_ok(b, req->id() + 1, [](wire::packer& p) { p.pack_nil(); });
      req->send(std::move(b));
      return noreply();
    }
    if (op == "not_a_map") {
      msgpack::sbuffer b;
      b.write("\x01", 1);
      req->send(std::move(b));
      return noreply();
    }
    req->reply_ok([](wire::packer& p) { p.pack_map(0); });
    return noreply();
  }

 private:
  std::optional<msg::incoming> held_;
};

class toy final : public app::application {
 public:
  std::string_view id() const override { return "toy"; }
  std::string default_endpoint() const override { return "tcp://127.0.0.1:0"; }
  std::string default_events_endpoint() const override { return "tcp://127.0.0.1:0"; }
  void configure(app::config&) override {}
  std::vector<child_spec> children(app::context&) override {
    return {app::named_worker<misbehaving_server>("misbehaving", "toy.server")};
  }
  std::string_view route(std::string_view op) const override { return op == "ping" ? "" : "toy.server"; }
};

TEST(AppProbe, PassesGoodAnswersAndNamesBadOnes) {
  toy app;
  auto probe = canopy::testing::app_probe::start(app);
  EXPECT_EQ(probe->check(frame(1, "fine")), "");
  EXPECT_EQ(probe->check("\xc1"), "");  // the server's bad_request, id nil
  const std::string crashed = probe->check(frame(2, "explode"));
  EXPECT_NE(crashed.find("internal"), std::string::npos) << crashed;
  EXPECT_NE(probe->check(frame(3, "wrong_id")).find("id 4 while 3"), std::string::npos);
  EXPECT_NE(probe->check(frame(5, "not_a_map")).find("not a map"), std::string::npos);
  EXPECT_EQ(probe->check(frame(6, "fine")), "");
}

TEST(AppProbe, AcceptsALateReplyWhileTheAppStillAnswersPing) {
  toy app;
  auto probe = canopy::testing::app_probe::start(app);
  EXPECT_EQ(probe->check(frame(10, "hold")), "");     // no reply within 2 s; ping answered
  EXPECT_EQ(probe->check(frame(11, "release")), "");  // 10's reply comes first, then 11's
  EXPECT_EQ(probe->check(frame(12, "fine")), "");
}

}  // namespace
