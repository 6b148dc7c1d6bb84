// app::instance with a toy app on free loopback ports: the common ops, routing, a crashing
// handler answered internal and restarted, events, a bad endpoint, and self-registration
// against a stand-in registry (register, renew, register again when forgotten, unavailable
// while it is down, unregister on stop).
#include "canopy/app/instance.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <stdexcept>

#include "canopy/msg/client.hpp"
#include "canopy/msg/server.hpp"
#include "canopy/msg/subscriber.hpp"
#include "canopy/otp/gen_server.hpp"
#include "canopy/testing/wait.hpp"

namespace canopy::app {
namespace {

using namespace std::chrono_literals;

class echo_server final : public gen_server {
 public:
  explicit echo_server(context* ctx) : ctx_(ctx) {}

 protected:
  result handle_cast(message& m) override {
    auto* req = m.get<msg::incoming>();
    if (req == nullptr) return noreply();
    if (req->op() == "crash") throw std::runtime_error("fault injection");  // the request dies with us
    ctx_->stats()["echoes"] += 1;
    ctx_->publish("echoed", 0, [](wire::packer&) {});
    const msgpack::object& args = req->args();
    req->reply_ok([&](wire::packer& p) { p.pack(args); });
    return noreply();
  }

 private:
  context* ctx_;
};

class toy final : public application {
 public:
  std::string_view id() const override { return "toy"; }
  std::string default_endpoint() const override { return "tcp://127.0.0.1:0"; }
  std::string default_events_endpoint() const override { return "tcp://127.0.0.1:0"; }
  void configure(config&) override {}
  std::vector<child_spec> children(context& ctx) override {
    return {named_worker<echo_server>("echo", "toy.echo", &ctx)};
  }
  std::string_view route(std::string_view op) const override {
    return op == "echo" || op == "crash" ? "toy.echo" : "";
  }
};

settings loopback(std::string registry = "none") {
  settings s;
  s.endpoint = "tcp://127.0.0.1:0";
  s.events_endpoint = "tcp://127.0.0.1:0";
  s.registry = std::move(registry);
  s.shutdown_timeout = 5s;
  return s;
}

class Instance : public ::testing::Test {
 protected:
  void start(settings s) {
    auto i = instance::start(app, std::move(s));
    ASSERT_TRUE(i) << i.error().to_string();
    running = std::move(*i);
    auto c = msg::client::connect(running->endpoint());
    ASSERT_TRUE(c);
    cli = std::move(*c);
  }
  msg::reply call(std::string_view op) {
    auto r = cli->call(op, 10s);
    EXPECT_TRUE(r) << r.error().to_string();
    return r ? *r : msg::reply{};
  }
  const msgpack::object* field(const msg::reply& r, const char* key) {
    return r.ok && r.result ? wire::find(*r.result, key) : nullptr;
  }

  toy app;
  std::unique_ptr<instance> running;
  std::unique_ptr<msg::client> cli;
};

TEST_F(Instance, PingInfoAndTree) {
  start(loopback());
  msg::reply ping = call("ping");
  ASSERT_TRUE(ping.ok) << ping.message;
  EXPECT_EQ(field(ping, "app")->as<std::string>(), "toy");
  EXPECT_EQ(field(ping, "protocol")->as<int>(), 1);

  msg::reply info = call("info");
  ASSERT_TRUE(info.ok) << info.message;
  EXPECT_EQ(field(info, "endpoint")->as<std::string>(), running->endpoint());
  EXPECT_EQ(field(info, "events_endpoint")->as<std::string>(), running->events_endpoint());
  EXPECT_GT(field(info, "os_pid")->as<std::int64_t>(), 0);
  EXPECT_EQ(wire::find(*field(info, "registry"), "state")->as<std::string>(), "standalone");

  msg::reply tree = call("tree");
  ASSERT_TRUE(tree.ok) << tree.message;
  EXPECT_EQ(field(tree, "id")->as<std::string>(), "toy.sup");
  EXPECT_EQ(field(tree, "kind")->as<std::string>(), "supervisor");
  EXPECT_EQ(field(tree, "strategy")->as<std::string>(), "one_for_one");
  const msgpack::object* children = field(tree, "children");
  ASSERT_EQ(children->via.array.size, 2u);
  EXPECT_EQ(wire::find(children->via.array.ptr[0], "id")->as<std::string>(), "app.control");
  EXPECT_EQ(wire::find(children->via.array.ptr[1], "id")->as<std::string>(), "echo");
  EXPECT_EQ(wire::find(children->via.array.ptr[1], "kind")->as<std::string>(), "worker");
}

TEST_F(Instance, OpsAreRoutedAndUnknownOnesRefused) {
  start(loopback());
  auto r = cli->call("echo", 1, [](wire::packer& p) {
    p.pack("x");
    p.pack(5);
  });
  ASSERT_TRUE(r && r->ok);
  EXPECT_EQ(wire::find(*r->result, "x")->as<int>(), 5);
  msg::reply unknown = call("frobnicate");
  EXPECT_FALSE(unknown.ok);
  EXPECT_EQ(unknown.code, wire::error_code::unknown_op);
  EXPECT_NE(unknown.message.find("frobnicate"), std::string::npos);
  msg::reply crash = call("crash");  // fault injection is off
  EXPECT_EQ(crash.code, wire::error_code::unknown_op);
  EXPECT_EQ(running->ctx().stats()["echoes"].load(), 1);
}

TEST_F(Instance, ACrashingHandlerAnswersInternalAndIsRestarted) {
  settings s = loopback();
  s.fault_injection = true;
  start(s);
  msg::reply crash = call("crash");
  EXPECT_FALSE(crash.ok);
  EXPECT_EQ(crash.code, wire::error_code::internal) << crash.message;
  // Its supervisor restarts it; meanwhile a request may be answered internal ("restarting").
  ASSERT_TRUE(testing::wait_until([&] {
    auto r = cli->call("echo", 10s);
    return r && r->ok;
  }));
  msg::reply tree = call("tree");
  EXPECT_EQ(field(tree, "restarts")->as<int>(), 1);
}

TEST_F(Instance, EventsArePublishedUnderTheAppId) {
  start(loopback());
  auto sub = msg::subscriber::connect(running->events_endpoint(), {"toy."});
  ASSERT_TRUE(sub);
  ASSERT_TRUE(testing::wait_until([&] {
    (void)cli->call("echo", 10s);
    auto ev = (*sub)->receive(20ms);
    return ev && ev->topic == "toy.echoed" && wire::find(*ev->body, "ts_ms") != nullptr;
  }));
}

TEST_F(Instance, AnEndpointInUseIsAClearError) {
  start(loopback());
  settings s = loopback();
  s.endpoint = running->endpoint();
  toy other;
  auto again = instance::start(other, s);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().to_string().find(running->endpoint()), std::string::npos) << again.error().to_string();
}

// A stand-in registry: answers register with lease "L<n>", renew per `renew_answer`, and
// records what it was asked.
class stand_in_registry {
 public:
  stand_in_registry() {
    auto s = msg::server::start({}, [this](msg::incoming r) { serve(std::move(r)); });
    EXPECT_TRUE(s);
    srv = std::move(*s);
  }
  void serve(msg::incoming r) {
    std::lock_guard lk(mu);
    ops.emplace_back(r.op());
    if (r.op() == "register") {
      registered_name = wire::find(r.args(), "name")->as<std::string>();
      registered_endpoint = wire::find(r.args(), "endpoint")->as<std::string>();
      const std::string lease = "L" + std::to_string(++leases);
      r.reply_ok([&](wire::packer& p) {
        p.pack_map(2);
        p.pack("lease");
        p.pack(lease);
        p.pack("ttl_ms");
        p.pack(1000);
      });
    } else if (r.op() == "renew") {
      if (forget) {
        r.reply_error(wire::error_code::not_found, "no such lease");
      } else {
        r.reply_ok([](wire::packer& p) {
          p.pack_map(1);
          p.pack("ttl_ms");
          p.pack(1000);
        });
      }
    } else {
      r.reply_ok([](wire::packer& p) { p.pack_map(0); });
    }
  }
  std::size_t count(const std::string& op) {
    std::lock_guard lk(mu);
    return static_cast<std::size_t>(std::count(ops.begin(), ops.end(), op));
  }

  std::mutex mu;
  std::vector<std::string> ops;
  std::string registered_name, registered_endpoint;
  int leases = 0;
  bool forget = false;
  std::unique_ptr<msg::server> srv;
};

std::string registry_state(msg::client& c) {
  auto r = c.call("info", 10s);
  if (!r || !r->ok) return "?";
  return wire::find(*wire::find(*r->result, "registry"), "state")->as<std::string>();
}

std::string registry_lease(msg::client& c) {
  auto r = c.call("info", 10s);
  if (!r || !r->ok) return "";
  const msgpack::object* lease = wire::find(*wire::find(*r->result, "registry"), "lease");
  return lease ? lease->as<std::string>() : std::string();
}

TEST_F(Instance, RegistersRenewsAndRegistersAgainWhenForgotten) {
  stand_in_registry reg;
  settings s = loopback(reg.srv->endpoint());
  s.registry_ttl = 1000ms;  // renew every ~333 ms
  start(s);
  ASSERT_TRUE(testing::wait_until([&] { return reg.count("renew") >= 1; }));
  {
    std::lock_guard lk(reg.mu);
    EXPECT_EQ(reg.registered_name, "toy");
    EXPECT_EQ(reg.registered_endpoint, running->endpoint());
  }
  EXPECT_EQ(registry_state(*cli), "registered");
  {
    std::lock_guard lk(reg.mu);
    reg.forget = true;
  }
  ASSERT_TRUE(testing::wait_until([&] { return reg.count("register") >= 2; }));
  {
    std::lock_guard lk(reg.mu);
    reg.forget = false;
  }
  // Stop only once the app holds its new lease: a register still in flight at the stop has
  // no lease to withdraw yet (the registry lets that one lapse after its ttl).
  ASSERT_TRUE(testing::wait_until([&] { return registry_lease(*cli) != "L1" && !registry_lease(*cli).empty(); }));
  running->stop();
  ASSERT_TRUE(testing::wait_until([&] { return reg.count("unregister") == 1; })) << [&] {
    std::lock_guard lk(reg.mu);
    std::string all;
    for (auto& o : reg.ops) all += o + " ";
    return all;
  }();
}

TEST_F(Instance, KeepsWorkingWhileTheRegistryIsDown) {
  std::string nobody;
  {
    auto s = msg::server::start({}, [](msg::incoming) {});
    ASSERT_TRUE(s);
    nobody = (*s)->endpoint();
  }
  settings s = loopback(nobody);
  start(s);
  ASSERT_TRUE(testing::wait_until([&] { return registry_state(*cli) == "unavailable"; }));
  msg::reply ping = call("ping");
  EXPECT_TRUE(ping.ok);
  // The registry comes up on that endpoint: the app registers.
  stand_in_registry late;
  late.srv.reset();
  auto again = msg::server::start({.endpoint = nobody}, [&late](msg::incoming r) { late.serve(std::move(r)); });
  ASSERT_TRUE(again) << again.error().to_string();
  ASSERT_TRUE(testing::wait_until([&] { return registry_state(*cli) == "registered"; }));
}

}  // namespace
}  // namespace canopy::app
