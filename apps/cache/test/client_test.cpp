// cache_client against a live cache app: every call, values byte-exact both ways, errors
// with their protocol codes, and a client with no cache answering unavailable.
#include "canopy/cache_client/client.hpp"

#include <gtest/gtest.h>

#include "canopy/app/instance.hpp"
#include "canopy/cache_app/app.hpp"

namespace canopy::cache_app {
namespace {

using namespace std::chrono_literals;

wire::value text(const std::string& s) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer>(b).pack(s);
  return *wire::value::from_bytes(std::string(b.data(), b.size()), {});
}

TEST(CacheClient, EveryCallAgainstALiveCache) {
  app the_app;
  canopy::app::settings s;
  s.endpoint = "tcp://127.0.0.1:0";
  s.events_endpoint = "tcp://127.0.0.1:0";
  s.registry = "none";
  auto running = canopy::app::instance::start(the_app, s);
  ASSERT_TRUE(running) << running.error().to_string();
  auto c = cache_client::client::connect((*running)->endpoint());
  ASSERT_TRUE(c);
  cache_client::client& cache = **c;

  ASSERT_TRUE(cache.put("a", text("alpha"), 60s));
  auto a = cache.get("a");
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->value, text("alpha"));
  EXPECT_LE((*a)->ttl_left, 60s);
  auto miss = cache.get("zz");
  ASSERT_TRUE(miss);
  EXPECT_FALSE(miss->has_value());

  EXPECT_EQ(*cache.incr("n"), 1);
  EXPECT_EQ(*cache.incr("n", 41), 42);
  auto not_int = cache.incr("a");
  ASSERT_FALSE(not_int);
  EXPECT_EQ(not_int.code(), wire::error_code::invalid_args);

  ASSERT_TRUE(cache.mput({{"m:1", text("one")}, {"m:2", wire::value::of_int(2)}}));
  auto got = cache.mget({"m:1", "m:2", "m:3"});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size(), 2u);
  EXPECT_EQ(got->at("m:2"), wire::value::of_int(2));
  EXPECT_EQ(*cache.keys("m:"), (std::vector<std::string>{"m:1", "m:2"}));
  EXPECT_TRUE(*cache.expire("m:1", 60s));
  EXPECT_FALSE(*cache.expire("nope", 60s));
  EXPECT_TRUE(*cache.erase("m:1"));
  EXPECT_FALSE(*cache.erase("m:1"));
  auto st = cache.stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->items, 3u);
  EXPECT_EQ(*cache.clear(), 3u);

  const std::string endpoint = (*running)->endpoint();
  (*running)->stop();
  auto gone = cache_client::client::connect(endpoint, {.send_timeout = 100ms});
  ASSERT_TRUE(gone);
  auto down = (*gone)->get("a");
  ASSERT_FALSE(down);
  EXPECT_EQ(down.code(), wire::error_code::unavailable);
}

}  // namespace
}  // namespace canopy::cache_app
