// The session manager on loopback, every op over the wire: open / refresh / send /
// messages / get / update / close / list / count, bad arguments, events, idle expiry on a
// virtual clock (refresh resets it), a crashed session restarted with its data (transient)
// or gone and reported (temporary) while the others are untouched; with a live cache: the
// write-through, a restart restoring every session, the cache down (degraded, then written
// when it returns).
#include <gtest/gtest.h>

#include <map>

#include "canopy/app/instance.hpp"
#include "canopy/cache_app/app.hpp"
#include "canopy/cache_client/client.hpp"
#include "canopy/msg/client.hpp"
#include "canopy/msg/subscriber.hpp"
#include "canopy/registry_app/app.hpp"
#include "canopy/session_app/app.hpp"
#include "canopy/testing/log_capture.hpp"
#include "canopy/testing/virtual_clock.hpp"
#include "canopy/testing/wait.hpp"
#include "canopy/wire/value.hpp"

namespace canopy::session_app {
namespace {

using namespace std::chrono_literals;
using writer = std::function<void(wire::packer&)>;

writer user_only(const std::string& u) {
  return [u](wire::packer& p) {
    p.pack("user");
    p.pack(u);
  };
}

std::string str(const msgpack::object* o) {
  if (o == nullptr || o->type != msgpack::type::STR) return "(not a string)";
  return {o->via.str.ptr, o->via.str.size};
}

canopy::app::settings loopback() {
  canopy::app::settings s;
  s.endpoint = "tcp://127.0.0.1:0";
  s.events_endpoint = "tcp://127.0.0.1:0";
  s.registry = "none";
  s.fault_injection = true;
  s.shutdown_timeout = 5s;
  return s;
}

class Sessions : public ::testing::Test {
 protected:
  void start(options o = {}, std::shared_ptr<canopy::clock> clock = nullptr) {
    if (o.cache_endpoint.empty()) o.cache_endpoint = "none";
    the_app.set_options(o);
    auto i = canopy::app::instance::start(the_app, loopback(), logs.logger(), std::move(clock));
    ASSERT_TRUE(i) << i.error().to_string();
    running = std::move(*i);
    auto c = msg::client::connect(running->endpoint());
    ASSERT_TRUE(c);
    cli = std::move(*c);
  }
  msg::reply call(std::string_view op, std::uint32_t pairs, const writer& w) {
    auto r = cli->call(op, pairs, w, 10s);
    EXPECT_TRUE(r) << op << ": " << r.error().to_string();
    return r ? *r : msg::reply{};
  }
  msg::reply call(std::string_view op) {
    return call(op, 0, [](wire::packer&) {});
  }
  msg::reply on_user(std::string_view op, const std::string& u) { return call(op, 1, user_only(u)); }
  static const msgpack::object* field(const msg::reply& r, const char* name) {
    return r.ok && r.result ? wire::find(*r.result, name) : nullptr;
  }
  msg::reply open(const std::string& u, std::optional<std::uint64_t> idle_ms = std::nullopt) {
    return call("open", idle_ms ? 2 : 1, [&](wire::packer& p) {
      p.pack("user");
      p.pack(u);
      if (idle_ms) {
        p.pack("idle_timeout_ms");
        p.pack(*idle_ms);
      }
    });
  }
  msg::reply send(const std::string& u, const std::string& text) {
    return call("send", 2, [&](wire::packer& p) {
      p.pack("user");
      p.pack(u);
      p.pack("message");
      p.pack(text);
    });
  }
  std::vector<std::string> texts(const std::string& u, std::uint64_t after = 0) {
    msg::reply r = call("messages", 2, [&](wire::packer& p) {
      p.pack("user");
      p.pack(u);
      p.pack("after");
      p.pack(after);
    });
    std::vector<std::string> out;
    const msgpack::object* ms = field(r, "messages");
    if (ms == nullptr) return {"(no messages field)"};
    for (std::uint32_t i = 0; i < ms->via.array.size; ++i) out.push_back(str(wire::find(ms->via.array.ptr[i], "message")));
    return out;
  }

  testing::log_capture logs;
  app the_app;
  std::unique_ptr<canopy::app::instance> running;
  std::unique_ptr<msg::client> cli;
};

TEST_F(Sessions, OpenSendPageGetUpdateClose) {
  start();
  msg::reply o = call("open", 2, [](wire::packer& p) {
    p.pack("user");
    p.pack("alice");
    p.pack("data");
    p.pack_map(2);
    p.pack("lang");
    p.pack("en");
    p.pack("theme");
    p.pack("dark");
  });
  ASSERT_TRUE(o.ok) << o.message;
  EXPECT_EQ(str(field(o, "user")), "alice");
  EXPECT_TRUE(field(o, "created")->via.boolean);
  msg::reply again = open("alice");
  EXPECT_FALSE(field(again, "created")->via.boolean);  // it existed: refreshed

  for (int i = 1; i <= 3; ++i) EXPECT_EQ(field(send("alice", "m" + std::to_string(i)), "seq")->via.u64, static_cast<std::uint64_t>(i));
  EXPECT_EQ(texts("alice"), (std::vector<std::string>{"m1", "m2", "m3"}));
  EXPECT_EQ(texts("alice", 2), (std::vector<std::string>{"m3"}));
  msg::reply page = call("messages", 3, [](wire::packer& p) {
    p.pack("user");
    p.pack("alice");
    p.pack("after");
    p.pack(0);
    p.pack("limit");
    p.pack(2);
  });
  ASSERT_EQ(field(page, "messages")->via.array.size, 2u);
  const msgpack::object& first = field(page, "messages")->via.array.ptr[0];
  EXPECT_EQ(wire::find(first, "seq")->via.u64, 1u);
  EXPECT_GT(wire::find(first, "ts_ms")->via.u64, 0u);

  msg::reply u = call("update", 2, [](wire::packer& p) {
    p.pack("user");
    p.pack("alice");
    p.pack("data");
    p.pack_map(2);
    p.pack("theme");
    p.pack_nil();  // removed
    p.pack("tz");
    p.pack("UTC");
  });
  ASSERT_TRUE(u.ok) << u.message;
  msg::reply g = on_user("get", "alice");
  ASSERT_TRUE(g.ok) << g.message;
  EXPECT_EQ(str(field(g, "user")), "alice");
  EXPECT_EQ(field(g, "message_count")->via.u64, 3u);
  EXPECT_EQ(field(g, "idle_timeout_ms")->via.u64, 1800000u);  // the default
  EXPECT_LE(field(g, "created_ms")->via.u64, field(g, "last_active_ms")->via.u64);
  const msgpack::object* data = field(g, "data");
  ASSERT_EQ(data->type, msgpack::type::MAP);
  EXPECT_EQ(data->via.map.size, 2u);
  EXPECT_EQ(str(wire::find(*data, "lang")), "en");
  EXPECT_EQ(str(wire::find(*data, "tz")), "UTC");
  EXPECT_EQ(wire::find(*data, "theme"), nullptr);

  EXPECT_TRUE(field(on_user("close", "alice"), "closed")->via.boolean);
  EXPECT_FALSE(field(on_user("close", "alice"), "closed")->via.boolean);
  for (const char* op : {"get", "refresh", "messages"}) EXPECT_EQ(on_user(op, "alice").code, wire::error_code::not_found) << op;
  EXPECT_EQ(send("alice", "late").code, wire::error_code::not_found);
  EXPECT_EQ(call("update", 2, [](wire::packer& p) {
              p.pack("user");
              p.pack("nobody");
              p.pack("data");
              p.pack_map(0);
            }).code,
            wire::error_code::not_found);
  // A new open after a close starts afresh: seq 1 again.
  EXPECT_TRUE(field(open("alice"), "created")->via.boolean);
  EXPECT_EQ(field(send("alice", "again"), "seq")->via.u64, 1u);
}

TEST_F(Sessions, ListAndCount) {
  start();
  for (const char* u : {"user:3", "user:1", "other", "user:2", "user:10"}) ASSERT_TRUE(open(u).ok);
  EXPECT_EQ(field(call("count"), "count")->via.u64, 5u);
  msg::reply l = call("list", 2, [](wire::packer& p) {
    p.pack("prefix");
    p.pack("user:");
    p.pack("limit");
    p.pack(3);
  });
  ASSERT_TRUE(l.ok) << l.message;
  std::vector<std::string> users;
  l.result->via.map.ptr[0].val.convert(users);
  EXPECT_EQ(users, (std::vector<std::string>{"user:1", "user:10", "user:2"}));
  msg::reply all = call("list");
  all.result->via.map.ptr[0].val.convert(users);
  EXPECT_EQ(users.size(), 5u);
  EXPECT_EQ(users.front(), "other");
}

TEST_F(Sessions, BadArgumentsAreInvalidArgsOrTooLarge) {
  start({.limits = {.max_messages = 10, .max_message_value_bytes = 64, .max_data_bytes = 128}});
  ASSERT_TRUE(open("bob").ok);
  auto code = [&](std::string_view op, const writer& w, std::uint32_t n) { return call(op, n, w).code; };
  EXPECT_EQ(call("open").code, wire::error_code::invalid_args);  // no user
  EXPECT_EQ(code("open", [](wire::packer& p) { p.pack("user"); p.pack(5); }, 1), wire::error_code::invalid_args);
  EXPECT_EQ(code("open", [](wire::packer& p) { p.pack("user"); p.pack(""); }, 1), wire::error_code::invalid_args);
  EXPECT_EQ(code("get", [](wire::packer& p) { p.pack("user"); p.pack(std::string(300, 'u')); }, 1),
            wire::error_code::invalid_args);
  EXPECT_EQ(code("open", [](wire::packer& p) { p.pack("user"); p.pack("new"); p.pack("idle_timeout_ms"); p.pack(0); }, 2),
            wire::error_code::invalid_args);
  EXPECT_EQ(code("open", [](wire::packer& p) { p.pack("user"); p.pack("new"); p.pack("data"); p.pack("x"); }, 2),
            wire::error_code::invalid_args);
  EXPECT_EQ(field(call("count"), "count")->via.u64, 1u);  // no bad open made a session
  EXPECT_EQ(code("send", user_only("bob"), 1), wire::error_code::invalid_args);  // no message
  EXPECT_EQ(send("bob", std::string(100, 'x')).code, wire::error_code::too_large);
  EXPECT_EQ(code("update", [](wire::packer& p) { p.pack("user"); p.pack("bob"); p.pack("data"); p.pack(1); }, 2),
            wire::error_code::invalid_args);
  EXPECT_EQ(code("update",
                 [](wire::packer& p) {
                   p.pack("user");
                   p.pack("bob");
                   p.pack("data");
                   p.pack_map(1);
                   p.pack("k");
                   p.pack(std::string(200, 'v'));
                 },
                 2),
            wire::error_code::too_large);
  EXPECT_EQ(code("messages", [](wire::packer& p) { p.pack("user"); p.pack("bob"); p.pack("limit"); p.pack(0); }, 2),
            wire::error_code::invalid_args);
  EXPECT_EQ(code("messages", [](wire::packer& p) { p.pack("user"); p.pack("bob"); p.pack("limit"); p.pack(1001); }, 2),
            wire::error_code::invalid_args);
  EXPECT_EQ(code("list", [](wire::packer& p) { p.pack("limit"); p.pack(0); }, 1), wire::error_code::invalid_args);
  // Nothing bad changed bob.
  msg::reply g = on_user("get", "bob");
  EXPECT_EQ(field(g, "message_count")->via.u64, 0u);
  EXPECT_EQ(field(g, "data")->via.map.size, 0u);
}

TEST_F(Sessions, IdleSessionsExpireAndActivityResetsTheTimer) {
  auto clk = std::make_shared<testing::virtual_clock>();
  start({}, clk);
  ASSERT_TRUE(open("idle", 30 * 60 * 1000).ok);
  ASSERT_TRUE(open("busy", 30 * 60 * 1000).ok);
  clk->advance(29min);
  ASSERT_TRUE(on_user("refresh", "busy").ok);
  ASSERT_TRUE(on_user("get", "idle").ok);  // get only observes: the idle timer runs on
  clk->advance(1min);
  EXPECT_TRUE(testing::wait_until([&] { return on_user("get", "idle").code == wire::error_code::not_found; }));
  EXPECT_TRUE(on_user("get", "busy").ok);  // refreshed at 29 min: due at 59
  clk->advance(28min);
  ASSERT_TRUE(send("busy", "hello").ok);  // send is activity too
  clk->advance(29min);
  EXPECT_TRUE(on_user("get", "busy").ok);
  clk->advance(1min);
  EXPECT_TRUE(testing::wait_until([&] { return on_user("get", "busy").code == wire::error_code::not_found; }));
  EXPECT_EQ(field(call("count"), "count")->via.u64, 0u);
}

TEST_F(Sessions, AShortIdleTimeoutExpiresOnTheRealClock) {
  start();
  // Taken before the open: the session's clock starts inside it, before the reply comes.
  const auto asked = std::chrono::steady_clock::now();
  ASSERT_TRUE(open("quick", 200).ok);
  ASSERT_TRUE(on_user("get", "quick").ok);
  EXPECT_TRUE(testing::wait_until([&] { return on_user("get", "quick").code == wire::error_code::not_found; }));
  // Not before its time; the app counts time in whole milliseconds, hence the 1 ms.
  EXPECT_GE(std::chrono::steady_clock::now() - asked, 199ms);
}

TEST_F(Sessions, PastMaxSessionsOpenIsOverloaded) {
  start({.max_sessions = 2});
  ASSERT_TRUE(open("a").ok);
  ASSERT_TRUE(open("b").ok);
  EXPECT_EQ(open("c").code, wire::error_code::overloaded);
  EXPECT_TRUE(open("a").ok);  // an existing session still opens
  ASSERT_TRUE(on_user("close", "b").ok);
  EXPECT_TRUE(open("c").ok);  // room again
}

TEST_F(Sessions, AShorterIdleTimeoutGivenWithOpenTakesEffectAtOnce) {
  auto clk = std::make_shared<testing::virtual_clock>();
  start({}, clk);
  ASSERT_TRUE(open("u", 60 * 60 * 1000).ok);
  ASSERT_TRUE(open("u", 1000).ok);  // now one second
  EXPECT_EQ(field(on_user("get", "u"), "idle_timeout_ms")->via.u64, 1000u);
  clk->advance(1s);
  EXPECT_TRUE(testing::wait_until([&] { return on_user("get", "u").code == wire::error_code::not_found; }));
}

TEST_F(Sessions, EventsForOpenedMessageAndClosed) {
  auto clk = std::make_shared<testing::virtual_clock>();
  start({}, clk);
  auto sub = msg::subscriber::connect(running->events_endpoint(), {"session_manager."});
  ASSERT_TRUE(sub);
  // The subscription is up once a probe's opened event arrives.
  int probe = 0;
  ASSERT_TRUE(testing::wait_until([&] {
    (void)open("probe" + std::to_string(probe++));
    auto ev = (*sub)->receive(20ms);
    return ev && ev->topic == "session_manager.opened";
  }));
  ASSERT_TRUE(open("carol", 5000).ok);
  ASSERT_TRUE(send("carol", "hi").ok);
  ASSERT_TRUE(open("dave", 1000).ok);
  ASSERT_TRUE(on_user("close", "carol").ok);
  clk->advance(1s);  // dave expires

  std::vector<std::string> seen;
  ASSERT_TRUE(testing::wait_until([&] {
    while (auto ev = (*sub)->receive(10ms)) {
      const std::string user = str(wire::find(*ev->body, "user"));
      if (user.rfind("probe", 0) == 0) continue;
      EXPECT_NE(wire::find(*ev->body, "ts_ms"), nullptr);
      std::string line = ev->topic + " " + user;
      if (auto* seq = wire::find(*ev->body, "seq")) line += " " + std::to_string(seq->via.u64);
      if (auto* reason = wire::find(*ev->body, "reason")) line += " " + str(reason);
      seen.push_back(line);
    }
    return seen.size() >= 5;
  }));
  EXPECT_EQ(seen, (std::vector<std::string>{"session_manager.opened carol", "session_manager.message carol 1",
                                            "session_manager.opened dave", "session_manager.closed carol closed",
                                            "session_manager.closed dave expired"}));
}

TEST_F(Sessions, ACrashedSessionRestartsWithItsDataAndTheOthersAreUntouched) {
  start();
  ASSERT_TRUE(open("victim").ok);
  ASSERT_TRUE(open("bystander").ok);
  ASSERT_TRUE(send("victim", "kept").ok);
  ASSERT_TRUE(send("bystander", "mine").ok);
  EXPECT_EQ(on_user("crash", "victim").code, wire::error_code::internal);
  ASSERT_TRUE(testing::wait_until([&] { return on_user("get", "victim").ok; }));
  EXPECT_EQ(texts("victim"), (std::vector<std::string>{"kept"}));  // acknowledged: not lost
  EXPECT_EQ(field(send("victim", "next"), "seq")->via.u64, 2u);
  EXPECT_EQ(texts("bystander"), (std::vector<std::string>{"mine"}));
  msg::reply info = call("info");
  EXPECT_EQ(wire::find(*field(info, "stats"), "crashed")->via.i64, 1);
  EXPECT_EQ(wire::find(*field(info, "stats"), "sessions")->via.i64, 2);
}

TEST_F(Sessions, ATemporarySessionThatCrashesIsGoneAndReported) {
  start({.restart = restart_type::temporary});
  auto sub = msg::subscriber::connect(running->events_endpoint(), {"session_manager.closed"});
  ASSERT_TRUE(sub);
  int probe = 0;
  ASSERT_TRUE(testing::wait_until([&] {
    const std::string p = "probe" + std::to_string(probe++);
    (void)open(p);
    (void)on_user("close", p);
    return static_cast<bool>((*sub)->receive(20ms));
  }));
  while ((*sub)->receive(50ms)) {
  }
  ASSERT_TRUE(open("fragile").ok);
  ASSERT_TRUE(open("other").ok);
  EXPECT_EQ(on_user("crash", "fragile").code, wire::error_code::internal);
  ASSERT_TRUE(testing::wait_until([&] { return on_user("get", "fragile").code == wire::error_code::not_found; }));
  EXPECT_TRUE(on_user("get", "other").ok);
  std::optional<msg::event> ev;
  ASSERT_TRUE(testing::wait_until([&] { return (ev = (*sub)->receive(20ms)).has_value(); }));
  EXPECT_EQ(str(wire::find(*ev->body, "user")), "fragile");
  EXPECT_EQ(str(wire::find(*ev->body, "reason")), "crashed");
}

TEST_F(Sessions, TheTreeShowsTheSessionsSupervisorAndInfoTheStore) {
  start();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(open("t" + std::to_string(i)).ok);
  msg::reply tree = call("tree");
  ASSERT_TRUE(tree.ok);
  const msgpack::object* kids = wire::find(*tree.result, "children");
  ASSERT_NE(kids, nullptr);
  std::map<std::string, const msgpack::object*> by_id;
  for (std::uint32_t i = 0; i < kids->via.array.size; ++i) by_id[str(wire::find(kids->via.array.ptr[i], "id"))] = &kids->via.array.ptr[i];
  ASSERT_TRUE(by_id.count("session_manager.sessions"));
  const msgpack::object& sessions = *by_id["session_manager.sessions"];
  EXPECT_EQ(str(wire::find(sessions, "kind")), "supervisor");
  EXPECT_EQ(wire::find(sessions, "children")->via.array.size, 3u);
  for (const char* id : {"session_manager.registry", "session_manager.store", "session_manager.server"})
    EXPECT_TRUE(by_id.count(id)) << id;
  msg::reply info = call("info");
  EXPECT_EQ(str(wire::find(*field(info, "store"), "state")), "standalone");
}

// ---- with a live cache ------------------------------------------------------------------------

class SessionsWithCache : public Sessions {
 protected:
  void start_cache(std::string endpoint = "tcp://127.0.0.1:0") {
    canopy::app::settings s = loopback();
    s.endpoint = std::move(endpoint);
    auto i = canopy::app::instance::start(cache, s, logs.logger());
    ASSERT_TRUE(i) << i.error().to_string();
    cache_running = std::move(*i);
    auto c = cache_client::client::connect(cache_running->endpoint());
    ASSERT_TRUE(c);
    cache_cli = std::move(*c);
  }
  void start_manager(std::string cache_endpoint) {
    options o;
    o.cache_endpoint = std::move(cache_endpoint);
    o.cache_check = 50ms;
    start(o);
  }
  std::string store_state() {
    msg::reply info = call("info");
    return str(wire::find(*field(info, "store"), "state"));
  }
  std::optional<record> cached(const std::string& user) {
    auto got = cache_cli->get("session:" + user);
    if (!got || !got->has_value()) return std::nullopt;
    return record::decode((*got)->value.bytes(), {});
  }

  cache_app::app cache;
  std::unique_ptr<canopy::app::instance> cache_running;
  std::unique_ptr<cache_client::client> cache_cli;
};

TEST_F(SessionsWithCache, EveryChangeIsInTheCacheBeforeItIsAcknowledged) {
  start_cache();
  start_manager(cache_running->endpoint());
  ASSERT_TRUE(testing::wait_until([&] { return store_state() == "available"; }));
  ASSERT_TRUE(open("alice", 60000).ok);
  ASSERT_TRUE(send("alice", "one").ok);
  auto copy = cached("alice");  // no wait: the reply came after the cache's
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->last_seq(), 1u);
  EXPECT_EQ(copy->idle_timeout(), 60s);
  auto ttl = cache_cli->get("session:alice");
  ASSERT_TRUE((*ttl)->ttl_left);
  EXPECT_LE(*(*ttl)->ttl_left, 60s);  // the cache forgets it when the session would expire
  ASSERT_TRUE(on_user("close", "alice").ok);
  EXPECT_FALSE(cached("alice"));
}

TEST_F(SessionsWithCache, ARecordTheCacheRefusesIsNotAnOutage) {
  start_cache();
  start_manager(cache_running->endpoint());
  ASSERT_TRUE(testing::wait_until([&] { return store_state() == "available"; }));
  ASSERT_TRUE(open("deep").ok);
  // A message nested as deep as a request may be: inside the cache's put request it sits
  // deeper than the cache's decode limit, so the cache answers too_large for that record.
  const int depth = static_cast<int>(wire::decode_limits{}.max_depth) - 4;
  msg::reply sent = call("send", 2, [&](wire::packer& p) {
    p.pack("user");
    p.pack("deep");
    p.pack("message");
    for (int i = 0; i < depth; ++i) p.pack_array(1);
    p.pack(1);
  });
  ASSERT_TRUE(sent.ok) << sent.message;  // kept in memory
  EXPECT_EQ(store_state(), "available");  // the cache is there: nothing is owed or retried
  msg::reply info = call("info");
  EXPECT_EQ(wire::find(*field(info, "stats"), "store_refused")->via.i64, 1);
  EXPECT_EQ(wire::find(*field(info, "store"), "dirty")->via.u64, 0u);
  ASSERT_TRUE(open("plain").ok);
  EXPECT_TRUE(cached("plain"));
}

TEST_F(SessionsWithCache, ARestartedManagerRestoresItsSessions) {
  start_cache();
  start_manager(cache_running->endpoint());
  ASSERT_TRUE(testing::wait_until([&] { return store_state() == "available"; }));
  ASSERT_TRUE(call("open", 2, [](wire::packer& p) {
                p.pack("user");
                p.pack("alice");
                p.pack("data");
                p.pack_map(1);
                p.pack("k");
                p.pack("v");
              }).ok);
  ASSERT_TRUE(send("alice", "first").ok);
  ASSERT_TRUE(send("alice", "second").ok);
  for (int i = 0; i < 1500; ++i) ASSERT_TRUE(open("bulk" + std::to_string(i)).ok);  // more than a restore page

  cli.reset();
  running->stop();
  running.reset();
  start_manager(cache_running->endpoint());
  // Requests wait for the restore: the first one already sees alice.
  msg::reply g = on_user("get", "alice");
  ASSERT_TRUE(g.ok) << g.message;
  EXPECT_EQ(str(wire::find(*field(g, "data"), "k")), "v");
  EXPECT_EQ(texts("alice"), (std::vector<std::string>{"first", "second"}));
  EXPECT_EQ(field(send("alice", "third"), "seq")->via.u64, 3u);
  EXPECT_EQ(field(call("count"), "count")->via.u64, 1501u);
  EXPECT_FALSE(field(open("bulk1499"), "created")->via.boolean);
}

TEST_F(SessionsWithCache, TheCacheIsFoundThroughTheRegistry) {
  registry_app::app registry;
  auto reg = canopy::app::instance::start(registry, loopback(), logs.logger());
  ASSERT_TRUE(reg) << reg.error().to_string();
  canopy::app::settings cs = loopback();
  cs.registry = (*reg)->endpoint();
  auto c = canopy::app::instance::start(cache, cs, logs.logger());
  ASSERT_TRUE(c) << c.error().to_string();
  cache_running = std::move(*c);
  auto cc = cache_client::client::connect(cache_running->endpoint());
  ASSERT_TRUE(cc);
  cache_cli = std::move(*cc);

  options o;  // cache_endpoint "": ask the registry
  o.cache_check = 50ms;
  the_app.set_options(o);
  canopy::app::settings ss = loopback();
  ss.registry = (*reg)->endpoint();
  auto i = canopy::app::instance::start(the_app, ss, logs.logger());
  ASSERT_TRUE(i) << i.error().to_string();
  running = std::move(*i);
  auto mc = msg::client::connect(running->endpoint());
  ASSERT_TRUE(mc);
  cli = std::move(*mc);
  ASSERT_TRUE(testing::wait_until([&] { return store_state() == "available"; }));
  msg::reply info = call("info");
  EXPECT_EQ(str(wire::find(*field(info, "store"), "endpoint")), cache_running->endpoint());
  ASSERT_TRUE(open("found").ok);
  EXPECT_TRUE(cached("found"));
  cli.reset();
  running->stop();
  cache_running->stop();
  (*reg)->stop();
}

TEST_F(SessionsWithCache, WithTheCacheDownSessionsWorkAndAreWrittenWhenItReturns) {
  start_cache();
  const std::string endpoint = cache_running->endpoint();
  cache_cli.reset();
  cache_running->stop();
  cache_running.reset();

  start_manager(endpoint);
  ASSERT_TRUE(testing::wait_until([&] { return store_state() == "unavailable"; }));
  ASSERT_TRUE(open("offline").ok);  // degraded, not refused
  ASSERT_TRUE(send("offline", "kept in memory").ok);
  EXPECT_EQ(texts("offline"), (std::vector<std::string>{"kept in memory"}));
  msg::reply info = call("info");
  EXPECT_GE(wire::find(*field(info, "store"), "dirty")->via.u64, 1u);

  start_cache(endpoint);  // the same address: the link reconnects
  ASSERT_TRUE(testing::wait_until([&] { return store_state() == "available"; }));
  ASSERT_TRUE(testing::wait_until([&] { return cached("offline").has_value(); }));
  EXPECT_EQ(cached("offline")->last_seq(), 1u);
}

}  // namespace
}  // namespace canopy::session_app
