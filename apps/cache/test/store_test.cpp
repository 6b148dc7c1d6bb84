// store: the cache's rules with time passed in — TTL (lazy and active expiry), exact LRU
// eviction under max_bytes, incr, byte accounting, keys.
#include "canopy/cache_app/store.hpp"

#include <gtest/gtest.h>

namespace canopy::cache_app {
namespace {

using namespace std::chrono_literals;

wire::value text(const std::string& s) { return wire::value::of_str(s); }

class Store : public ::testing::Test {
 protected:
  store s{1 << 20};
  time_point t0{};
};

TEST_F(Store, PutGetDelete) {
  EXPECT_FALSE(s.get("k", t0));
  ASSERT_TRUE(s.put("k", text("v"), std::nullopt, t0));
  auto g = s.get("k", t0);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->value, text("v"));
  EXPECT_FALSE(g->ttl_left);
  EXPECT_TRUE(s.erase("k", t0));
  EXPECT_FALSE(s.erase("k", t0));
  EXPECT_EQ(s.stats().hits, 1u);
  EXPECT_EQ(s.stats().misses, 1u);
  EXPECT_EQ(s.stats().bytes, 0u);
}

TEST_F(Store, AKeyIsGoneForReadersTheInstantItExpires) {
  s.put("k", text("v"), 100ms, t0);
  EXPECT_EQ(s.get("k", t0 + 40ms)->ttl_left, 60ms);
  EXPECT_TRUE(s.get("k", t0 + 99ms));
  EXPECT_FALSE(s.get("k", t0 + 100ms));
  EXPECT_EQ(s.stats().expired, 1u);
  EXPECT_EQ(s.stats().items, 0u);
}

TEST_F(Store, ActiveExpiryGivesTheMemoryBack) {
  for (int i = 0; i < 10; ++i) s.put("k" + std::to_string(i), text("v"), milliseconds(10 * (i + 1)), t0);
  s.put("forever", text("v"), std::nullopt, t0);
  const auto full = s.stats().bytes;
  EXPECT_EQ(s.next_expiry(), t0 + 10ms);
  auto first = s.expire_due(t0 + 50ms, 3);  // a budget per run
  EXPECT_EQ(first, (std::vector<std::string>{"k0", "k1", "k2"}));
  auto rest = s.expire_due(t0 + 50ms, 100);
  EXPECT_EQ(rest, (std::vector<std::string>{"k3", "k4"}));
  EXPECT_EQ(s.next_expiry(), t0 + 60ms);
  EXPECT_LT(s.stats().bytes, full);
  EXPECT_EQ(s.stats().items, 6u);
}

TEST_F(Store, PutWithoutTtlClearsAnEarlierOneAndRewritesDoNotPileUp) {
  for (int i = 0; i < 1000; ++i) s.put("k", text("v"), 1h, t0);  // one index entry, not 1000
  s.put("k", text("v"), std::nullopt, t0);
  EXPECT_FALSE(s.get("k", t0 + 2h)->ttl_left);
  EXPECT_FALSE(s.next_expiry());
}

TEST_F(Store, EvictionKeepsTheRecentlyUsedKeys) {
  const std::uint64_t one = store::entry_bytes("key00", text(std::string(100, 'x')));
  store small(one * 10);
  for (int i = 0; i < 10; ++i) small.put("key0" + std::to_string(i), text(std::string(100, 'x')), std::nullopt, t0);
  EXPECT_EQ(small.stats().items, 10u);
  // Touch the first three, then add five more: the five least recently used go.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(small.get("key0" + std::to_string(i), t0));
  for (int i = 0; i < 5; ++i) small.put("key1" + std::to_string(i), text(std::string(100, 'x')), std::nullopt, t0);
  EXPECT_EQ(small.stats().items, 10u);
  EXPECT_LE(small.stats().bytes, one * 10);
  EXPECT_EQ(small.stats().evictions, 5u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(small.get("key0" + std::to_string(i), t0)) << i;
  for (int i = 3; i < 8; ++i) EXPECT_FALSE(small.get("key0" + std::to_string(i), t0)) << i;
  EXPECT_EQ(small.take_evicted(), (std::vector<std::string>{"key03", "key04", "key05", "key06", "key07"}));
  EXPECT_TRUE(small.take_evicted().empty());
}

TEST_F(Store, AnEntryLargerThanTheBoundIsRefused) {
  store tiny(200);
  EXPECT_FALSE(tiny.put("k", text(std::string(1000, 'x')), std::nullopt, t0));
  EXPECT_EQ(tiny.stats().items, 0u);
}

TEST_F(Store, IncrStartsAtZeroKeepsTtlAndRefusesNonIntegers) {
  EXPECT_EQ(s.incr("n", 5, std::nullopt, t0).value, 5);
  EXPECT_EQ(s.incr("n", -7, std::nullopt, t0).value, -2);
  s.put("t", wire::value::of_int(1), 100ms, t0);
  EXPECT_EQ(s.incr("t", 1, std::nullopt, t0 + 50ms).value, 2);
  EXPECT_EQ(s.ttl("t", t0 + 50ms)->value(), 50ms);  // kept
  EXPECT_EQ(s.incr("t", 1, 1000ms, t0 + 50ms).value, 3);
  EXPECT_EQ(s.ttl("t", t0 + 50ms)->value(), 1000ms);  // replaced
  s.put("s", text("abc"), std::nullopt, t0);
  EXPECT_EQ(s.incr("s", 1, std::nullopt, t0).refused, incr_refusal::not_an_integer);
  EXPECT_EQ(s.get("s", t0)->value, text("abc"));  // unchanged
  s.put("big", wire::value::of_int(INT64_MAX), std::nullopt, t0);
  EXPECT_EQ(s.incr("big", 1, std::nullopt, t0).refused, incr_refusal::overflow);
}

TEST_F(Store, ExpireAndTtl) {
  EXPECT_FALSE(s.expire("none", 10ms, t0));
  EXPECT_FALSE(s.ttl("none", t0));
  s.put("k", text("v"), std::nullopt, t0);
  EXPECT_FALSE(s.ttl("k", t0)->has_value());
  EXPECT_TRUE(s.expire("k", 10ms, t0));
  EXPECT_EQ(s.ttl("k", t0 + 4ms)->value(), 6ms);
  EXPECT_FALSE(s.ttl("k", t0 + 10ms));
}

TEST_F(Store, KeysArePrefixedSortedAndLimited) {
  for (const char* k : {"user:3", "user:1", "other", "user:2", "user:10"}) s.put(k, text("v"), std::nullopt, t0);
  s.put("user:0", text("v"), 1ms, t0);  // expired by t0 + 1ms
  EXPECT_EQ(s.keys("user:", 3, t0 + 1ms), (std::vector<std::string>{"user:1", "user:10", "user:2"}));
  EXPECT_EQ(s.keys("", 100, t0 + 1ms).size(), 5u);
  // Paging: after the last key of a page comes the next page.
  EXPECT_EQ(s.keys("user:", 3, t0 + 1ms, "user:2"), (std::vector<std::string>{"user:3"}));
  EXPECT_EQ(s.keys("user:", 2, t0 + 1ms, "user:1"), (std::vector<std::string>{"user:10", "user:2"}));
  EXPECT_TRUE(s.keys("user:", 2, t0 + 1ms, "user:3").empty());
  EXPECT_EQ(s.clear(t0 + 1ms), 5u);
  EXPECT_EQ(s.stats().items, 0u);
  EXPECT_EQ(s.stats().bytes, 0u);
}

}  // namespace
}  // namespace canopy::cache_app
