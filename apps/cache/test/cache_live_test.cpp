// The cache app on loopback, every op over the wire: values byte-exact (str, bin, int,
// float, nested maps), TTL expiry with a deadline wait, eviction under a small max_bytes,
// incr rules, too_large, events, a crash answered internal with no data lost, and 50
// concurrent clients incrementing the same keys without losing one.
#include <gtest/gtest.h>

#include <thread>

#include "canopy/app/instance.hpp"
#include "canopy/cache_app/app.hpp"
#include "canopy/msg/client.hpp"
#include "canopy/msg/subscriber.hpp"
#include "canopy/testing/wait.hpp"
#include "canopy/wire/value.hpp"

namespace canopy::cache_app {
namespace {

using namespace std::chrono_literals;
using writer = std::function<void(wire::packer&)>;

class Cache : public ::testing::Test {
 protected:
  void start(options o = {}) {
    the_app.set_options(o);
    canopy::app::settings s;
    s.endpoint = "tcp://127.0.0.1:0";
    s.events_endpoint = "tcp://127.0.0.1:0";
    s.registry = "none";
    s.fault_injection = true;
    auto i = canopy::app::instance::start(the_app, s);
    ASSERT_TRUE(i) << i.error().to_string();
    running = std::move(*i);
    cli = connect();
  }
  std::unique_ptr<msg::client> connect() {
    auto c = msg::client::connect(running->endpoint());
    EXPECT_TRUE(c);
    return c ? std::move(*c) : nullptr;
  }
  msg::reply call(msg::client& c, std::string_view op, std::uint32_t pairs, const writer& w) {
    auto r = c.call(op, pairs, w, 10s);
    EXPECT_TRUE(r) << op << ": " << r.error().to_string();
    return r ? *r : msg::reply{};
  }
  msg::reply call(std::string_view op, std::uint32_t pairs, const writer& w) { return call(*cli, op, pairs, w); }
  static writer key(const std::string& k) {
    return [k](wire::packer& p) {
      p.pack("key");
      p.pack(k);
    };
  }
  msg::reply put_raw(const std::string& k, const std::string& packed_value, std::optional<int> ttl = std::nullopt) {
    return call("put", ttl ? 3 : 2, [&](wire::packer& p) {
      p.pack("key");
      p.pack(k);
      p.pack("value");
      p.pack_bin_body(packed_value.data(), static_cast<std::uint32_t>(packed_value.size()));  // raw bytes
      if (ttl) {
        p.pack("ttl_ms");
        p.pack(*ttl);
      }
    });
  }
  const msgpack::object* field(const msg::reply& r, const char* name) {
    return r.ok && r.result ? wire::find(*r.result, name) : nullptr;
  }

  app the_app;
  std::unique_ptr<canopy::app::instance> running;
  std::unique_ptr<msg::client> cli;
};

std::string packed(const writer& w) {
  msgpack::sbuffer b;
  wire::packer p(b);
  w(p);
  return std::string(b.data(), b.size());
}

TEST_F(Cache, ValuesComeBackByteExact) {
  start();
  const std::vector<std::string> values = {
      packed([](wire::packer& p) { p.pack("text"); }),
      packed([](wire::packer& p) {
        p.pack_bin(3);
        p.pack_bin_body("\x00\xff\x01", 3);
      }),
      packed([](wire::packer& p) { p.pack(std::int64_t{-1234567890123}); }),
      packed([](wire::packer& p) { p.pack(std::uint64_t{18446744073709551615ull}); }),
      packed([](wire::packer& p) { p.pack(3.25); }),
      packed([](wire::packer& p) {
        p.pack_map(2);
        p.pack("a");
        p.pack_array(2);
        p.pack(1);
        p.pack_map(1);
        p.pack("deep");
        p.pack_bin(1);
        p.pack_bin_body("x", 1);
        p.pack("b");
        p.pack_nil();
      }),
  };
  for (std::size_t i = 0; i < values.size(); ++i) {
    ASSERT_TRUE(put_raw("v" + std::to_string(i), values[i]).ok);
    msg::reply g = call("get", 1, key("v" + std::to_string(i)));
    ASSERT_TRUE(field(g, "found")->via.boolean);
    EXPECT_EQ(wire::value::from_object(*field(g, "value")).bytes(), values[i]) << i;
    EXPECT_EQ(field(g, "ttl_ms"), nullptr);
  }
  msg::reply miss = call("get", 1, key("nope"));
  EXPECT_FALSE(field(miss, "found")->via.boolean);
  EXPECT_EQ(field(miss, "value"), nullptr);
}

TEST_F(Cache, DeleteMgetMputKeysClearStats) {
  start();
  ASSERT_TRUE(call("mput", 1, [](wire::packer& p) {
                p.pack("items");
                p.pack_map(3);
                for (const char* k : {"a:1", "a:2", "b:1"}) {
                  p.pack(k);
                  p.pack(std::string("val-") + k);
                }
              }).ok);
  msg::reply m = call("mget", 1, [](wire::packer& p) {
    p.pack("keys");
    p.pack_array(3);
    p.pack("a:1");
    p.pack("zz");
    p.pack("b:1");
  });
  const auto* items = field(m, "items");
  ASSERT_NE(items, nullptr);
  EXPECT_EQ(items->via.map.size, 2u);
  EXPECT_EQ(wire::find(*items, "b:1")->as<std::string>(), "val-b:1");
  msg::reply k = call("keys", 1, [](wire::packer& p) {
    p.pack("prefix");
    p.pack("a:");
  });
  EXPECT_EQ(field(k, "keys")->as<std::vector<std::string>>(), (std::vector<std::string>{"a:1", "a:2"}));
  EXPECT_TRUE(field(call("delete", 1, key("a:1")), "deleted")->via.boolean);
  EXPECT_FALSE(field(call("delete", 1, key("a:1")), "deleted")->via.boolean);
  msg::reply st = call("stats", 0, [](wire::packer&) {});
  EXPECT_EQ(field(st, "items")->as<int>(), 2);
  EXPECT_GT(field(st, "bytes")->as<std::uint64_t>(), 0u);
  EXPECT_EQ(field(st, "hits")->as<int>(), 2);
  EXPECT_EQ(field(st, "misses")->as<int>(), 1);
  EXPECT_EQ(field(call("clear", 0, [](wire::packer&) {}), "removed")->as<int>(), 2);
  EXPECT_EQ(field(call("stats", 0, [](wire::packer&) {}), "bytes")->as<int>(), 0);
}

TEST_F(Cache, ATtlExpiresTheKey) {
  start();
  ASSERT_TRUE(put_raw("short", packed([](wire::packer& p) { p.pack(1); }), 100).ok);
  msg::reply t = call("ttl", 1, key("short"));
  EXPECT_TRUE(field(t, "found")->via.boolean);
  EXPECT_LE(field(t, "ttl_ms")->as<int>(), 100);
  ASSERT_TRUE(testing::wait_until([&] { return !field(call("get", 1, key("short")), "found")->via.boolean; }));
  // The timer gave the memory back even without a read.
  ASSERT_TRUE(put_raw("short2", packed([](wire::packer& p) { p.pack(1); }), 50).ok);
  ASSERT_TRUE(testing::wait_until([&] { return field(call("stats", 0, [](wire::packer&) {}), "items")->as<int>() == 0; }));
  EXPECT_FALSE(field(call("expire", 2,
                          [](wire::packer& p) {
                            p.pack("key");
                            p.pack("short");
                            p.pack("ttl_ms");
                            p.pack(10);
                          }),
                     "updated")
                   ->via.boolean);
}

TEST_F(Cache, EvictionUnderASmallBoundKeepsTheRecentlyUsed) {
  start({.max_bytes = 64 * 1024, .events_evicted = true});
  const std::string big = packed([](wire::packer& p) { p.pack(std::string(1000, 'x')); });
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(put_raw("old" + std::to_string(i), big).ok);
  ASSERT_TRUE(field(call("get", 1, key("old0")), "found")->via.boolean);  // the most recently used now
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(put_raw("new" + std::to_string(i), big).ok);
  msg::reply st = call("stats", 0, [](wire::packer&) {});
  EXPECT_LE(field(st, "bytes")->as<std::uint64_t>(), 64u * 1024);
  EXPECT_GT(field(st, "evictions")->as<int>(), 0);
  EXPECT_TRUE(field(call("get", 1, key("old0")), "found")->via.boolean);
  EXPECT_FALSE(field(call("get", 1, key("old1")), "found")->via.boolean);
  EXPECT_TRUE(field(call("get", 1, key("new39")), "found")->via.boolean);
}

TEST_F(Cache, IncrRulesAndBadArgs) {
  start();
  msg::reply a = call("incr", 1, key("n"));
  EXPECT_EQ(field(a, "value")->as<int>(), 1);
  msg::reply b = call("incr", 2, [](wire::packer& p) {
    p.pack("key");
    p.pack("n");
    p.pack("by");
    p.pack(-5);
  });
  EXPECT_EQ(field(b, "value")->as<int>(), -4);
  ASSERT_TRUE(put_raw("s", packed([](wire::packer& p) { p.pack("abc"); })).ok);
  msg::reply bad = call("incr", 1, key("s"));
  EXPECT_EQ(bad.code, wire::error_code::invalid_args);
  EXPECT_EQ(call("put", 1, key("k")).code, wire::error_code::invalid_args);  // no value
  EXPECT_EQ(call("get", 1,
                 [](wire::packer& p) {
                   p.pack("key");
                   p.pack(5);
                 })
                .code,
            wire::error_code::invalid_args);
  EXPECT_EQ(put_raw("t", packed([](wire::packer& p) { p.pack(1); }), 0).code, wire::error_code::invalid_args);
  EXPECT_EQ(call("keys", 1,
                 [](wire::packer& p) {
                   p.pack("limit");
                   p.pack(0);
                 })
                .code,
            wire::error_code::invalid_args);
}

TEST_F(Cache, TooLargeValuesAndPayloads) {
  start({.max_value_bytes = 1000});
  const std::string big = packed([](wire::packer& p) { p.pack(std::string(2000, 'x')); });
  EXPECT_EQ(put_raw("big", big).code, wire::error_code::too_large);
  cli->send_frames({std::string(2 << 20, 'x')});  // over max_message_bytes (1 MiB)
  auto r = cli->receive(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, wire::error_code::too_large);
  EXPECT_TRUE(put_raw("small", packed([](wire::packer& p) { p.pack(1); })).ok);
}

TEST_F(Cache, ClearPublishesAnEvent) {
  start();
  auto sub = msg::subscriber::connect(running->events_endpoint(), {"cache."});
  ASSERT_TRUE(sub);
  ASSERT_TRUE(testing::wait_until([&] {
    (void)call("clear", 0, [](wire::packer&) {});
    auto ev = (*sub)->receive(20ms);
    return ev && ev->topic == "cache.cleared" && wire::find(*ev->body, "removed") != nullptr;
  }));
}

TEST_F(Cache, ACrashIsAnsweredInternalAndLosesNoData) {
  start();
  ASSERT_TRUE(put_raw("kept", packed([](wire::packer& p) { p.pack("yes"); })).ok);
  EXPECT_EQ(call("crash", 0, [](wire::packer&) {}).code, wire::error_code::internal);
  ASSERT_TRUE(testing::wait_until([&] {
    auto r = cli->call("get", 1, key("kept"), 10s);
    return r && r->ok && wire::find(*r->result, "found")->via.boolean;
  }));
}

TEST_F(Cache, FiftyClientsIncrementingTheSameKeysLoseNothing) {
  start();
  constexpr int clients = 50, rounds = 40;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      auto mine = connect();
      for (int i = 0; i < rounds; ++i) {
        const std::string k = "counter" + std::to_string((c + i) % 3);
        auto r = mine->call("incr", 1, key(k), 20s);
        if (!r || !r->ok) ++failures;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::int64_t total = 0;
  for (int k = 0; k < 3; ++k) total += field(call("get", 1, key("counter" + std::to_string(k))), "value")->as<std::int64_t>();
  EXPECT_EQ(total, clients * rounds);
}

}  // namespace
}  // namespace canopy::cache_app
