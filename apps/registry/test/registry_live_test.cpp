// The registry app on loopback, op by op through its client library: register / lookup /
// renew / expiry (short ttl, deadline waits) / unregister / already_exists / groups /
// events / bad args / a crashing handler answered internal while the app keeps serving —
// and no registration lost to that crash.
#include <gtest/gtest.h>

#include <mutex>

#include "canopy/app/instance.hpp"
#include "canopy/app/lookup.hpp"
#include "canopy/msg/subscriber.hpp"
#include "canopy/registry_app/app.hpp"
#include "canopy/registry_client/client.hpp"
#include "canopy/testing/wait.hpp"

namespace canopy::registry_app {
namespace {

using namespace std::chrono_literals;
using registry_client::hold_options;

class Registry : public ::testing::Test {
 protected:
  void SetUp() override {
    canopy::app::settings s;
    s.endpoint = "tcp://127.0.0.1:0";
    s.events_endpoint = "tcp://127.0.0.1:0";
    s.fault_injection = true;
    auto i = canopy::app::instance::start(the_app, s);
    ASSERT_TRUE(i) << i.error().to_string();
    running = std::move(*i);
    auto c = registry_client::client::connect(running->endpoint());
    ASSERT_TRUE(c);
    reg = std::move(*c);
  }

  app the_app;
  std::unique_ptr<canopy::app::instance> running;
  std::unique_ptr<registry_client::client> reg;
};

TEST_F(Registry, RegisterThenLookup) {
  auto meta = wire::value::from_object(msgpack::unpack("\x81\xa1v\x01", 4).get());  // {v: 1}
  auto g = reg->register_name("cache", "tcp://127.0.0.1:7410", {.ttl = 5000ms, .meta = meta});
  ASSERT_TRUE(g) << g.error().to_string();
  EXPECT_EQ(g->ttl, 5000ms);
  EXPECT_FALSE(g->lease.empty());
  auto found = reg->lookup("cache");
  ASSERT_TRUE(found) << found.error().to_string();
  EXPECT_EQ(found->endpoint, "tcp://127.0.0.1:7410");
  EXPECT_EQ(found->meta, meta);
  EXPECT_GT(found->ttl_left, 0ms);
  EXPECT_LE(found->ttl_left, 5000ms);
  auto missing = reg->lookup("nobody");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.code(), wire::error_code::not_found);
}

TEST_F(Registry, ATakenNameIsAlreadyExists) {
  ASSERT_TRUE(reg->register_name("svc", "tcp://a:1"));
  auto again = reg->register_name("svc", "tcp://b:2");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.code(), wire::error_code::already_exists);
}

TEST_F(Registry, RenewKeepsANameAndExpiryRemovesIt) {
  auto g = reg->register_name("short", "tcp://a:1", {.ttl = 300ms});
  ASSERT_TRUE(g);
  auto renewed = reg->renew(g->lease);
  ASSERT_TRUE(renewed) << renewed.error().to_string();
  EXPECT_EQ(*renewed, 300ms);
  // Its timer removes it after the ttl (no renew now).
  ASSERT_TRUE(testing::wait_until([&] {
    auto f = reg->lookup("short");
    return !f && f.code() == wire::error_code::not_found;
  }));
  auto late = reg->renew(g->lease);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.code(), wire::error_code::not_found);
}

TEST_F(Registry, UnregisterNeedsTheLease) {
  auto g = reg->register_name("x", "tcp://a:1");
  auto other = reg->register_name("y", "tcp://a:2");
  ASSERT_TRUE(g && other);
  auto wrong = reg->unregister("x", other->lease);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.code(), wire::error_code::unauthorized);
  auto gone = reg->unregister("x", g->lease);
  ASSERT_TRUE(gone);
  EXPECT_TRUE(*gone);
  auto again = reg->unregister("x", g->lease);
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  EXPECT_EQ(reg->lookup("x").code(), wire::error_code::not_found);
}

TEST_F(Registry, ListByPrefixSorted) {
  for (const char* n : {"app.b", "app.a", "zzz"}) ASSERT_TRUE(reg->register_name(n, "tcp://h:1"));
  auto all = reg->list("app.");
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "app.a");
  EXPECT_EQ((*all)[1].name, "app.b");
  EXPECT_EQ(reg->list()->size(), 3u);
}

TEST_F(Registry, GroupsWithManyMembers) {
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(reg->join("workers", "w" + std::to_string(100 + i), "tcp://w:1"));
  auto m = reg->members("workers");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->size(), 50u);
  EXPECT_EQ((*m)[0].member, "w100");
  auto left = reg->leave("workers", "w100");
  ASSERT_TRUE(left);
  EXPECT_TRUE(*left);
  EXPECT_EQ(reg->members("workers")->size(), 49u);
  EXPECT_TRUE(reg->members("nobody")->empty());
}

TEST_F(Registry, EventsForRegisteredAndUnregistered) {
  auto sub = msg::subscriber::connect(running->events_endpoint(), {"registry."});
  ASSERT_TRUE(sub);
  // Subscriptions take a moment: register names until the first event arrives.
  int n = 0;
  std::optional<msg::event> first;
  ASSERT_TRUE(testing::wait_until([&] {
    (void)reg->register_name("probe" + std::to_string(n++), "tcp://p:1", {.ttl = 200ms});
    first = (*sub)->receive(20ms);
    return first.has_value();
  }));
  EXPECT_EQ(first->topic, "registry.registered");
  EXPECT_EQ(wire::find(*first->body, "endpoint")->as<std::string>(), "tcp://p:1");
  // Every probe expires: an unregistered event with reason expired.
  ASSERT_TRUE(testing::wait_until([&] {
    auto ev = (*sub)->receive(50ms);
    return ev && ev->topic == "registry.unregistered" && wire::find(*ev->body, "reason")->as<std::string>() == "expired";
  }));
  auto g = reg->register_name("bye", "tcp://p:2");
  ASSERT_TRUE(g);
  ASSERT_TRUE(reg->unregister("bye", g->lease));
  ASSERT_TRUE(testing::wait_until([&] {
    auto ev = (*sub)->receive(50ms);
    return ev && ev->topic == "registry.unregistered" && wire::find(*ev->body, "name")->as<std::string>() == "bye" &&
           wire::find(*ev->body, "reason")->as<std::string>() == "unregistered";
  }));
}

TEST_F(Registry, BadArgsAreInvalidArgs) {
  auto no_endpoint = reg->raw().call("register", 1, [](wire::packer& p) {
    p.pack("name");
    p.pack("x");
  });
  ASSERT_TRUE(no_endpoint);
  EXPECT_EQ(no_endpoint->code, wire::error_code::invalid_args);
  EXPECT_NE(no_endpoint->message.find("endpoint"), std::string::npos);
  auto bad_ttl = reg->register_name("x", "tcp://a:1", {.ttl = 0ms});
  EXPECT_EQ(bad_ttl.code(), wire::error_code::invalid_args);
  auto huge_ttl = reg->register_name("x", "tcp://a:1", {.ttl = 100000000ms});
  EXPECT_EQ(huge_ttl.code(), wire::error_code::invalid_args);
  auto bad_meta = reg->raw().call("register", 3, [](wire::packer& p) {
    p.pack("name");
    p.pack("x");
    p.pack("endpoint");
    p.pack("e");
    p.pack("meta");
    p.pack(5);
  });
  EXPECT_EQ(bad_meta->code, wire::error_code::invalid_args);
  auto long_name = reg->register_name(std::string(300, 'n'), "tcp://a:1");
  EXPECT_EQ(long_name.code(), wire::error_code::invalid_args);
  auto name_as_int = reg->raw().call("lookup", 1, [](wire::packer& p) {
    p.pack("name");
    p.pack(7);
  });
  EXPECT_EQ(name_as_int->code, wire::error_code::invalid_args);
  EXPECT_TRUE(reg->register_name("x", "tcp://a:1"));  // still serving
}

TEST_F(Registry, ACrashingHandlerAnswersInternalAndLosesNoRegistration) {
  auto g = reg->register_name("kept", "tcp://k:1", {.ttl = 60000ms});
  ASSERT_TRUE(g);
  auto crash = reg->raw().call("crash", 10s);
  ASSERT_TRUE(crash);
  EXPECT_EQ(crash->code, wire::error_code::internal);
  ASSERT_TRUE(testing::wait_until([&] { return static_cast<bool>(reg->lookup("kept")); }));
  EXPECT_EQ(reg->lookup("kept")->endpoint, "tcp://k:1");
  EXPECT_TRUE(reg->renew(g->lease));
}

}  // namespace
}  // namespace canopy::registry_app

namespace canopy::registry_app {
namespace {

// An app built on libs/app registers itself with this registry, is found by lookup, and
// unregisters when it stops.
class tiny final : public canopy::app::application {
 public:
  std::string_view id() const override { return "tiny"; }
  std::string default_endpoint() const override { return "tcp://127.0.0.1:0"; }
  std::string default_events_endpoint() const override { return "tcp://127.0.0.1:0"; }
  void configure(canopy::app::config&) override {}
  std::vector<child_spec> children(canopy::app::context&) override { return {}; }
  std::string_view route(std::string_view) const override { return {}; }
};

TEST_F(Registry, AnAppRegistersItselfAndIsFoundByLookup) {
  tiny t;
  canopy::app::settings s;
  s.endpoint = "tcp://127.0.0.1:0";
  s.events_endpoint = "tcp://127.0.0.1:0";
  s.registry = running->endpoint();
  s.registry_ttl = 2000ms;
  auto other = canopy::app::instance::start(t, s);
  ASSERT_TRUE(other) << other.error().to_string();
  ASSERT_TRUE(testing::wait_until([&] { return static_cast<bool>(reg->lookup("tiny")); }));
  auto found = reg->lookup("tiny");
  EXPECT_EQ(found->endpoint, (*other)->endpoint());
  msgpack::object_handle meta = msgpack::unpack(found->meta.bytes().data(), found->meta.bytes().size());
  EXPECT_EQ(wire::find(meta.get(), "events")->as<std::string>(), (*other)->events_endpoint());
  (*other)->stop();
  ASSERT_TRUE(testing::wait_until([&] {
    auto f = reg->lookup("tiny");
    return !f && f.code() == wire::error_code::not_found;
  }));
}

}  // namespace
}  // namespace canopy::registry_app

namespace canopy::registry_app {
namespace {

struct find_request {
  std::string name;
};

// What the finder found, read by the test thread.
class findings {
 public:
  void add(std::string s) {
    std::lock_guard lk(mu_);
    all_.push_back(std::move(s));
  }
  std::vector<std::string> all() const {
    std::lock_guard lk(mu_);
    return all_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> all_;
};

// Looks names up through the registry from inside a process; records what it found.
class finder final : public gen_server {
 public:
  finder(canopy::app::context* ctx, std::shared_ptr<findings> found) : ctx_(ctx), found_(std::move(found)) {}

 protected:
  result handle_cast(message& m) override {
    if (auto* f = m.get<find_request>()) find(f->name);
    return noreply();
  }

 private:
  async find(std::string name) {
    auto where = co_await canopy::app::lookup(*ctx_, std::move(name));
    found_->add(where ? where->endpoint + " " + where->events_endpoint : std::string(wire::to_string(where.code())));
  }
  canopy::app::context* ctx_;
  std::shared_ptr<findings> found_;
};

class seeker final : public canopy::app::application {
 public:
  std::shared_ptr<findings> found = std::make_shared<findings>();
  std::string_view id() const override { return "seeker"; }
  std::string default_endpoint() const override { return "tcp://127.0.0.1:0"; }
  std::string default_events_endpoint() const override { return "tcp://127.0.0.1:0"; }
  void configure(canopy::app::config&) override {}
  std::vector<child_spec> children(canopy::app::context& ctx) override {
    return {canopy::app::named_worker<finder>("finder", "seeker.finder", &ctx, found)};
  }
  std::string_view route(std::string_view) const override { return {}; }
};

TEST_F(Registry, AnAppFindsAnotherThroughTheRegistry) {
  msgpack::sbuffer packed;
  wire::packer p(packed);
  p.pack_map(1);
  p.pack("events");
  p.pack("tcp://e:1");
  auto meta = wire::value::from_object(msgpack::unpack(packed.data(), packed.size()).get());
  ASSERT_TRUE(reg->register_name("cache", "tcp://c:1", {.meta = meta}));
  seeker app;
  canopy::app::settings s;
  s.endpoint = "tcp://127.0.0.1:0";
  s.events_endpoint = "tcp://127.0.0.1:0";
  s.registry = running->endpoint();
  auto other = canopy::app::instance::start(app, s);
  ASSERT_TRUE(other) << other.error().to_string();
  (*other)->rt().cast((*other)->rt().whereis("seeker.finder"), find_request{"cache"});
  (*other)->rt().cast((*other)->rt().whereis("seeker.finder"), find_request{"nobody"});
  ASSERT_TRUE(testing::wait_until([&] { return app.found->all().size() == 2; }));
  // In order: the finder is parked in its first lookup while the second request waits.
  EXPECT_EQ(app.found->all(), (std::vector<std::string>{"tcp://c:1 tcp://e:1", "not_found"}));
  (*other)->stop();
}

}  // namespace
}  // namespace canopy::registry_app
